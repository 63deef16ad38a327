import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import D, diffusion_nca
from typer.testing import CliRunner

import stnca
from stnca import NCA
from stnca.analysis.prune import drop_hidden, nonzero_weights, prune
from stnca.cli import app
from stnca.serialization import load_model, save_model
from stnca.train.config.training import TrainingConfig


def diffusion_truth(size=12, frames=4, every=2, d=0.15):
    x = jnp.asarray(np.random.default_rng(0).random((size, size, 1)), jnp.float32)
    rule = diffusion_nca()
    truth = [x]
    for _ in range(frames - 1):
        for _ in range(every):
            x = x + d * (rule.increment(x) / D)
        truth.append(x)
    return np.stack(truth)


def padded():
    """The diffusion rule with two dead hidden channels: the rule reads them, but nothing
    writes them, so they stay at zero."""
    model = diffusion_nca(hidden_channels=2)
    return eqx.tree_at(lambda m: m.w_in, model, model.w_in.at[0, 1:, :].set(0.7))


def test_pruning_a_padded_rule_removes_exactly_its_dead_channels():
    model = padded()
    result = prune(model, diffusion_truth(), 2)
    assert result.removed_hidden == [1, 2] and result.model.hidden_channels == 0
    assert result.removed_blocks == []  # the Laplacian of the one channel is the whole rule
    assert result.pruned_error == pytest.approx(result.error, rel=1e-6)
    assert result.parameters == nonzero_weights(model) == 6 and result.pruned_parameters == 2
    x = jnp.asarray(np.random.default_rng(1).random((6, 6, 1)), jnp.float32)
    full = model.initial_state(x)
    np.testing.assert_allclose(result.model(x), model(full)[..., :1], atol=1e-7)


def test_drop_hidden_keeps_the_other_weights_and_the_structure():
    model = diffusion_nca(hidden_channels=3)
    keys = iter(jax.random.split(jax.random.key(2), 3))
    noisy = eqx.tree_at(
        lambda m: (m.w_in, m.w_out, m.b_out),
        model,
        tuple(
            jax.random.normal(next(keys), a.shape) for a in (model.w_in, model.w_out, model.b_out)
        ),
    )
    smaller = drop_hidden(noisy, [1])
    kept = np.array([0, 1, 3])
    assert smaller.hidden_channels == 2 and smaller.hidden_width == model.hidden_width
    np.testing.assert_array_equal(smaller.w_in, noisy.w_in[:, kept, :])
    np.testing.assert_array_equal(smaller.w_out, noisy.w_out[kept])
    np.testing.assert_array_equal(smaller.b_out, noisy.b_out[kept])


def test_the_command_writes_a_smaller_model_and_refuses_bad_input(tmp_path):
    save_model(tmp_path / "padded.eqx", padded())
    np.save(tmp_path / "truth.npy", diffusion_truth())
    out = tmp_path / "pruned"
    runner = CliRunner()
    arguments = ["--truth", str(tmp_path / "truth.npy"), "--steps-between-frames", "2"]
    result = runner.invoke(
        app, ["prune", str(tmp_path / "padded.eqx"), "--out", str(out), *arguments]
    )
    assert result.exit_code == 0, result.output
    assert "hidden channels 2 -> 0" in result.output
    assert load_model(out / "model.eqx").hidden_channels == 0
    report = json.loads((out / "prune.json").read_text())
    assert report["removed_hidden_channels"] == [1, 2] and report["pruned_parameters"] == 2
    assert report["parameters"] == 6
    for bad, message in [
        (["--tolerance", "-1", *arguments], "tolerance must be >= 0"),
        ([], "give a test trajectory"),
        (["--truth", str(tmp_path / "truth.npy")], "steps_between_frames"),
    ]:
        fresh = tmp_path / "fresh"
        result = runner.invoke(
            app, ["prune", str(tmp_path / "padded.eqx"), "--out", str(fresh), *bad]
        )
        assert result.exit_code == 2 and message in result.output, (bad, result.output)
        assert not fresh.exists() or not any(fresh.iterdir())


def test_the_test_trajectory_of_each_kind_of_model(tmp_path):
    from stnca.analysis.inputs import parts_trajectory, run_config

    frames, every, what = parts_trajectory(
        load_model("emoji_morph_cpu"), run_config("emoji_morph_cpu"), None, None
    )
    assert frames.shape == (3, 44, 44, 4) and every == 24 and "emoji:rooster" in what
    config = run_config("gray_scott_paper")
    frames, every, what = parts_trajectory(load_model("gray_scott_paper"), config, None, None)
    assert frames.shape == (33, 64, 64, 2) and every == 32 and "high_frequency" in what
    np.save(tmp_path / "t.npy", np.zeros((3, 8, 8, 2), np.float32))
    frames, every, _ = parts_trajectory(
        load_model("gray_scott_paper"), config, tmp_path / "t.npy", 5
    )
    assert frames.shape == (3, 8, 8, 2) and every == 5
    assert parts_trajectory(load_model("gray_scott_paper"), None, None, None) is None


def copying_rule():
    """Diffusion read half from the observable's own Laplacian and half from the Laplacian
    of a hidden channel that copies the observable one step late: without retraining the
    hidden channel cannot go (half the diffusion would), with retraining it can."""
    model = NCA(1, 1, activation="linear", hidden_width=2, key=jax.random.key(0))
    w_in = jnp.zeros_like(model.w_in)
    w_in = w_in.at[0, 0, 1].set(0.5).at[0, 1, 1].set(0.5)  # (unit, channel, laplacian)
    w_in = w_in.at[1, 0, 0].set(1.0).at[1, 1, 0].set(-1.0)  # identity: A - h
    w_out = jnp.zeros_like(model.w_out).at[0, 0].set(D).at[1, 1].set(1.0)
    return eqx.tree_at(lambda m: (m.w_in, m.w_out), model, (w_in, w_out))


def tiny_training(**changes):
    return TrainingConfig(
        steps_between_frames=2,
        minibatches=1,
        state_penalty=0.0,
        **({"learning_rate": 0.02} | changes),
    )


def test_fine_tuning_lets_more_go_and_holds_what_went_at_zero():
    truth, model = diffusion_truth(), copying_rule()
    plain = prune(model, truth, 2)
    assert plain.removed_hidden == [] and plain.fine_tune_epochs == 0 and len(plain.rounds) == 1
    tuned = prune(model, truth, 2, fine_tune_epochs=4, data=truth[None], training=tiny_training())
    assert tuned.removed_hidden == [1] and tuned.model.hidden_channels == 0
    assert tuned.pruned_error <= (1 + tuned.tolerance) * tuned.error
    assert tuned.pruned_parameters < plain.pruned_parameters
    assert any(r["forced"] and r["kept"] for r in tuned.rounds)
    # never worse than before retraining; the block zeroed in round 2 stays exactly zero
    # through two rounds of retraining, and the retraining moved the other weights
    assert all(r["fine_tuned_error"] <= r["error"] for r in tuned.rounds)
    assert tuned.rounds[1]["zeroed_blocks"] == [{"channel": 0, "kernel": "identity"}]
    assert tuned.removed_blocks == [(0, 0)] and np.all(np.asarray(tuned.model.w_in)[:, 0, 0] == 0)
    assert tuned.rounds[2]["fine_tune_epoch"] > 0
    assert not np.array_equal(tuned.model.w_in[:, 0, 1], model.w_in[:, 0, 1])
    for a, b in zip(prune(model, truth, 2, fine_tune_epochs=0).rounds, plain.rounds, strict=True):
        assert a == b


def test_fine_tuning_refuses_bad_input_and_the_command_reports_its_rounds(tmp_path):
    truth = diffusion_truth()
    for arguments, message in [
        ({"fine_tune_epochs": -1}, "fine_tune_epochs must be an integer >= 0"),
        ({"fine_tune_epochs": 1}, "data: fine-tuning"),
        ({"fine_tune_epochs": 1, "data": truth}, "data must be trajectories"),
        ({"fine_tune_learning_rate": 0.0}, "fine_tune_learning_rate must be > 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            prune(padded(), truth, 2, **arguments)
    save_model(tmp_path / "padded.eqx", padded())
    np.save(tmp_path / "truth.npy", truth)
    runner = CliRunner()
    common = ["--truth", str(tmp_path / "truth.npy"), "--steps-between-frames", "2"]
    for bad, message in [
        (["--fine-tune-epochs", "-2"], "fine_tune_epochs must be an integer >= 0"),
        (["--fine-tune-epochs", "1"], "data: give the training trajectories"),
        (["--fine-tune-epochs", "1", "--data", str(tmp_path / "none.npy")], "none.npy"),
    ]:
        fresh = tmp_path / "fresh"
        result = runner.invoke(
            app, ["prune", str(tmp_path / "padded.eqx"), "--out", str(fresh), *common, *bad]
        )
        assert result.exit_code == 2 and message in result.output, (bad, result.output)
        assert len(result.output.strip().splitlines()) == 1
        assert not fresh.exists()
    np.save(tmp_path / "data.npy", truth[None])
    out = tmp_path / "tuned"
    arguments = [*common, "--fine-tune-epochs", "1", "--data", str(tmp_path / "data.npy")]
    result = runner.invoke(
        app, ["prune", str(tmp_path / "padded.eqx"), "--out", str(out), *arguments]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "prune.json").read_text())
    assert report["fine_tune_epochs"] == 1 and report["removed_hidden_channels"] == [1, 2]
    assert report["rounds"][0]["fine_tuned_error"] <= report["rounds"][0]["error"]


def test_the_training_data_of_a_run_folder_or_given(tmp_path):
    from stnca.analysis.prune_folder import fine_tune_inputs
    from stnca.train import load_config

    run = tmp_path / "run"
    run.mkdir()
    save_model(run / "model.eqx", padded())
    (run / "config.toml").write_text(
        (Path(stnca.__file__).parent / "models" / "gray_scott_paper.toml").read_text()
    )
    config = load_config(run / "config.toml")
    np.save(run / "train_data.npy", np.ones((2, 3, 8, 8, 1), np.float32))
    y, training, noise = fine_tune_inputs(run / "model.eqx", config, None, 1, 2)
    assert y.shape == (2, 3, 8, 8, 1) and training == config.training and noise == 0
    np.save(tmp_path / "given.npy", np.zeros((1, 4, 6, 6, 1), np.float32))
    y, training, _ = fine_tune_inputs(run / "model.eqx", None, tmp_path / "given.npy", 1, 2)
    assert y.shape == (1, 4, 6, 6, 1) and training is None
    with pytest.raises(ValueError, match="data: give the training trajectories"):
        fine_tune_inputs(run / "model.eqx", None, None, 1, 2)
