"""[data] source = "pde" (a zoo system as training data) and `stnca simulate pde`."""

import numpy as np
import pytest
from typer.testing import CliRunner

from stnca.cli import app
from stnca.train import train
from stnca.train.config import PdeData, config_from_dict, load_config

runner = CliRunner()


def _pde(**data):
    return config_from_dict({"data": {"source": "pde", **data}})


def test_pde_source_loads_with_parameters_and_system_defaults(tmp_path):
    path = tmp_path / "zoo.toml"
    path.write_text(
        '[data]\nsource = "pde"\nsystem = "brusselator"\nsize = 16\n'
        "[data.parameters]\nb = 8\n[training]\nsteps_between_frames = 2\n"
    )
    config = load_config(path)
    assert isinstance(config.data, PdeData)
    assert config.data.system_parameters().b == 8.0
    assert config.data.frames() == (512, 4)  # the Brusselator's own steps and frame interval
    assert config.horizon() == 512 // 4 * 2
    assert load_config_round_trip(config, tmp_path).data == config.data


def load_config_round_trip(config, tmp_path):
    path = tmp_path / "again.toml"
    path.write_text(config.to_toml())
    return load_config(path)


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"system": "brusselator", "parameters": {"zeta": 1.0}},
            r"data\.parameters\.zeta: unknown",
        ),
        ({"system": "brusselator", "parameters": {"b": -1.0}}, r"data\.parameters\.b must be > 0"),
        (
            {"system": "brusselator", "parameters": {"b": "x"}},
            r"data\.parameters\.b must be a number",
        ),
        ({"system": "nope"}, r"data\.system must be one of"),
        ({}, r"data\.system must name a system"),
        ({"system": "allen_cahn", "dims": 3}, r"unknown key 'dims' in \[data\]"),
        ({"system": "allen_cahn", "initial_condition": "smooth"}, r"data\.initial_condition"),
        ({"system": "allen_cahn", "steps": 10, "every": 4}, r"must be a multiple of data\.every"),
    ],
)
def test_pde_source_refuses_bad_values_naming_them(data, message):
    with pytest.raises(ValueError, match=message):
        _pde(**data)


def test_tiny_training_on_a_zoo_system_runs(tmp_path):
    config = config_from_dict(
        {
            "model": {"hidden_channels": 1, "kernels": ["identity", "laplacian"]},
            "data": {
                "source": "pde",
                "system": "allen_cahn",
                "size": 16,
                "steps": 8,
                "every": 4,
                "trajectories": 2,
            },
            "training": {"epochs": 2, "steps_between_frames": 2, "checkpoint_every": 2},
        }
    )
    result = train(config, tmp_path / "run", progress=False, log=lambda _: None)
    assert result.data.shape == (2, 3, 16, 16, 1)
    assert np.isfinite(result.lowest_loss)


def test_a_zoo_system_trains_on_a_line_and_a_volume(tmp_path):
    for dims, size in [(1, 16), (3, 6)]:
        config = config_from_dict(
            {
                "model": {"hidden_channels": 1, "dimensions": dims},
                "data": {"source": "pde", "system": "cahn_hilliard", "size": size},
                "training": {"epochs": 1, "steps_between_frames": 2},
            }
        ).replace("data", steps=4, every=2, trajectories=1)
        result = train(config, tmp_path / f"run{dims}", progress=False, log=lambda _: None)
        assert result.data.shape == (1, 3, *(size,) * dims, 1)
        assert result.model.dimensions == dims and np.isfinite(result.lowest_loss)


def invoke(*args):
    return runner.invoke(app, ["simulate", "pde", *(str(a) for a in args)])


@pytest.mark.parametrize("dims, size", [(1, 32), (2, 16), (3, 8)])
def test_simulate_pde_writes_every_dimension_and_a_picture(tmp_path, dims, size):
    out = tmp_path / "zoo.npy"
    args = ["swift_hohenberg", "--dims", dims, "--size", size, "--steps", 8, "--every", 4]
    result = invoke(*args, "--out", out, "--png", "--param", "r=0.5", "--batch", 2)
    assert result.exit_code == 0, result.output
    data = np.load(out)
    assert data.shape == (2, 3, *(size,) * dims, 1) and data.dtype == np.float32
    assert out.with_suffix(".png").stat().st_size > 1000


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope"], "unknown system 'nope'"),
        (["brusselator", "--param", "b=-1"], "b must be > 0, got -1.0"),
        (["brusselator", "--param", "zeta=1"], "zeta: unknown parameter of brusselator"),
        (["brusselator", "--param", "b"], "--param must be NAME=VALUE"),
        (["brusselator", "--dims", 4], "dims must be 1, 2 or 3, got 4"),
    ],
)
def test_simulate_pde_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, message):
    out = tmp_path / "zoo.npy"
    result = invoke(*args, "--size", 8, "--steps", 2, "--every", 2, "--out", out, "--png")
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_simulate_pde_refuses_an_existing_file_without_overwrite(tmp_path):
    out = tmp_path / "zoo.npy"
    out.write_bytes(b"keep")
    args = ["allen_cahn", "--dims", 1, "--size", 8, "--steps", 2, "--every", 2, "--out", out]
    result = invoke(*args)
    assert result.exit_code == 2 and "already exists" in result.output
    assert out.read_bytes() == b"keep"
    assert invoke(*args, "--overwrite").exit_code == 0
    assert np.load(out).shape == (2, 8, 1)


def test_each_system_has_its_own_command_equal_to_simulate_pde(tmp_path):
    args = ["--dims", 1, "--size", 16, "--steps", 4, "--every", 2, "--seed", 3]
    own = runner.invoke(
        app, ["simulate", "cahn-hilliard", *map(str, args), "--out", str(tmp_path / "a.npy")]
    )
    assert own.exit_code == 0, own.output
    assert invoke("cahn_hilliard", *args, "--out", tmp_path / "b.npy").exit_code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    bad = runner.invoke(
        app, ["simulate", "fisher-kpp", "--param", "zeta=1", "--out", str(tmp_path / "c.npy")]
    )
    assert bad.exit_code == 2 and "zeta: unknown parameter of fisher_kpp" in bad.output
    assert not (tmp_path / "c.npy").exists()


def test_the_commands_of_their_own_name_cover_every_system_but_the_reference():
    from stnca.cli.simulate import OWN_COMMANDS
    from stnca.data.systems import SYSTEMS

    assert set(OWN_COMMANDS) == set(SYSTEMS) - {"gray_scott"}
