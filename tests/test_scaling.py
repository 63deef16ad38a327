"""Data scaling: fitted min-max maps, stored in model files, physical units in and out."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from stnca import NCA
from stnca.analysis import evaluate, predict
from stnca.cli import app
from stnca.scaling import Scaling, fit_scaling
from stnca.serialization import load_model, read_header, save_model
from stnca.train import config_from_dict, train


def test_minmax_is_one_map_over_the_whole_data_set(rng):
    data = rng.uniform(size=(3, 5, 6, 6, 2)).astype(np.float32)
    data[..., 1] = 40 * data[..., 1] - 7
    scaling = fit_scaling(data, "minmax")
    low, high = float(data.min()), float(data.max())
    assert scaling.offset == pytest.approx((low, low))
    assert scaling.scale == pytest.approx((high - low, high - low))
    scaled = np.asarray(scaling.encode(data))
    assert scaled.min() == pytest.approx(0.0, abs=1e-6)
    assert scaled.max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(scaling.decode(scaled), data, rtol=1e-5, atol=1e-5)
    assert fit_scaling(data, "none") is None
    constant = fit_scaling(np.full((2, 3, 3, 1), 4.0), "minmax")
    assert constant.scale == (1.0,) and constant.offset == (4.0,)
    with pytest.raises(ValueError, match="scale must be one of"):
        fit_scaling(data, "zscore")


def test_scaling_rejects_bad_values():
    with pytest.raises(ValueError, match="> 0"):
        Scaling((0.0,), (0.0,))
    with pytest.raises(ValueError, match="one offset and one scale per channel"):
        Scaling((0.0, 1.0), (1.0,))
    with pytest.raises(ValueError, match="scaling must be"):
        Scaling.from_json({"offset": [0.0]})
    with pytest.raises(ValueError, match="2 channels"):
        NCA(2, 1, key=jax.random.key(0), scaling=Scaling((0.0,), (1.0,)))


def random_scaled_model(key, scaling):
    model = NCA(2, 2, key=key, scaling=scaling)
    k1, k2 = jax.random.split(key)
    model = eqx.tree_at(lambda m: m.w_out, model, 0.1 * jax.random.normal(k1, model.w_out.shape))
    return eqx.tree_at(lambda m: m.b_out, model, 0.01 * jax.random.normal(k2, model.b_out.shape))


def test_scaling_round_trips_through_save_load_and_rollout(tmp_path, key, rng):
    scaling = Scaling((1.5, 1.5), (4.0, 4.0))
    model = random_scaled_model(key, scaling)
    path = save_model(tmp_path / "m.eqx", model)
    assert read_header(path)["hyperparameters"]["scaling"] == {
        "offset": [1.5, 1.5],
        "scale": [4.0, 4.0],
    }
    loaded = load_model(path)
    assert loaded.scaling == scaling
    physical = (1.5 + 4.0 * rng.uniform(size=(2, 10, 10, 2))).astype(np.float32)
    frames = predict(loaded, physical, 9, every=3)
    # by hand: encode, roll out in model units, decode
    state = model.initial_state(jnp.asarray((physical - 1.5) / 4.0))
    by_hand = model.observable(model.rollout(state, 9, every=3)) * 4.0 + 1.5
    np.testing.assert_allclose(frames, by_hand, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(frames[:, 0], physical, rtol=1e-6, atol=1e-6)  # frame 0 as given
    # an untrained (identity) model with a scaling returns its physical input unchanged
    identity = NCA(2, 2, key=key, scaling=scaling)
    np.testing.assert_allclose(predict(identity, physical, 4, every=2)[:, -1], physical, atol=1e-5)
    # the CLI's rollout writes physical units too
    np.save(tmp_path / "init.npy", physical[0])
    result = CliRunner().invoke(
        app,
        [
            "rollout",
            str(path),
            "--init",
            str(tmp_path / "init.npy"),
            "--steps",
            "9",
            "--every",
            "3",
            "--out",
            str(tmp_path / "out.npy"),
        ],
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), frames[0], rtol=1e-5, atol=1e-5)


def test_models_saved_without_scaling_still_load(tmp_path, key):
    model = random_scaled_model(key, None)
    path = save_model(tmp_path / "old.eqx", model)
    # a file written before scaling existed has no "scaling" key in its header
    header, rest = path.read_bytes().split(b"\n", 1)
    import json

    old = json.loads(header)
    del old["hyperparameters"]["scaling"]
    path.write_bytes(json.dumps(old).encode() + b"\n" + rest)
    loaded = load_model(path)
    assert loaded.scaling is None
    np.testing.assert_array_equal(loaded.w_out, model.w_out)


def test_training_on_scaled_file_data_returns_physical_units(tmp_path, rng):
    # data far from [0, 1]: a smooth field around 50 with amplitude 20, two channels
    from stnca.stencils import apply_kernel

    x = jnp.asarray(rng.uniform(size=(3, 10, 10, 2)).astype(np.float32))
    frames = [x]
    for _ in range(5):
        for _ in range(3):
            x = x + 0.15 * apply_kernel(x, "laplacian", "periodic")
        frames.append(x)
    physical = 30.0 + 20.0 * np.stack([np.asarray(f) for f in frames], axis=1)
    np.save(tmp_path / "data.npy", physical.astype(np.float32))
    config = config_from_dict(
        {
            "model": {"hidden_channels": 1},
            "data": {"source": "file", "path": "data.npy", "validation_trajectories": 1},
            "training": {
                "epochs": 200,
                "steps_between_frames": 3,
                "learning_rate": 0.02,
                "lr_decay_rate": 0.05,
                "lr_decay_epochs": 200,
                "state_penalty": 0.01,
                "checkpoint_every": 100,
            },
        },
        base_dir=tmp_path,
    )
    assert config.data.scale == "minmax"
    result = train(config, tmp_path / "run", progress=False, log=lambda _: None)
    saved_train = np.load(tmp_path / "run" / "train_data.npy")
    held = np.load(tmp_path / "run" / "validation_data.npy")
    np.testing.assert_array_equal(saved_train, physical[:2])
    np.testing.assert_array_equal(held, physical[2:])
    model = load_model(tmp_path / "run" / "model.eqx")
    low, high = float(saved_train.min()), float(saved_train.max())
    assert model.scaling == Scaling((low, low), (high - low, high - low))
    assert result.best_epoch > 0
    # in physical units the chosen model beats persistence on the held-back trajectory
    evaluation = evaluate(model, held, 3)
    last = evaluation.at_frame(5)
    assert last["nca"]["euclidean"] < 0.5 * last["persistence"]["euclidean"], last
    assert np.abs(evaluation.prediction.mean() - held.mean()) < 1.0
