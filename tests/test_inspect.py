import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from stnca.analysis.inspect import (
    effective_rank,
    inspect_model,
    kernel_importance,
    laplacian_symbol,
    layer_spectra,
    step_symbol,
)
from stnca.cli import app
from stnca.data import gray_scott
from stnca.model import NCA

D = 0.13


def diffusion_nca(hidden_channels=0):
    """A hand-built NCA whose rule is x' = x + D * laplacian(x) on its one observable
    channel: one linear hidden unit that reads the Laplacian alone."""
    model = NCA(1, hidden_channels, activation="linear", hidden_width=1, key=jax.random.key(0))
    w_in = jnp.zeros_like(model.w_in).at[0, 0, 1].set(1.0)  # (unit, channel, laplacian)
    w_out = jnp.zeros_like(model.w_out).at[0, 0].set(D)
    return eqx.tree_at(lambda m: (m.w_in, m.w_out), model, (w_in, w_out))


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
    with pytest.raises(ValueError, match="size must be >= 4"):
        inspect_model(model, [0.0], size=2)


def test_the_command_on_the_shipped_gray_scott_model(tmp_path):
    out = tmp_path / "inspect"
    result = CliRunner().invoke(app, ["inspect", "gray_scott_paper", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "growth at rest, A" in result.output and "PDE 0.9377" in result.output
    report = json.loads((out / "inspect.json").read_text())
    assert report["channels"][:2] == ["A", "B"] and report["kernels"] == ["identity", "laplacian"]
    assert np.asarray(report["importance"]).shape == (8, 2)
    pde = np.asarray(report["pde_growth"])
    assert pde[0] == pytest.approx([1 - 0.0623, 1 - 0.0623 - 0.06268], abs=1e-5)
    assert set(report["growth_gap"]) == {"A", "B"}
    assert (out / "inspect.png").stat().st_size > 0


def test_the_command_refuses_bad_input_and_writes_nothing(tmp_path):
    runner = CliRunner()
    for arguments, message in [
        (["emoji_morph_cpu"], "give the observable channels' values at rest"),
        (["gray_scott_paper", "--rest", "1,x"], "comma-separated numbers"),
        (["gray_scott_paper", "--rest", "1"], "rest must give 2 values"),
        (["no_such_model"], "no_such_model"),
        (["gray_scott_paper", "--size", "2"], "size must be >= 4"),
    ]:
        out = tmp_path / "out"
        result = runner.invoke(app, ["inspect", *arguments, "--out", str(out)])
        assert result.exit_code == 2, (arguments, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1
        assert not out.exists() or not any(out.iterdir()), arguments
