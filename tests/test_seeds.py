"""train_seeds: K seeds of one config trained as one vmapped program."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import EVERY_OPTION, leaves, tiny_config

from stnca.serialization import load_model, read_header
from stnca.train import loop, read_metrics, session, train, train_seeds

QUIET = dict(progress=False, log=lambda _: None)
SEEDS = [0, 1, 2]

# Batching the K models (vmap) lets XLA sum in another order than the unbatched epoch, so a
# seed's numbers differ from its separate run's by float32 rounding (~1e-7 relative at the
# first epoch). With SGD they stay there (measured <= 2e-7 of the weights' scale after 4
# epochs), so 1e-5 is a bound with room. Adam-type optimisers are scale-invariant: a gradient
# component that is small by cancellation, hence with a large relative rounding error, still
# moves its weight by about the learning rate, so such differences grow (Nadam, the default:
# ~5e-6 after 2 epochs of one update, ~4e-4 after 8 updates); that case is compared after 2
# epochs to 1e-4.
TOLERANCE = 1e-5


def short_config(tmp_path, rng, epochs=4, **training):
    settings = {"minibatches": 2, "checkpoint_every": 2, "validate_every": 1, **training}
    return tiny_config(tmp_path, rng, epochs=epochs, **settings)


def folders(tmp_path, name, count=3):
    return [tmp_path / name / f"seed{k}" for k in range(count)]


def assert_close_models(a, b, tolerance=TOLERANCE):
    scale = max(float(np.abs(leaf).max()) for leaf in leaves(a))
    for x, y in zip(leaves(a), leaves(b), strict=True):
        assert float(np.abs(np.asarray(x) - np.asarray(y)).max()) <= tolerance * scale


def assert_equal_models(a, b):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def state_bytes(folder):
    """The checkpoint's arrays (past the JSON header, which holds wall-clock time)."""
    return (folder / "checkpoint.eqx").read_bytes().split(b"\n", 1)[1]


SGD = dict(optimizer="sgd", gradient_normalisation=False, learning_rate=0.002)


@pytest.mark.parametrize(
    ("epochs", "options", "tolerance"),
    [(4, dict(EVERY_OPTION, **SGD), 1e-5), (2, dict(minibatches=1), 1e-4)],
    ids=["sgd-every-option-stochastic", "nadam-defaults"],
)
def test_seeds_match_separate_runs(tmp_path, rng, epochs, options, tolerance):
    config = short_config(tmp_path, rng, epochs=epochs, **options)
    if options.get("optimizer") == "sgd":
        config = config.replace("model", update_probability=0.5)
    outs = folders(tmp_path, "together")
    together = train_seeds(config, outs, SEEDS, **QUIET)
    for seed, out, result in zip(SEEDS, outs, together, strict=True):
        alone = train(config.replace("training", seed=seed), tmp_path / f"alone{seed}", **QUIET)
        assert result.diverged is None and result.config.training.seed == seed
        # the same files, the same data and config
        names = sorted(p.name for p in out.iterdir())
        assert names == sorted(p.name for p in (tmp_path / f"alone{seed}").iterdir())
        for name in ("train_data.npy", "config.toml"):
            assert (out / name).read_bytes() == (tmp_path / f"alone{seed}" / name).read_bytes()
        assert_close_models(result.final_model, alone.final_model, tolerance)
        assert_close_models(result.model, alone.model, tolerance)
        assert_equal_models(load_model(out / "final.eqx"), result.final_model)
        assert_equal_models(load_model(out / "model.eqx"), result.model)
        assert result.best_epoch == alone.best_epoch > 0
        assert read_header(out / "model.eqx")["epoch"] == alone.best_epoch
        rows, expected = read_metrics(out / "metrics.csv"), alone.metrics
        assert [r["epoch"] for r in rows] == [r["epoch"] for r in expected]
        assert len(rows) == epochs + 1
        for row, want in zip(rows, expected, strict=True):
            for column in ("learning_rate", "propagated"):
                assert row[column] == pytest.approx(want[column], rel=1e-12, nan_ok=True)
            for column in ("loss", "reinitialised_loss", "rollout_loss", "gradient_norm"):
                assert row[column] == pytest.approx(want[column], rel=tolerance, nan_ok=True)
    # different seeds: different initial weights and training streams
    assert together[0].metrics[-1]["loss"] != together[1].metrics[-1]["loss"]


def test_image_seeds_redraw_hold_and_augment_like_separate_runs(tmp_path):
    from test_morph import tiny_morph_config

    # new copies every 2 epochs, per-epoch noise, a final frame held: the shared data paths
    config = tiny_morph_config(tmp_path, epochs=3, hold_final=True, validate_every=1, **SGD)
    config = config.replace("data", redraw_every=2, augment_noise=0.01)
    result = train_seeds(config, folders(tmp_path, "run", 2), [0, 1], **QUIET)[1]
    alone = train(config.replace("training", seed=1), tmp_path / "alone", **QUIET)
    assert_close_models(result.final_model, alone.final_model)
    assert result.best_epoch == alone.best_epoch
    losses = [row["loss"] for row in result.metrics]
    assert losses == pytest.approx([row["loss"] for row in alone.metrics], rel=TOLERANCE)


def count_epoch_traces(monkeypatch):
    """Count the calls of the (Python) epoch function and the traces of its objective."""
    from stnca.train import gradients

    counts = {"epoch": 0, "objective": 0}
    real_objective = gradients._minibatch_objective

    def objective(*args, **kwargs):
        counts["objective"] += 1  # runs only while jax traces the epoch
        return real_objective(*args, **kwargs)

    def shared_epoch(training, augment_noise):
        # a new epoch function (not the process's shared one), so that its traces are counted
        epoch_fn = session.make_epoch(training, session.make_optimizer(training), augment_noise)

        def epoch(*inner):
            counts["epoch"] += 1  # K separate calls per epoch would count here
            return epoch_fn(*inner)

        return epoch

    monkeypatch.setattr(gradients, "_minibatch_objective", objective)
    monkeypatch.setattr("stnca.train.session.shared_epoch", shared_epoch)
    return counts


def test_the_epoch_compiles_once_for_all_seeds(tmp_path, rng, monkeypatch):
    counts = count_epoch_traces(monkeypatch)
    config = short_config(
        tmp_path, rng, epochs=5, restart_every=2, restart_hidden_noise=0.1, propagate_tolerance=0.1
    )
    results = train_seeds(config, folders(tmp_path, "run"), SEEDS, **QUIET)
    assert [r.epochs for r in results] == [5, 5, 5]
    # 5 epochs x 3 seeds: one trace of one vmapped program, nothing per seed or per epoch
    assert counts == {"epoch": 1, "objective": 1}


@pytest.mark.parametrize(
    "options",
    [
        dict(update_every="epoch", select_by="loss"),
        dict(EVERY_OPTION, select_by="rollout", weight_average=0.9),
    ],
    ids=["algorithm-2", "every-option"],
)
def test_resumed_seeds_match_uninterrupted_seeds_exactly(tmp_path, rng, options):
    config = short_config(tmp_path, rng, **options).replace("model", update_probability=0.5)
    full = train_seeds(config, folders(tmp_path, "full"), SEEDS, **QUIET)
    train_seeds(config, folders(tmp_path, "part"), SEEDS, epochs=2, **QUIET)
    resumed = train_seeds(config, folders(tmp_path, "part"), SEEDS, resume=True, **QUIET)
    for k, (a, b) in enumerate(zip(full, resumed, strict=True)):
        assert_equal_models(a.final_model, b.final_model)
        assert_equal_models(a.model, b.model)
        assert a.best_epoch == b.best_epoch and a.epochs == b.epochs == 4
        assert [r["loss"] for r in a.metrics] == [r["loss"] for r in b.metrics]
        assert state_bytes(tmp_path / "full" / f"seed{k}") == state_bytes(
            tmp_path / "part" / f"seed{k}"
        )


def test_an_interrupt_saves_every_seed_and_resumes_exactly(tmp_path, rng, monkeypatch):
    config = short_config(tmp_path, rng, epochs=5, checkpoint_every=10)
    full = train_seeds(config, folders(tmp_path, "full"), SEEDS, **QUIET)

    class Interrupted(loop.Progress):
        def update(self, epoch, *args):
            if epoch == 3:
                raise KeyboardInterrupt
            super().update(epoch, *args)

    monkeypatch.setattr(loop, "Progress", Interrupted)
    messages = []
    with pytest.raises(KeyboardInterrupt):
        train_seeds(config, folders(tmp_path, "part"), SEEDS, progress=False, log=messages.append)
    assert "interrupted at epoch 3; the checkpoints are saved" in messages[-1]
    for out in folders(tmp_path, "part"):
        assert read_header(out / "checkpoint.eqx")["epoch"] == 3
    monkeypatch.setattr(loop, "Progress", Interrupted.__mro__[1])
    resumed = train_seeds(config, folders(tmp_path, "part"), SEEDS, resume=True, **QUIET)
    for k, (a, b) in enumerate(zip(full, resumed, strict=True)):
        assert_equal_models(a.final_model, b.final_model)
        assert state_bytes(tmp_path / "full" / f"seed{k}") == state_bytes(
            tmp_path / "part" / f"seed{k}"
        )


def poison_seed(monkeypatch, lane, from_call):
    """From the ``from_call``-th epoch on, make seed ``lane``'s update diverge (NaN weights
    and loss) in the batched epoch's result."""
    real_map = session.Lanes.map
    calls = {"n": 0}

    def nan_lane(leaf):
        return leaf.at[lane].set(jnp.nan) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf

    def map_(self, fn, in_axes, *, jit=False):
        mapped = real_map(self, fn, in_axes, jit=jit)
        if len(in_axes) != 6:  # not the epoch function
            return mapped

        def epoch(*args):
            result = mapped(*args)
            calls["n"] += 1
            if calls["n"] < from_call:
                return result
            model = jax.tree.map(nan_lane, eqx.filter(result.model, eqx.is_array))
            model = eqx.combine(model, result.model)
            return result._replace(model=model, loss=nan_lane(result.loss))

        return epoch

    monkeypatch.setattr(session.Lanes, "map", map_)


def test_a_diverged_seed_stops_alone_and_keeps_its_chosen_model(tmp_path, rng, monkeypatch):
    config = short_config(tmp_path, rng, epochs=6, checkpoint_every=4)
    clean = train_seeds(config, folders(tmp_path, "clean"), SEEDS, **QUIET)
    poison_seed(monkeypatch, lane=1, from_call=4)
    messages = []
    outs = folders(tmp_path, "run")
    results = train_seeds(config, outs, SEEDS, progress=False, log=messages.append)
    stopped = results[1]
    assert stopped.diverged is not None and "epoch 4: the loss became nan" in stopped.diverged
    assert any(m.startswith("seed 1: training stopped at epoch 4") for m in messages)
    # its folder holds the last finite state and the chosen model, as train() leaves it
    assert stopped.epochs == 3 and read_header(outs[1] / "checkpoint.eqx")["epoch"] == 3
    assert [r["epoch"] for r in read_metrics(outs[1] / "metrics.csv")] == [0, 1, 2, 3]
    chosen = load_model(outs[1] / "model.eqx")
    assert read_header(outs[1] / "model.eqx")["epoch"] == stopped.best_epoch > 0
    assert_equal_models(chosen, stopped.model)
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves(stopped.final_model))
    assert_equal_models(load_model(outs[1] / "final.eqx"), stopped.final_model)
    # the other seeds are untouched by it: bit-identical to a run without the NaN
    for k in (0, 2):
        assert results[k].diverged is None and results[k].epochs == 6
        assert_equal_models(results[k].final_model, clean[k].final_model)
        assert state_bytes(outs[k]) == state_bytes(tmp_path / "clean" / f"seed{k}")


def test_folders_at_different_epochs_resume_in_groups(tmp_path, rng):
    config = short_config(tmp_path, rng)
    outs = folders(tmp_path, "run", 2)
    train_seeds(config, outs, [0, 1], epochs=2, **QUIET)
    train(config.replace("training", seed=1), outs[1], epochs=3, resume=True, **QUIET)
    messages = []
    results = train_seeds(config, outs, [0, 1], resume=True, progress=False, log=messages.append)
    assert any("different epochs (2, 3)" in m for m in messages)
    assert [r.epochs for r in results] == [4, 4]
    assert [r.config.training.seed for r in results] == [0, 1]
    full = train_seeds(config, folders(tmp_path, "full", 2), [0, 1], **QUIET)
    for a, b in zip(full, results, strict=True):
        assert_close_models(a.final_model, b.final_model)


def test_tensorboard_logs_each_seed(tmp_path, rng):
    pytest.importorskip("tensorboardX")
    from test_tensorboard import assert_scalars_match, read_events

    config = short_config(tmp_path, rng, epochs=3, tensorboard=True)
    outs = folders(tmp_path, "run", 2)
    results = train_seeds(config, outs, [0, 1], **QUIET)
    for out, result in zip(outs, results, strict=True):
        (events,) = read_events(out / "tensorboard")
        assert_scalars_match(events["scalars"], result.metrics)
        assert [step for step, _ in events["images"]["prediction"]] == [0, 3]


@pytest.mark.parametrize(
    ("outs", "seeds", "message"),
    [
        (["a", "b"], [0, 1, 2], "same length, got 2 folders for 3 seeds"),
        (["a", "b", "c"], [0, 1, 0], r"seeds must all differ, got \[0\]"),
        (["a", "b", "a"], [0, 1, 2], "outs must all differ"),
        (["a", "b", "b/../a"], [0, 1, 2], "outs must all differ"),
        ([], [], "seeds is empty"),
        (["a"], [-1], "training.seed"),
    ],
)
def test_bad_input_is_refused_in_one_line(tmp_path, rng, outs, seeds, message):
    config = short_config(tmp_path, rng)
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match=message) as error:
        train_seeds(config, [tmp_path / o for o in outs], seeds, **QUIET)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "a").exists() and not any((tmp_path / "b").iterdir())


def test_runs_that_differ_in_more_than_the_seed_are_refused(tmp_path, rng):
    config = short_config(tmp_path, rng)
    other = config.replace("training", learning_rate=0.5, seed=1)
    with pytest.raises(ValueError, match="differs from that for .* in more than training.seed"):
        loop.train_runs([config, other], [tmp_path / "a", tmp_path / "b"], **QUIET)
    assert not (tmp_path / "a").exists()
