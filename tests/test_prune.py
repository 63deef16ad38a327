import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import D, diffusion_nca
from typer.testing import CliRunner

from stnca.analysis.prune import drop_hidden, nonzero_weights, prune
from stnca.cli import app
from stnca.serialization import load_model, save_model


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
