import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import EVERY_OPTION, leaves, tiny_config

from stnca import NCA, _trajectory
from stnca.serialization import load_model, read_header, save_model
from stnca.train import (
    TrainingDiverged,
    accumulate_gradients,
    config_from_dict,
    initial_states,
    load_config,
    propagate,
    read_metrics,
    session,
    train,
)
from stnca.train.algorithm import make_epoch, make_optimizer

R, M, S, OBS, HID = 3, 4, 8, 2, 2


def random_model(key, **kwargs):
    model = NCA(OBS, HID, key=key, **kwargs)
    k1, k2 = jax.random.split(key)
    model = eqx.tree_at(lambda m: m.w_out, model, 0.05 * jax.random.normal(k1, model.w_out.shape))
    return eqx.tree_at(lambda m: m.b_out, model, 0.05 * jax.random.normal(k2, model.b_out.shape))


@pytest.fixture
def data(rng):
    return jnp.asarray(rng.uniform(size=(R, M + 1, S, S, OBS)).astype(np.float32))


def test_initial_states_are_data_with_zero_hidden(key, data):
    x = initial_states(NCA(OBS, HID, key=key), data)
    assert x.shape == (R, M, S, S, OBS + HID)
    np.testing.assert_array_equal(x[..., :OBS], data[:, :-1])
    np.testing.assert_array_equal(x[..., OBS:], 0)


def test_propagate_reinitialises_first_batches_and_carries_predictions(key, data, rng):
    model = NCA(OBS, HID, key=key)
    states = jnp.asarray(rng.normal(size=(R, M, S, S, OBS + HID)).astype(np.float32))
    predictions = jnp.asarray(rng.normal(size=(R, M, S, S, OBS + HID)).astype(np.float32))
    new = np.asarray(propagate(model, states, predictions, data, reinitialised_batches=1))
    # r = 0: restarted from data, hidden channels zero
    np.testing.assert_array_equal(new[0, ..., :OBS], data[0, :-1])
    np.testing.assert_array_equal(new[0, ..., OBS:], 0)
    # r >= 1: x[r, m] <- xhat[r, m] (prediction of transition m), hidden channels included
    np.testing.assert_array_equal(new[1:, 1:], predictions[1:, :-1])
    assert np.any(new[1:, 1:, ..., OBS:] != 0)
    # transition 1 of a propagated trajectory keeps its start state (frame 0)
    np.testing.assert_array_equal(new[1:, 0], states[1:, 0])
    two = np.asarray(propagate(model, states, predictions, data, reinitialised_batches=2))
    np.testing.assert_array_equal(two[1, ..., :OBS], data[1, :-1])


def direct_mean_loss(model, states, targets, steps):
    finals = model.advance(states, steps)
    diff = model.observable(finals) - targets
    return jnp.mean(jnp.sqrt(jnp.sum(diff**2, axis=(-3, -2, -1))))


# compiled once per shape (eagerly, each operation of the rollout and its gradient was
# dispatched, and first compiled, on its own)
direct_value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(direct_mean_loss))


@pytest.mark.parametrize("minibatches", [1, 2, 3, 4, 6, 12])
def test_minibatch_accumulation_equals_full_batch_gradient(key, data, rng, minibatches):
    model = random_model(key)
    states = jnp.asarray(rng.uniform(size=(R, M, S, S, OBS + HID)).astype(np.float32))
    targets = data[:, 1:]
    loss, grad, predictions, losses = accumulate_gradients(
        model, states, targets, key=key, steps_between_frames=3, minibatches=minibatches
    )
    assert losses.shape == (R, M)
    np.testing.assert_allclose(losses.mean(), loss, rtol=1e-5)
    expected_loss, expected_grad = direct_value_and_grad(model, states, targets, 3)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    for got, want in zip(leaves(grad), leaves(expected_grad), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(predictions, model.advance(states, 3), atol=1e-6)


def test_minibatches_must_divide_transitions(key, data):
    model = NCA(OBS, HID, key=key)
    with pytest.raises(ValueError, match="must divide the number of transitions"):
        accumulate_gradients(
            model,
            initial_states(model, data),
            data[:, 1:],
            key=key,
            steps_between_frames=2,
            minibatches=5,
        )


INF = jnp.asarray(jnp.inf)


def epoch_setup(training, key, data):
    """A random model, its optimiser state, the data's start states and the epoch function."""
    model = random_model(key)
    optimizer = make_optimizer(training)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    return model, optimizer, opt_state, initial_states(model, data), make_epoch(training, optimizer)


def test_one_epoch_updates_model_and_states_consistently(key, data):
    config = config_from_dict(
        {
            "training": {
                "minibatches": 2,
                "steps_between_frames": 3,
                "reinitialised_batches": 1,
                "update_every": "epoch",
            }
        }
    )
    model = random_model(key)
    optimizer = make_optimizer(config.training)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    states = initial_states(model, data)
    epoch = make_epoch(config.training, optimizer)
    result = epoch(model, opt_state, states, data, key, INF)
    # the model moved, by about learning_rate per element (normalised gradients, Nadam)
    step = [np.abs(a - b).max() for a, b in zip(leaves(result.model), leaves(model), strict=True)]
    assert 0 < max(step) < 10 * config.training.learning_rate
    # propagated trajectories start from the model's own predictions, hidden channels too
    predicted = model.advance(states, 3)
    np.testing.assert_allclose(result.states[1:, 1:], predicted[1:, :-1], atol=1e-6)
    np.testing.assert_array_equal(result.states[0], states[0])
    assert float(result.loss) == pytest.approx(
        float(direct_mean_loss(model, states, data[:, 1:], 3)), rel=1e-5
    )
    # the selection loss is the re-initialised trajectory's (r = 0) alone
    assert float(result.reinitialised_loss) == pytest.approx(
        float(direct_mean_loss(model, states[:1], data[:1, 1:], 3)), rel=1e-5
    )


def test_epoch_compiles_once(key, data, monkeypatch):
    from stnca.train import gradients

    traces = []
    real = gradients._minibatch_objective

    def counting(*args, **kwargs):
        traces.append(1)  # runs only while jax traces the epoch
        return real(*args, **kwargs)

    monkeypatch.setattr(gradients, "_minibatch_objective", counting)
    config = config_from_dict(
        {
            "training": {
                "steps_between_frames": 2,
                "minibatches": 2,
                "state_penalty": 0.01,
                "propagate_tolerance": 0.01,
            }
        }
    )
    model = NCA(OBS, HID, key=key)
    optimizer = make_optimizer(config.training)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    epoch = make_epoch(config.training, optimizer)
    states = initial_states(model, data)
    for i in range(3):
        model, opt_state, states, loss, *_ = epoch(
            model, opt_state, states, data, jax.random.fold_in(key, i), jnp.asarray(float(i))
        )
    assert len(traces) == 1


def adam_count(opt_state) -> int:
    counts = [
        int(leaf)
        for leaf in jax.tree_util.tree_leaves(opt_state)
        if getattr(leaf, "dtype", None) == jnp.int32 and leaf.shape == ()
    ]
    assert len(counts) == 2 and len(set(counts)) == 1, counts  # Adam's and the schedule's
    return counts[0]


@pytest.mark.parametrize("minibatches", [1, 2, 4])
def test_per_minibatch_mode_takes_one_normalised_update_per_minibatch(key, data, minibatches):
    from stnca.train import gradients

    training = config_from_dict(
        {"training": {"minibatches": minibatches, "steps_between_frames": 2, "state_penalty": 0}}
    ).training
    assert training.update_every == "minibatch" and training.updates_per_epoch == minibatches
    model, optimizer, opt_state, states, epoch = epoch_setup(training, key, data)
    result = epoch(model, opt_state, states, data, key, INF)
    result = epoch(result.model, result.opt_state, result.states, data, key, INF)
    assert adam_count(result.opt_state) == 2 * minibatches
    # the same epoch by hand: the shuffled mini-batches one after the other, each
    # gradient normalised on its own and applied before the next mini-batch is rolled out
    k_noise, k_epoch = jax.random.split(key)
    _, flat_states, flat_targets, order, _ = gradients._flatten(
        states, data[:, 1:], minibatches, k_epoch
    )
    manual, manual_state = model, optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    for index in np.asarray(order):
        _, gradient = direct_value_and_grad(manual, flat_states[index], flat_targets[index], 2)
        norms = [float(jnp.linalg.norm(g)) for g in leaves(gradient)]
        assert all(n > 0 for n in norms)
        updates, manual_state = jax.jit(optimizer.update)(
            gradient, manual_state, eqx.filter(manual, eqx.is_inexact_array)
        )
        manual = eqx.filter_jit(eqx.apply_updates)(manual, updates)
    first = epoch(model, opt_state, states, data, key, INF)
    for got, want in zip(leaves(first.model), leaves(manual), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert adam_count(manual_state) == minibatches


def test_state_penalty_changes_the_objective_not_the_logged_loss(key, data):
    model = random_model(key)
    states = initial_states(model, data) + 2.0  # far outside [0, 1]
    common = dict(key=key, steps_between_frames=2, minibatches=2)
    plain = accumulate_gradients(model, states, data[:, 1:], **common)
    boxed = accumulate_gradients(model, states, data[:, 1:], state_penalty=0.5, **common)
    np.testing.assert_array_equal(plain[0], boxed[0])  # the logged loss leaves it out
    np.testing.assert_array_equal(plain[2], boxed[2])
    assert any(
        not np.allclose(a, b) for a, b in zip(leaves(plain[1]), leaves(boxed[1]), strict=True)
    )


def test_advance_with_penalty_averages_the_box_penalty_over_steps(key):
    from stnca.losses import box_penalty
    from stnca.train.algorithm import advance_with_penalty

    model = random_model(key)
    x = jax.random.uniform(key, (2, S, S, OBS + HID), minval=-1.0, maxval=2.0)
    final, penalty = advance_with_penalty(model, x, 3, key=None, checkpoint=True)
    states = [x]
    for _ in range(3):
        states.append(model(states[-1]))
    np.testing.assert_allclose(final, states[-1], atol=1e-6)
    expected = sum(float(box_penalty(s)) for s in states[1:]) / 3
    assert float(penalty) == pytest.approx(expected, rel=1e-5)


def test_propagation_gate_restarts_every_trajectory_when_the_loss_rises(key, data):
    training = config_from_dict(
        {"training": {"steps_between_frames": 2, "propagate_tolerance": 0.01}}
    ).training
    model, _, opt_state, states, epoch = epoch_setup(training, key, data)
    kept = epoch(model, opt_state, states, data, key, INF)
    assert bool(kept.propagated)
    assert not np.allclose(kept.states[1:, 1:], states[1:, 1:])
    reset = epoch(model, opt_state, states, data, key, kept.loss - 1.0)
    assert not bool(reset.propagated)
    np.testing.assert_array_equal(reset.states, initial_states(model, data))


# ---- end to end: tiny runs -------------------------------------------------------------


def test_tiny_training_run_lowers_the_loss_tenfold(tmp_path, rng):
    # 200 epochs (the loss is down 13x by epoch 100 and 22x by 200; a broken gradient or
    # update leaves it where it starts)
    config = tiny_config(tmp_path, rng, epochs=200, lr_decay_epochs=200, checkpoint_every=100)
    result = train(config, tmp_path / "run", progress=False, log=lambda _: None)
    first = result.metrics[0]["loss"]
    assert result.lowest_loss < first / 10, (first, result.lowest_loss)
    assert min(r["reinitialised_loss"] for r in result.metrics) < first / 10
    for name in (
        "model.eqx",
        "final.eqx",
        "checkpoint.eqx",
        "config.toml",
        "metrics.csv",
        "loss.png",
        "train_data.npy",
    ):
        assert (tmp_path / "run" / name).is_file(), name
    # the result carries what the run used, so callers need not read it back from disk
    np.testing.assert_array_equal(result.data, np.load(tmp_path / "run" / "train_data.npy"))
    assert result.config.to_dict() == load_config(tmp_path / "run" / "config.toml").to_dict()
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert [r["epoch"] for r in rows] == list(range(0, 201))  # row 0: the untrained model
    assert set(rows[0]) == {
        "epoch",
        "loss",
        "reinitialised_loss",
        "rollout_loss",
        "gradient_norm",
        "learning_rate",
        "propagated",
        "elapsed_seconds",
    }
    # the logged learning rate is the schedule's at each epoch's first update, in epochs
    assert rows[1]["learning_rate"] == pytest.approx(0.02)
    assert rows[200]["learning_rate"] == pytest.approx(0.02 * 0.01 ** (199 / 200), rel=1e-5)
    # chosen by the free rollout, measured every 10 epochs after the first 5%
    scored = [r for r in rows if not np.isnan(r["rollout_loss"])]
    assert [r["epoch"] for r in scored] == list(range(0, 201, 10))
    eligible = [r for r in scored if r["epoch"] > 10]
    chosen = min(eligible, key=lambda r: r["rollout_loss"])
    assert (result.best_epoch, result.best_loss) == (chosen["epoch"], chosen["rollout_loss"])
    assert result.best_loss < scored[0]["rollout_loss"]
    final = load_model(tmp_path / "run" / "final.eqx")
    for a, b in zip(leaves(final), leaves(result.final_model), strict=True):
        np.testing.assert_array_equal(a, b)
    best = load_model(tmp_path / "run" / "model.eqx")
    header = read_header(tmp_path / "run" / "model.eqx")
    assert header["loss"] == pytest.approx(result.best_loss)
    for a, b in zip(leaves(best), leaves(result.model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_load_round_trip_is_bit_identical(tmp_path, key, rng):
    model = random_model(
        key,
        kernels=("gradient_x", "identity"),
        activation="tanh",
        update_probability=0.5,
        boundary="fixed",
        hidden_bias=True,
    )
    path = save_model(tmp_path / "m.eqx", model)
    loaded = load_model(path)
    assert loaded.hyperparameters() == model.hyperparameters()
    for a, b in zip(leaves(loaded), leaves(model), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    x = jnp.asarray(rng.normal(size=(6, 6, 4)).astype(np.float32))
    np.testing.assert_array_equal(loaded.rollout(x, 5, key=key), model.rollout(x, 5, key=key))


def test_load_rejects_non_stnca_files(tmp_path):
    junk = tmp_path / "junk.eqx"
    junk.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="not an stnca file"):
        load_model(junk)
    with pytest.raises(ValueError, match="not found"):
        load_model(tmp_path / "none.eqx")


def stochastic_config(tmp_path, rng, epochs, **training):
    config = tiny_config(
        tmp_path, rng, epochs=epochs, minibatches=2, checkpoint_every=3, **training
    )
    return config.replace("model", update_probability=0.5)


@pytest.mark.parametrize(
    "options",
    [
        dict(update_every="epoch", select_by="loss"),
        dict(EVERY_OPTION, select_by="rollout", weight_average=0.9),
        dict(EVERY_OPTION, select_by="reinitialised"),
    ],
    ids=["algorithm-2", "every-option-rollout", "every-option-reinitialised"],
)
def test_resumed_run_matches_uninterrupted_run_exactly(tmp_path, rng, options):
    quiet = dict(progress=False, log=lambda _: None)
    config = stochastic_config(tmp_path, rng, epochs=8, **options)
    full = train(config, tmp_path / "full", **quiet)
    train(config, tmp_path / "part", epochs=5, **quiet)  # checkpoint at 3, then 5 (the end)
    resumed = train(config, tmp_path / "part", epochs=8, resume=True, **quiet)
    for a, b in zip(leaves(full.final_model), leaves(resumed.final_model), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(leaves(full.model), leaves(resumed.model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert full.best_epoch == resumed.best_epoch
    assert [r["loss"] for r in full.metrics] == [r["loss"] for r in resumed.metrics]
    # the saved training state (past the JSON header, which holds wall-clock time) is identical
    full_state = (tmp_path / "full" / "checkpoint.eqx").read_bytes().split(b"\n", 1)[1]
    part_state = (tmp_path / "part" / "checkpoint.eqx").read_bytes().split(b"\n", 1)[1]
    assert full_state == part_state


def test_resume_refuses_a_changed_config_and_a_missing_checkpoint(tmp_path, rng):
    quiet = dict(progress=False, log=lambda _: None)
    config = tiny_config(tmp_path, rng, epochs=2)
    with pytest.raises(ValueError, match="nothing to resume"):
        train(config, tmp_path / "run", resume=True, **quiet)
    train(config, tmp_path / "run", **quiet)
    changed = config.replace("training", learning_rate=0.5)
    with pytest.raises(ValueError, match="config differs"):
        train(changed, tmp_path / "run", resume=True, **quiet)
    with pytest.raises(ValueError, match="already holds a training run"):
        train(config, tmp_path / "run", **quiet)


def patch_epochs(monkeypatch, change):
    """Make training's epoch function return ``change(call_number, result)``."""
    real_shared_epoch = session.shared_epoch

    def shared_epoch(*args):
        epoch_fn = real_shared_epoch(*args)
        calls = {"n": 0}

        def epoch(*inner):
            calls["n"] += 1
            return change(calls["n"], epoch_fn(*inner))

        return epoch

    monkeypatch.setattr("stnca.train.session.shared_epoch", shared_epoch)


def test_forced_nan_stops_training_and_keeps_the_best_model(tmp_path, rng, monkeypatch):
    def poison(n, result):
        if n < 6:
            return result
        # a diverged update: NaN weights and a NaN loss
        poisoned = jax.tree.map(lambda a: a * jnp.nan, result.model)
        nan = jnp.asarray(jnp.nan)
        return result._replace(model=poisoned, loss=nan, reinitialised_loss=nan)

    patch_epochs(monkeypatch, poison)
    config = tiny_config(tmp_path, rng, epochs=20, checkpoint_every=4, validate_every=1)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="epoch 6: the loss became nan"):
        train(config, out, progress=False, log=lambda _: None)
    header = read_header(out / "model.eqx")
    rows = read_metrics(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3, 4, 5]
    best = min(rows[2:], key=lambda r: r["rollout_loss"])  # not in the first 5% (epoch 1)
    assert header["epoch"] == best["epoch"]
    assert header["loss"] == pytest.approx(best["rollout_loss"])
    model = load_model(out / "model.eqx")
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves(model))
    # the checkpoint holds the last finite state (after epoch 5), never the NaN weights
    assert read_header(out / "checkpoint.eqx")["epoch"] == 5
    resumed = train(
        config.replace("training", epochs=5), out, resume=True, progress=False, log=lambda _: None
    )
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves(resumed.final_model))


def test_measurement_noise_is_the_papers_interpolation(key, rng):
    from stnca.data.augment import measurement_noise

    y = jnp.asarray(rng.uniform(0.2, 0.7, size=(2, 3, 8, 8, 2)).astype(np.float32))
    np.testing.assert_array_equal(measurement_noise(y, 0.0, key=key), y)
    pure = np.asarray(measurement_noise(y, 1.0, key=key))
    assert pure.min() >= float(y.min()) and pure.max() <= float(y.max())
    assert abs(np.corrcoef(pure.ravel(), np.asarray(y).ravel())[0, 1]) < 0.1
    xi = 0.3
    noisy = np.asarray(measurement_noise(y, xi, key=key))
    np.testing.assert_allclose(noisy, (1 - xi) * np.asarray(y) + xi * pure, atol=1e-6)
    with pytest.raises(ValueError, match="xi must be in"):
        measurement_noise(y, 1.5, key=key)


def test_config_noise_reaches_the_training_data(tmp_path, rng):
    from stnca.train.dataset import training_data

    config = tiny_config(tmp_path, rng)
    clean = training_data(config)
    noisy = training_data(config.replace("data", noise=0.2))
    assert np.abs(noisy - clean).max() > 0.01
    assert noisy.min() >= clean.min() - 1e-6 and noisy.max() <= clean.max() + 1e-6
    # noise that stays within the data's range, interpolated with weight 0.2: the residual
    # (noisy - 0.8 clean) / 0.2 lies in [min, max]
    eta = (noisy - 0.8 * clean) / 0.2
    assert eta.min() >= clean.min() - 1e-4 and eta.max() <= clean.max() + 1e-4


def test_rising_training_loss_never_hands_back_the_untrained_model(tmp_path, rng, monkeypatch):
    # the total loss rises every epoch (as propagation can make it): the model is still
    # chosen by its rollouts, never the untrained one
    patch_epochs(monkeypatch, lambda n, result: result._replace(loss=jnp.asarray(float(n))))
    result = train(
        tiny_config(tmp_path, rng, epochs=40), tmp_path / "run", progress=False, log=print
    )
    assert result.best_epoch >= 10
    assert np.any(result.model.w_out != 0)  # the untrained model's output layer is zero


@pytest.mark.parametrize("select_by", ["loss", "reinitialised"])
def test_loss_rules_skip_the_warm_up_and_need_a_falling_loss(tmp_path, rng, select_by):
    config = tiny_config(tmp_path, rng, epochs=40, select_by=select_by, select_after=0.25)
    result = train(config, tmp_path / "run", progress=False, log=lambda _: None)
    rows = result.metrics
    column = "loss" if select_by == "loss" else "reinitialised_loss"
    # replay the rule: after epoch 10, below the best so far and the previous epoch's
    best, best_epoch = np.inf, 0
    for previous, row in zip(rows, rows[1:], strict=False):
        value = row[column]
        if row["epoch"] > 10 and value < best and value < previous[column]:
            best, best_epoch = value, row["epoch"]
    assert (result.best_epoch, result.best_loss) == (best_epoch, best)
    assert result.best_epoch > 10


def test_warns_when_no_model_qualifies(tmp_path, rng, monkeypatch):
    monkeypatch.setattr("stnca.train.session._SCORE", lambda *args, **kwargs: jnp.nan)
    messages = []
    result = train(
        tiny_config(tmp_path, rng, epochs=4), tmp_path / "run", progress=False, log=messages.append
    )
    assert result.best_epoch == 0
    assert any("untrained model" in m and "final.eqx" in m for m in messages)
    final = load_model(tmp_path / "run" / "final.eqx")
    for a, b in zip(leaves(final), leaves(result.final_model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_hold_final_feeds_the_last_transition_its_own_prediction(key, data, rng):
    model = NCA(OBS, HID, key=key)
    states = jnp.asarray(rng.normal(size=(R, M, S, S, OBS + HID)).astype(np.float32))
    predictions = jnp.asarray(rng.normal(size=(R, M, S, S, OBS + HID)).astype(np.float32))
    held = np.asarray(propagate(model, states, predictions, data, 1, hold_final=True))
    plain = np.asarray(propagate(model, states, predictions, data, 1))
    np.testing.assert_array_equal(held[1:, -1], predictions[1:, -1])  # its own prediction
    np.testing.assert_array_equal(held[1:, :-1], plain[1:, :-1])  # the rest as before
    np.testing.assert_array_equal(held[0], plain[0])  # re-initialised: from the data


def test_hold_final_needs_a_repeated_final_frame(tmp_path, rng):
    config = tiny_config(tmp_path, rng, epochs=2, hold_final=True)
    with pytest.raises(ValueError, match="hold_final needs data whose last frame repeats"):
        train(config, tmp_path / "run", progress=False, log=lambda _: None)
    assert not (tmp_path / "run").exists()


# ---- rematerialisation: every step, every k steps, none --------------------------------


REMAT = {
    "none": dict(checkpoint_rollout=False),
    "every step": dict(checkpoint_rollout=True),
    "every 2": dict(remat_every=2),
    "every 4, a last block of 2": dict(remat_every=4),
}


def two_epochs(key, data, settings: dict, **model_options):
    """The losses, weights and start states after two epochs of ``make_epoch`` with the
    ``[training]`` ``settings``, from ``random_model(key, **model_options)``."""
    training = config_from_dict({"training": settings}).training
    model = random_model(key, **model_options)
    optimizer = make_optimizer(training)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    states, epoch, losses = initial_states(model, data), make_epoch(training, optimizer), []
    for i in range(2):
        model, opt_state, states, loss, *_ = epoch(
            model, opt_state, states, data, jax.random.fold_in(key, i), INF
        )
        losses.append(float(loss))
    return losses, leaves(model), np.asarray(states)


def test_rematerialisation_changes_no_loss_and_no_weight(key, data):
    # stochastic updates: the blocks must hand every step its own key, as without them.
    # Measured: the losses are identical, the weights within 2e-8 (the backward pass's
    # fusion differs); the state penalty (on by default) takes advance_with_penalty
    outcomes = {}
    for name, options in REMAT.items():
        settings = {"steps_between_frames": 6, "minibatches": 2, **options}
        outcomes[name] = two_epochs(key, data, settings, update_probability=0.5)[:2]
    reference_losses, reference_weights = outcomes["none"]
    for name, (losses, weights) in outcomes.items():
        np.testing.assert_allclose(losses, reference_losses, rtol=1e-6, err_msg=name)
        for a, b in zip(weights, reference_weights, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=name)


def test_blocks_of_steps_give_the_gradient_of_the_plain_rollout(key, data):
    # 6 steps in blocks of 4: one whole block and a last one of 2 (no state penalty: the
    # rollout of _trajectory.advance)
    model = random_model(key, update_probability=0.5)
    states = initial_states(model, data)

    def gradient(**options):
        def loss(m):
            final = _trajectory.advance(lambda s, k: m(s, key=k), states, 6, key=key, **options)
            return jnp.sum(final**2)

        return leaves(eqx.filter_jit(jax.grad(loss))(model))

    plain = gradient()
    blocks = gradient(checkpoint=True, remat_every=4)
    for a, b in zip(blocks, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_remat_every_is_validated():
    with pytest.raises(ValueError, match="training.remat_every must be >= 1, got 0"):
        config_from_dict({"training": {"remat_every": 0}})
    with pytest.raises(ValueError, match=r"remat_every \(8\) must be at most .*\(4\)"):
        config_from_dict({"training": {"remat_every": 8, "steps_between_frames": 4}})
    with pytest.raises(ValueError, match="needs training.checkpoint_rollout = true"):
        config_from_dict({"training": {"remat_every": 2, "checkpoint_rollout": False}})


@pytest.mark.parametrize("update_every", ["minibatch", "epoch"])
def test_rollout_chunks_give_the_same_training(key, data, update_every):
    """A mini-batch rolled out in chunks (summed gradients) trains as one rolled out at once:
    the same losses and weights up to floating-point order (a deterministic model)."""
    outcomes = {}
    for chunk in (0, 1, 2):
        settings = {"steps_between_frames": 4, "minibatches": 2, "rollout_chunk": chunk}
        outcomes[chunk] = two_epochs(key, data, {**settings, "update_every": update_every})
    reference_losses, reference_weights, reference_states = outcomes[0]
    for chunk, (losses, weights, states) in outcomes.items():
        np.testing.assert_allclose(losses, reference_losses, rtol=1e-5, err_msg=str(chunk))
        np.testing.assert_allclose(states, reference_states, rtol=1e-4, atol=1e-5)
        for a, b in zip(weights, reference_weights, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=str(chunk))
    assert reference_losses[1] != reference_losses[0]  # it did train


def test_rollout_chunk_must_divide_the_minibatch():
    from stnca.train.loop import check_data_shape

    config = config_from_dict({"training": {"minibatches": 2, "rollout_chunk": 3}})
    with pytest.raises(ValueError, match=r"rollout_chunk \(3\) must divide the mini-batch size"):
        check_data_shape(config, 2, 5, False)  # 2 x 4 transitions in 2 mini-batches of 4
    check_data_shape(config.replace("training", rollout_chunk=2), 2, 5, False)


def test_sharpness_aware_gradients_are_taken_at_the_shifted_weights():
    from stnca.train.objective import sharpness_aware

    curvature = jnp.array([1.0, 4.0, 9.0])

    def value_and_grad(params, static, start, target, k):
        w = params["w"]
        value = 0.5 * jnp.sum(curvature * w**2) + jnp.sum(w**4)
        return (value, (start, target)), {"w": curvature * w + 4 * w**3}

    w = jnp.array([0.3, -0.2, 0.1])
    (value, aux), g = sharpness_aware(value_and_grad, 0.05)({"w": w}, None, 1, 2, None)
    plain = curvature * w + 4 * w**3
    shifted = w + 0.05 * plain / jnp.linalg.norm(plain)
    np.testing.assert_allclose(g["w"], curvature * shifted + 4 * shifted**3, rtol=1e-6)
    assert value == pytest.approx(float(0.5 * jnp.sum(curvature * w**2) + jnp.sum(w**4)))
    assert aux == (1, 2)  # the predictions and losses are the unshifted weights'


def test_a_sharpness_aware_run_trains_and_differs_from_a_plain_one(tmp_path, rng):
    quiet = dict(progress=False, log=lambda _: None)
    data = lambda: np.random.default_rng(0)  # noqa: E731  (the same data for both)
    plain = train(tiny_config(tmp_path, data(), epochs=30), tmp_path / "plain", **quiet)
    sharp = train(
        tiny_config(tmp_path, data(), epochs=30, sam_radius=0.05), tmp_path / "sam", **quiet
    )
    first = sharp.metrics[0]["loss"]
    assert first == pytest.approx(plain.metrics[0]["loss"])  # the same start
    assert sharp.lowest_loss < 0.8 * first, (first, sharp.lowest_loss, plain.lowest_loss)
    assert any(
        np.any(np.asarray(a) != np.asarray(b))
        for a, b in zip(leaves(plain.final_model), leaves(sharp.final_model), strict=True)
    )
    with pytest.raises(ValueError, match="training.sam_radius must be >= 0"):
        tiny_config(tmp_path, rng, sam_radius=-0.1)


def test_the_weights_average_is_the_normalised_decayed_sum_of_every_update():
    from stnca.train.optimizers import average_weights, averaged

    decay = 0.5
    optimizer = optax.chain(optax.sgd(1.0), average_weights(decay))
    params = {"w": jnp.zeros(2)}
    state = optimizer.init(params)
    seen = []
    for g in ([-1.0, 0.0], [0.0, -2.0], [-4.0, 0.0]):
        updates, state = optimizer.update({"w": jnp.asarray(g)}, state, params)
        np.testing.assert_array_equal(updates["w"], -jnp.asarray(g))  # left as they are
        params = optax.apply_updates(params, updates)
        seen.append(np.asarray(params["w"]))
    # weights after updates 1, 2, 3 in proportion decay^2 : decay : 1, the start none
    factors = np.array([decay**2, decay, 1.0]) * (1 - decay)
    expected = np.tensordot(factors, np.stack(seen), 1) / factors.sum()
    np.testing.assert_allclose(averaged(state)["w"], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="0 weight averages"):
        averaged(optax.sgd(1.0).init(params))


def test_an_epoch_with_weight_averaging_returns_the_averaged_model(key, data):
    from stnca.train.optimizers import averaged

    training = config_from_dict(
        {"training": {"minibatches": 2, "steps_between_frames": 2, "weight_average": 0.5}}
    ).training
    model, _, opt_state, states, epoch = epoch_setup(training, key, data)
    result = epoch(model, opt_state, states, data, key, INF)
    average = eqx.combine(averaged(result.opt_state), result.model)
    for a, b in zip(leaves(result.average), leaves(average), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)  # compiled against eager rounding
    # two updates: the average lies between the weights after the first and the last
    assert any(
        np.any(np.asarray(a) != np.asarray(b))
        for a, b in zip(leaves(result.average), leaves(result.model), strict=True)
    )
    plain_model, _, plain_state, _, plain = epoch_setup(
        dataclasses.replace(training, weight_average=0.0), key, data
    )
    assert plain(plain_model, plain_state, states, data, key, INF).average is None
    for bad, message in ((1.0, "must be in \\[0, 1\\)"), (-0.1, "must be in \\[0, 1\\)")):
        with pytest.raises(ValueError, match=message):
            config_from_dict({"training": {"weight_average": bad}})
    with pytest.raises(ValueError, match="weight_average needs training.select_by"):
        config_from_dict({"training": {"weight_average": 0.9, "select_by": "loss"}})


def test_configs_equal_but_for_host_fields_share_one_epoch_function():
    from stnca.train import algorithm
    from stnca.train.config import TrainingConfig

    base = TrainingConfig(epochs=10, minibatches=2)
    host = base.__class__(**{**base.__dict__, "seed": 3, "epochs": 99, "validate_every": 7})
    traced = base.__class__(**{**base.__dict__, "state_penalty": 0.5})
    assert algorithm.shared_epoch(base) is algorithm.shared_epoch(host)
    assert algorithm.shared_epoch(base) is not algorithm.shared_epoch(traced)
    assert algorithm.shared_epoch(base, 0.01) is not algorithm.shared_epoch(base)
    assert algorithm.HOST_FIELDS <= {f.name for f in dataclasses.fields(TrainingConfig)}


@pytest.mark.parametrize("update_every", ["minibatch", "epoch"])
def test_the_epoch_and_its_optimiser_read_no_host_field(key, data, update_every):
    """Configs that differ only in ``HOST_FIELDS`` share one epoch function: so building and
    tracing it (every option on) must read none of them."""
    from stnca.train import algorithm

    training = config_from_dict(
        {
            "training": {
                **EVERY_OPTION,
                "minibatches": 2,
                "steps_between_frames": 2,
                "sam_radius": 0.05,
                "l1_penalty": 0.01,
                "kernel_lasso": 0.01,
                "channel_lasso": 0.01,
                "loss_fraction": 0.5,
                "hold_final": True,
                "lr_decay_rate": 0.5,
                "damage_fraction": 0.5,
                "damage_fill": "noise",
                "weight_average": 0.9,
            }
        }
    ).training
    training = dataclasses.replace(training, update_every=update_every)
    read = set()

    class Recording:
        def __getattr__(self, name):
            read.add(name)
            return getattr(training, name)

    model = random_model(key)
    optimizer = make_optimizer(Recording())
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    epoch = make_epoch(Recording(), optimizer, 0.01)
    jax.eval_shape(epoch, model, opt_state, initial_states(model, data), data, key, INF)
    assert {"steps_between_frames", "minibatches", "learning_rate"} <= read
    assert not read & algorithm.HOST_FIELDS
