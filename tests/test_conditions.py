"""Parameter-conditioned NCA: condition channels read, never updated, never compared."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from stnca import NCA
from stnca.cli import app
from stnca.conditions import Conditions, condition_fields, fit_conditions, parse_condition
from stnca.serialization import load_model, save_model
from stnca.train import load_config
from stnca.train.algorithm import initial_states, transition_losses
from stnca.train.config import config_from_dict
from stnca.train.dataset import training_data

runner = CliRunner()

NAMES = ("alpha", "gamma")
CONDITIONS = Conditions(NAMES, (0.03, 0.057), (0.02, 0.005))


def conditioned(key, conditions=CONDITIONS, **settings):
    """A conditioned NCA with random (non-zero) output weights, so that it moves."""
    model = NCA(2, 3, conditions=conditions, key=key, **settings)
    w_out = 0.1 * jax.random.normal(jax.random.fold_in(key, 1), model.w_out.shape)
    return eqx.tree_at(lambda m: m.w_out, model, w_out)


def test_condition_channels_are_constant_through_a_rollout(key):
    model = conditioned(key, kernels=("identity", "laplacian", "gradient_x"))
    field = np.linspace(0.03, 0.05, 8, dtype=np.float32)[None].repeat(8, 0)
    data = model.with_conditions(
        np.full((8, 8, 2), 0.5, np.float32), {"alpha": field, "gamma": 0.06}
    )
    state = model.initial_state(model.encode(data))
    frames = model.rollout(state, 20)
    assert frames.shape == (21, 8, 8, 2 + 2 + 3)
    np.testing.assert_array_equal(
        frames[:, ..., 2:4], jnp.broadcast_to(state[..., 2:4], (21, 8, 8, 2))
    )
    np.testing.assert_allclose(model.decode(frames[0, ..., :4])[..., 2], field, rtol=1e-6)
    # the rule does read the conditions: another value gives another rollout
    other = model.initial_state(
        model.encode(model.with_conditions(data[..., :2], {"alpha": 0.03, "gamma": 0.06}))
    )
    assert not np.allclose(model.rollout(other, 20)[-1, ..., :2], frames[-1, ..., :2])


def test_conditions_are_excluded_from_the_loss(key):
    model = conditioned(key)
    y = np.random.default_rng(0).uniform(0, 1, (2, 3, 8, 8, 4)).astype(np.float32)
    y[..., 2:] = y[:, :1, :, :, 2:]  # conditions constant in time
    states = initial_states(model, y)
    losses = transition_losses(model, states, jnp.asarray(y[:, 1:]), 4)
    wrong = y.copy()
    wrong[..., 2:] = 1e3  # garbage in the targets' condition channels
    np.testing.assert_array_equal(
        transition_losses(model, states, jnp.asarray(wrong[:, 1:]), 4), losses
    )
    observable_only = transition_losses(model, states, jnp.asarray(y[:, 1:, ..., :2]), 4)
    np.testing.assert_array_equal(observable_only, losses)


def test_one_condition_value_equals_a_hidden_bias(key):
    """With one value everywhere (periodic lattice) a condition channel contributes
    ``w_in[:, k, identity] * value`` to every hidden unit: the same rule as an unconditioned
    model whose hidden bias holds that (the Laplacian of a constant field is zero)."""
    kernels = ("identity", "laplacian")
    model = conditioned(
        key, Conditions(("alpha",), (0.03,), (0.02,)), kernels=kernels, hidden_bias=True
    )
    model = eqx.tree_at(
        lambda m: m.b_in,
        model,
        0.1 * jax.random.normal(jax.random.fold_in(key, 2), model.b_in.shape),
    )
    value = 0.041
    encoded = (value - 0.03) / 0.02
    plain = NCA(2, 3, kernels=kernels, hidden_bias=True, key=key)
    keep = [0, 1, 3, 4, 5]  # the state without the condition channel (index 2)
    plain = eqx.tree_at(
        lambda m: (m.w_in, m.w_out, m.b_out, m.b_in),
        plain,
        (model.w_in[:, keep], model.w_out, model.b_out, model.b_in + model.w_in[:, 2, 0] * encoded),
    )
    observable = jax.random.uniform(jax.random.fold_in(key, 3), (12, 12, 2))
    with_condition = model.initial_state(
        model.encode(model.with_conditions(observable, {"alpha": value}))
    )
    ours = model.rollout(with_condition, 30)
    theirs = plain.rollout(plain.initial_state(observable), 30)
    # equal up to float32 rounding (the sums run in another order), which grows with steps
    np.testing.assert_allclose(ours[1, ..., :2], theirs[1, ..., :2], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours[..., :2], theirs[..., :2], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours[..., 3:], theirs[..., 2:], rtol=1e-4, atol=1e-4)
    assert np.abs(np.asarray(ours[-1, ..., :2] - observable)).max() > 0.1  # it did move


def test_save_load_keeps_the_conditions(key, tmp_path):
    model = conditioned(key)
    save_model(tmp_path / "m.eqx", model)
    loaded = load_model(tmp_path / "m.eqx")
    assert loaded.conditions == CONDITIONS and loaded.channels == 7
    np.testing.assert_array_equal(loaded.w_out, model.w_out)


def test_condition_values_are_checked():
    assert parse_condition("alpha=0.061") == ("alpha", 0.061)
    for bad in ("alpha", "=1", "alpha=x", "alpha=nan"):
        with pytest.raises(ValueError):
            parse_condition(bad)
    with pytest.raises(ValueError, match="unknown condition 'beta'"):
        condition_fields(NAMES, {"alpha": 1.0, "gamma": 1.0, "beta": 1.0}, (4, 4))
    with pytest.raises(ValueError, match="missing a value for condition 'gamma'"):
        condition_fields(NAMES, {"alpha": 1.0}, (4, 4))
    with pytest.raises(ValueError, match=r"lattice's shape \(4, 4\), got \(3, 4\)"):
        condition_fields(NAMES, {"alpha": np.zeros((3, 4)), "gamma": 1.0}, (4, 4))
    fitted = fit_conditions(NAMES, np.array([[0.03, 0.06], [0.05, 0.06]]))
    assert fitted.offset == (0.03, 0.06) and fitted.scale[0] == pytest.approx(0.02)
    assert fitted.scale[1] == pytest.approx(0.06)  # one value: scaled by its size


GRID = {
    "model": {"hidden_channels": 2, "conditions": ["alpha", "gamma"]},
    "data": {
        "source": "gray_scott",
        "size": 8,
        "steps": 8,
        "trajectories": 2,
        "grid": [[0.03, 0.05], [0.06]],
        "noise": 0.1,
    },
    "training": {"epochs": 2, "steps_between_frames": 4, "minibatches": 2},
}


def test_gray_scott_data_at_every_point():
    y = training_data(config_from_dict(GRID))
    assert y.shape == (4, 3, 8, 8, 4)  # 2 points x 2 trajectories, A, B, alpha, gamma
    np.testing.assert_array_equal(y[:2, ..., 2], np.float32(0.03))  # exact: no noise
    np.testing.assert_array_equal(y[2:, ..., 2], np.float32(0.05))
    np.testing.assert_array_equal(y[..., 3], np.float32(0.06))
    assert not np.array_equal(y[0, 0, ..., :2], y[2, 0, ..., :2])  # each point its own start


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model": {"conditions": ["alpha", "feed"]}}, "'feed' is not a Gray-Scott parameter"),
        (
            {"data": {"grid": [], "points": [[0.03, 0.06], [0.04]]}},
            r"needs 2 values \(alpha, gamma\)",
        ),
        (
            {
                "model": {"conditions": ["diffusion_a", "gamma"]},
                "data": {"grid": [], "points": [[-0.1, 0.06]]},
            },
            r"data.points \[-0.1, 0.06\]: diffusion_a must be >= 0",
        ),
        ({"model": {"conditions": []}}, "needs model.conditions"),
        ({"data": {"grid": []}}, "need data.points or data.grid"),
        ({"model": {"conditions": ["alpha", "alpha"]}}, "must not repeat"),
        ({"data": {"points": [[0.03, 0.06]]}}, "not both"),
    ],
)
def test_bad_condition_configs(change, message):
    tables = {name: {**table, **change.get(name, {})} for name, table in GRID.items()}
    with pytest.raises(ValueError, match=message):
        config_from_dict(tables)


def test_conditioned_images_are_refused():
    with pytest.raises(ValueError, match="needs gray_scott or file data"):
        config_from_dict(
            {"model": {"conditions": ["a"]}, "data": {"source": "images", "images": ["emoji:crab"]}}
        )


def test_file_data_condition_channels_checked(tmp_path):
    from stnca.train import train

    y = np.random.default_rng(0).uniform(0, 1, (2, 3, 8, 8, 3)).astype(np.float32)
    np.save(tmp_path / "moving.npy", y)  # the condition channel changes in time
    config = tmp_path / "c.toml"
    config.write_text(
        '[model]\nhidden_channels = 1\nconditions = ["k"]\n'
        '[data]\nsource = "file"\npath = "moving.npy"\n'
        "[training]\nepochs = 1\nsteps_between_frames = 2\nminibatches = 1\n"
    )
    with pytest.raises(ValueError, match="change in time"):
        train(load_config(config), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_conditioned_training_rollout_and_evaluate(tmp_path):
    """A conditioned run end to end through the CLI: train on a grid, roll out and evaluate
    at a point never trained on, with values or a field; bad flags fail with exit 2."""
    import tomli_w

    config = tmp_path / "grid.toml"
    config.write_text(tomli_w.dumps({**GRID, "data": {**GRID["data"], "noise": 0.0}}))
    run = tmp_path / "run"
    trained = invoke("train", config, "--out", run)
    assert trained.exit_code == 0, trained.output
    model = load_model(run / "model.eqx")
    assert model.condition_names == NAMES and model.observable_channels == 2
    np.save(tmp_path / "init.npy", np.load(run / "train_data.npy")[0, 0, ..., :2])
    np.save(tmp_path / "field.npy", np.full((8, 8), 0.04, np.float32))
    np.save(tmp_path / "small.npy", np.full((4, 8), 0.04, np.float32))
    out = tmp_path / "r.npy"
    base = ("rollout", run / "model.eqx", "--init", tmp_path / "init.npy", "--steps", 8)
    ok = invoke(*base, "--out", out, "--condition", "alpha=0.04", "--condition", "gamma=0.061")
    assert ok.exit_code == 0, ok.output
    assert np.load(out).shape == (9, 8, 8, 2)
    field = invoke(
        *base,
        "--out",
        tmp_path / "f.npy",
        "--condition",
        f"alpha={tmp_path / 'field.npy'}",
        "--condition",
        "gamma=0.061",
    )
    assert field.exit_code == 0, field.output
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), np.load(out), atol=1e-6)
    for flags, message in [
        (("--condition", "alpha=0.04"), "missing a value for condition 'gamma'"),
        (
            ("--condition", "alpha=0.04", "--condition", "gamma=0.06", "--condition", "feed=1"),
            "unknown condition 'feed'",
        ),
        (
            ("--condition", f"alpha={tmp_path / 'small.npy'}", "--condition", "gamma=0.06"),
            "lattice's shape (8, 8), got (4, 8)",
        ),
        (("--condition", f"alpha={tmp_path / 'init.npy'}", "--condition", "gamma=0.06"), "2-D"),
    ]:
        bad = invoke(*base, "--out", tmp_path / "bad.npy", *flags)
        assert bad.exit_code == 2 and message in bad.output, bad.output
        assert not (tmp_path / "bad.npy").exists()
    evaluated = invoke(
        "evaluate",
        run / "model.eqx",
        "--truth",
        run / "train_data.npy",
        "--steps-between-frames",
        4,
        "--out",
        tmp_path / "ev",
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert (tmp_path / "ev" / "evaluation.png").is_file()
    np.save(tmp_path / "truth.npy", np.load(run / "train_data.npy")[0, ..., :2])
    missing = invoke(
        "evaluate",
        run / "model.eqx",
        "--truth",
        tmp_path / "truth.npy",
        "--steps-between-frames",
        4,
        "--out",
        tmp_path / "ev2",
    )
    assert missing.exit_code == 2 and "missing a value for condition 'alpha'" in missing.output


def test_gray_scott_parameter_fields():
    """The PDE with a parameter field: a constant field is the scalar parameter, a ramp
    changes the dynamics where it differs, and bad fields are refused."""
    from stnca.data import gray_scott

    initial = np.random.default_rng(0).uniform(0, 1, (8, 12, 2)).astype(np.float32)
    params = gray_scott.GrayScottParams(alpha=0.04)
    scalar = gray_scott.simulate(initial, 16, every=4, params=params)
    constant = gray_scott.simulate(initial, 16, every=4, fields={"alpha": np.full((8, 12), 0.04)})
    # equal up to float rounding: XLA may fuse a scalar and an array operand differently
    # (bit-equal with the default code generator, 6e-8 apart with the tests' legacy one)
    np.testing.assert_allclose(constant, scalar, rtol=1e-6, atol=1e-7)
    ramp = np.where(np.arange(12) < 6, 0.04, 0.06)[None].repeat(8, 0)
    ramped = gray_scott.simulate(initial, 1, fields={"alpha": ramp})[1]
    # a one-step check against the equation itself: only the alpha terms differ
    a, b = initial[..., 0], initial[..., 1]
    difference = np.asarray(ramped - gray_scott.simulate(initial, 1, params=params)[1])
    np.testing.assert_allclose(difference[:, :6], 0, atol=1e-7)
    expected_a = (ramp - 0.04) * (1 - a)
    np.testing.assert_allclose(difference[:, 6:, 0], expected_a[:, 6:], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        difference[:, 6:, 1], -(ramp - 0.04)[:, 6:] * b[:, 6:], rtol=1e-4, atol=1e-6
    )
    with pytest.raises(ValueError, match="lattice's shape"):
        gray_scott.simulate(initial, 4, fields={"alpha": np.zeros((12, 8))})
    with pytest.raises(ValueError, match="unknown Gray-Scott parameter 'feed'"):
        gray_scott.simulate(initial, 4, fields={"feed": np.zeros((8, 12))})


def test_a_stochastic_conditioned_run_with_validation_points_resumes_exactly(tmp_path):
    from stnca.train import train

    quiet = dict(progress=False, log=lambda _: None)
    tables = {
        "model": {**GRID["model"], "update_probability": 0.5},
        "data": {**GRID["data"], "validation_trajectories": 1},
        "training": {**GRID["training"], "epochs": 3, "validate_every": 1},
    }
    config = config_from_dict(tables)
    straight = train(config, tmp_path / "straight", **quiet)
    train(config, tmp_path / "resumed", epochs=2, **quiet)
    resumed = train(config, tmp_path / "resumed", resume=True, **quiet)
    for a, b in zip(leaves(straight.final_model), leaves(resumed.final_model), strict=True):
        np.testing.assert_array_equal(a, b)
    held = np.load(tmp_path / "straight" / "validation_data.npy")
    assert held.shape == (2, 3, 8, 8, 4)  # one per point, with its conditions
    np.testing.assert_array_equal(held[:, 0, 0, 0, 2], np.float32([0.03, 0.05]))
    assert straight.model.conditions == resumed.model.conditions


def leaves(tree):
    return jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))


def test_a_sweep_refuses_a_conditioned_config_before_writing(tmp_path):
    from stnca.experiments.sweep import run_sweep

    with pytest.raises(ValueError, match="sweeps of conditioned models"):
        run_sweep(config_from_dict(GRID), [("training.learning_rate", [1e-3])], tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_a_field_beyond_float32_is_refused_in_words_without_a_warning(tmp_path):
    import warnings

    from stnca.conditions import load_field

    np.save(tmp_path / "huge.npy", np.full((4, 4), 1e300))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy RuntimeWarning before the one-line error
        with pytest.raises(ValueError, match="not finite float32 numbers"):
            load_field(tmp_path / "huge.npy", "alpha")
        with pytest.raises(ValueError, match="non-finite values"):
            condition_fields(("alpha",), {"alpha": 1e300}, (4, 4))
