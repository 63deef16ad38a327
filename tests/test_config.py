import pytest

from stnca.train.config import (
    Config,
    FileData,
    GrayScottData,
    config_from_dict,
    load_config,
)


def write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_defaults_and_round_trip(tmp_path):
    path = write(tmp_path, "[model]\nhidden_channels = 3\n[training]\nepochs = 7\n")
    config = load_config(path)
    assert config.model.hidden_channels == 3 and config.training.epochs == 7
    assert isinstance(config.data, GrayScottData)
    assert config.model.kernels == ("identity", "laplacian")
    again = load_config(write(tmp_path, config.to_toml()))
    assert again.to_dict() == config.to_dict()


def test_file_data_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "c.toml"
    path.write_text('[data]\nsource = "file"\npath = "traj.npy"\n')
    config = load_config(path)
    assert isinstance(config.data, FileData)
    assert config.resolve(config.data.path) == (tmp_path / "sub" / "traj.npy").resolve()
    assert config.to_dict()["data"]["path"] == str((tmp_path / "sub" / "traj.npy").resolve())


@pytest.mark.parametrize(
    "text, message",
    [
        ("[training]\nlr = 0.1\n", "unknown key 'lr' in [training]"),
        ("[optimiser]\nname = 'adam'\n", "unknown table [optimiser]"),
        ("[training]\nepochs = 'many'\n", "training.epochs must be an integer"),
        ("[training]\nepochs = 2.5\n", "training.epochs must be an integer"),
        ("[training]\nlearning_rate = -1.0\n", "training.learning_rate must be > 0"),
        ("[training]\nloss = 'wasserstein'\n", "training.loss must be one of"),
        ("[training]\noptimizer = 'lbfgs'\n", "training.optimizer must be one of"),
        ("[model]\nkernels = ['identity', 'sobel']\n", "unknown kernel"),
        ("[model]\nactivation = 'softmax'\n", "model.activation must be one of"),
        ("[model]\nupdate_probability = 0\n", "model.update_probability must be in (0, 1]"),
        ("[model]\nhidden_bias = 1\n", "model.hidden_bias must be true or false"),
        ("[data]\nsource = 'hdf5'\n", "data.source must be one of"),
        ("[data]\nsteps = 100\nevery = 32\n", "must be a multiple of data.every"),
        ("[data]\nnoise = 1.5\n", "data.noise (xi) must be in [0, 1]"),
        ("[data]\ninitial_condition = 'stripes'\n", "data.initial_condition must be one of"),
        ("[data]\nsource = 'file'\n", "data.path must name"),
        (
            "[data]\nsource = 'images'\nimages = ['a.png']\npadding = 2\nmax_shift = 3\n",
            "must not exceed data.padding",
        ),
        ("[training\nepochs = 1\n", "is not valid TOML"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, message):
    with pytest.raises(ValueError) as info:
        load_config(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip() or "TOML" in str(info.value)


def test_missing_config(tmp_path):
    with pytest.raises(ValueError, match="config file not found"):
        load_config(tmp_path / "none.toml")


def test_replace():
    config = config_from_dict({})
    assert isinstance(config, Config)
    assert config.replace("training", epochs=3).training.epochs == 3
    with pytest.raises(ValueError, match="training.epochs"):
        config.replace("training", epochs=-1)


def test_a_folder_or_pipe_as_config(tmp_path):
    import os

    (tmp_path / "c.toml").mkdir()
    with pytest.raises(ValueError, match="is a folder, not a TOML file"):
        load_config(tmp_path / "c.toml")
    os.mkfifo(tmp_path / "p.toml")
    with pytest.raises(ValueError, match="not a regular file"):
        load_config(tmp_path / "p.toml")


def test_one_owner_per_rule():
    """The config's checks are the simulator's and the optimiser table's own."""
    from stnca.train.algorithm import make_optimizer
    from stnca.train.config import GrayScottData, TrainingConfig
    from stnca.train.optimizers import OPTIMIZERS

    with pytest.raises(ValueError, match="data.diffusion_b must be >= 0"):
        GrayScottData(diffusion_b=-0.1)
    with pytest.raises(ValueError, match="data.dt must be > 0"):
        GrayScottData(dt=0.0)
    for name in OPTIMIZERS:  # every name the config accepts builds an optimiser
        make_optimizer(TrainingConfig(optimizer=name))
    with pytest.raises(ValueError, match="training.optimizer must be one of"):
        TrainingConfig(optimizer="adagrad")
    with pytest.raises(ValueError, match=r"data.seed must be in \[0, 2\*\*32\)"):
        GrayScottData(seed=2**32)
