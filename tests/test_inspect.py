import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import D, diffusion_nca
from typer.testing import CliRunner

from stnca.analysis.inspect import (
    effective_rank,
    inspect_model,
    kernel_importance,
    laplacian_symbol,
    layer_spectra,
    step_symbol,
)
from stnca.analysis.inspect_function import function_of_parts, perturbed_weights
from stnca.cli import app
from stnca.data import gray_scott
from stnca.data.initial_conditions import initial_condition


def test_a_diffusion_rule_reads_only_the_laplacian_and_grows_as_one_plus_d_l():
    model = diffusion_nca(hidden_channels=2)
    importance = kernel_importance(model)
    assert importance.shape == (3, 2)
    assert importance[0, 1] == pytest.approx(D)  # |w_in| 1 times |w_out| D
    assert np.count_nonzero(importance) == 1  # nothing else: identity, hidden channels
    inspection = inspect_model(model, [0.3], size=16)
    q = inspection.wavenumbers
    expected = 1 + D * laplacian_symbol(np.zeros_like(q), q)
    np.testing.assert_allclose(inspection.growth[:, 0], expected, atol=1e-5)
    np.testing.assert_allclose(inspection.growth[:, 1:], 1.0, atol=1e-7)  # untouched hidden
    assert inspection.rest_increment == 0.0  # a uniform state is at rest under diffusion
    # the whole 2-D symbol, not only the axis cut
    symbol = step_symbol(lambda x: x + model.increment(x), [0.3, 0.0, 0.0], 8)
    qy, qx = np.meshgrid(2 * np.pi * np.arange(8) / 8, 2 * np.pi * np.arange(8) / 8, indexing="ij")
    np.testing.assert_allclose(symbol[..., 0, 0].real, 1 + D * laplacian_symbol(qy, qx), atol=1e-5)
    np.testing.assert_allclose(symbol[..., 0, 0].imag, 0.0, atol=1e-6)


def test_the_gray_scott_step_linearised_at_rest_gives_the_analytic_factors():
    params = gray_scott.GrayScottParams()
    symbol = step_symbol(lambda x: gray_scott.step(x, params), [1.0, 0.0], 16)
    qy, qx = np.meshgrid(*(2 * np.pi * np.arange(16) / 16,) * 2, indexing="ij")
    lap = laplacian_symbol(qy, qx)
    np.testing.assert_allclose(
        symbol[..., 0, 0].real, 1 + params.diffusion_a * lap - params.alpha, atol=1e-5
    )
    np.testing.assert_allclose(
        symbol[..., 1, 1].real,
        1 + params.diffusion_b * lap - (params.gamma + params.alpha),
        atol=1e-5,
    )
    np.testing.assert_allclose(symbol[..., 0, 1], 0.0, atol=1e-6)  # -A B^2: no B term at B = 0
    np.testing.assert_allclose(symbol[..., 1, 0], 0.0, atol=1e-6)


def test_the_symbol_of_an_asymmetric_coupled_step_is_its_impulse_responses_transform():
    # a linear step that shifts one channel into the other: the symbol's direction (q, not
    # -q) and its [out, in] order are both visible, unlike for a symmetric Laplacian
    def step(x):
        a, b = x[..., 0], x[..., 1]
        return jnp.stack([a + 0.5 * jnp.roll(b, (1, 2), axis=(0, 1)), 0.25 * a], -1)

    symbol = step_symbol(step, [0.0, 0.0], 8)
    qy, qx = np.meshgrid(*(2 * np.pi * np.arange(8) / 8,) * 2, indexing="ij")
    # impulse at the origin moved to (1, 2): fft gives exp(-i (qy + 2 qx))
    np.testing.assert_allclose(symbol[..., 0, 1], 0.5 * np.exp(-1j * (qy + 2 * qx)), atol=1e-6)
    np.testing.assert_allclose(symbol[..., 0, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(symbol[..., 1, 0], 0.25, atol=1e-6)
    np.testing.assert_allclose(symbol[..., 1, 1], 0.0, atol=1e-6)


def test_effective_rank_and_layer_spectra():
    assert effective_rank(np.array([1.0, 0.0, 0.0])) == 1
    assert effective_rank(np.array([1.0, 1.0])) == 2
    assert effective_rank(np.array([1.0, 0.05])) == 1  # 0.0025 of the energy
    assert effective_rank(np.zeros(3)) == 0
    spectra = layer_spectra(diffusion_nca())
    np.testing.assert_allclose(spectra["w_in"], [1.0])  # one unit: one direction
    np.testing.assert_allclose(spectra["w_out"], [D])


def test_bad_input_to_inspect_model():
    model = diffusion_nca()
    with pytest.raises(ValueError, match="rest must give 1 values"):
        inspect_model(model, [1.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        inspect_model(model, [np.nan])
    for size in (2, 10**6):
        with pytest.raises(ValueError, match=r"size must be in \[4, 1024\]"):
            inspect_model(model, [0.0], size=size)


def test_taking_the_rule_apart_finds_its_dead_channels_and_its_one_kernel():
    model = diffusion_nca(hidden_channels=2)  # the two hidden channels do nothing
    x = jnp.asarray(np.random.default_rng(0).random((12, 12, 1)), jnp.float32)
    truth = [x]
    for _ in range(3):  # the truth diffuses a little faster than the model: D = 0.15
        for _ in range(2):
            x = x + 0.15 * (diffusion_nca().increment(x) / D)
        truth.append(x)
    function = function_of_parts(model, np.stack(truth), 2, levels=(0.0, 0.1), seeds=2)
    assert 0 < function.error < 0.05
    removed = function.kernel_removed
    assert removed[0, 0] == pytest.approx(function.error)  # the identity: unused
    assert removed[0, 1] > 2 * function.error  # the Laplacian: the whole rule
    np.testing.assert_allclose(removed[1:], function.error)  # nothing reads the hidden ones
    np.testing.assert_allclose(function.hidden_removed, function.error)
    assert function.effective_channels == 1 and len(function.removal_errors) == 2
    np.testing.assert_allclose(function.noise[0], function.error)  # level 0: the rule itself
    assert function.noise[1].mean() != function.error


def test_weight_noise_and_dropout_do_what_they_say():
    model = diffusion_nca()
    same = perturbed_weights(model, 0.0, jax.random.key(1))
    np.testing.assert_array_equal(same.w_in, model.w_in)
    gone = perturbed_weights(model, 1.0, jax.random.key(1), dropout=True)
    assert not np.any(np.asarray(gone.w_in)) and not np.any(np.asarray(gone.w_out))
    shaken = perturbed_weights(model, 0.1, jax.random.key(1))
    assert np.any(np.asarray(shaken.w_in) != np.asarray(model.w_in))


def test_the_command_on_the_shipped_gray_scott_model(tmp_path):
    out = tmp_path / "inspect"
    # a short test trajectory of its own (the default, the unseen test to n = 1024, takes
    # about 15 s on 2 cores)
    initial = np.asarray(initial_condition("smooth", 16, key=jax.random.key(3)))
    np.save(tmp_path / "truth.npy", np.asarray(gray_scott.simulate(initial, 8, every=4)))
    arguments = ["--truth", str(tmp_path / "truth.npy"), "--steps-between-frames", "4"]
    result = CliRunner().invoke(app, ["inspect", "gray_scott_paper", "--out", str(out), *arguments])
    assert result.exit_code == 0, result.output
    assert "growth at rest, A" in result.output and "PDE 0.9377" in result.output
    report = json.loads((out / "inspect.json").read_text())
    assert report["channels"][:2] == ["A", "B"] and report["kernels"] == ["identity", "laplacian"]
    assert np.asarray(report["importance"]).shape == (8, 2)
    pde = np.asarray(report["pde_growth"])
    assert pde[0] == pytest.approx([1 - 0.0623, 1 - 0.0623 - 0.06268], abs=1e-5)
    assert set(report["growth_gap"]) == {"A", "B"}
    function = report["function"]
    assert np.asarray(function["kernel_removed"]).shape == (8, 2)
    assert function["weight_noise"][0] == [function["error"]] * 3
    assert 3 <= function["effective_channels"] <= 8
    assert (out / "inspect.png").stat().st_size > 0 and (out / "function.png").stat().st_size > 0


def test_the_command_refuses_bad_input_and_writes_nothing(tmp_path):
    runner = CliRunner()
    for arguments, message in [
        (["emoji_morph_cpu"], "give the observable channels' values at rest"),
        (["gray_scott_paper", "--rest", "1,x"], "comma-separated numbers"),
        (["gray_scott_paper", "--rest", "1"], "rest must give 2 values"),
        (["no_such_model"], "no_such_model"),
        (["gray_scott_paper", "--size", "2"], "size must be in [4, 1024]"),
        (["gray_scott_paper", "--rest", "nan,0"], "rest must be finite"),
        (["gray_scott_paper", "--truth", "missing.npy", "--steps-between-frames", "4"], "missing"),
        (["emoji_morph_cpu", "--rest", "0,0,0,0", "--truth", "t.npy"], "steps_between_frames"),
    ]:
        out = tmp_path / "out"
        result = runner.invoke(app, ["inspect", *arguments, "--out", str(out)])
        assert result.exit_code == 2, (arguments, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1
        assert not out.exists() or not any(out.iterdir()), arguments
