"""Equation extraction: Gray-Scott simulator data give back exactly the Gray-Scott terms, a
hand-built diffusion NCA gives back its diffusion constant, an NCA without dynamics is
refused, equation.json round-trips and simulates like the simulator, and the CLI writes
its report."""

import importlib.util
import json
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from stnca import NCA
from stnca.analysis.equations import (
    gray_scott_equation,
    library,
    parse_term,
    read_equation,
    simulate,
)
from stnca.analysis.extract import Library, extract_from_model, fit_equation
from stnca.analysis.extract_report import coefficient_table
from stnca.cli import app
from stnca.data import gray_scott
from stnca.data.initial_conditions import initial_condition
from stnca.serialization import save_model

# skipped without PySINDy, which is looked up, not imported: importing it (and scikit-learn)
# takes 2 s, which every pytest-xdist worker would pay at collection
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pysindy") is None,
    reason="the extract extra (PySINDy) is not installed",
)
runner = CliRunner()
TRUE_TERMS = {"A": {"lap(A)", "A*B^2", "1", "A"}, "B": {"lap(B)", "A*B^2", "B"}}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def gray_scott_data():
    """Two 32x32 Gray-Scott trajectories, every Euler step of 160 (the smooth family)."""
    initial = initial_condition("smooth", 32, key=jax.random.key(3), batch=2)
    return np.asarray(gray_scott.simulate(initial, 160))


def diffusion_nca(rate: float, hidden: int = 0) -> NCA:
    """``x' = x + rate lap(x)`` on the one observable channel: linear, identity + Laplacian."""
    model = NCA(
        1,
        hidden,
        kernels=("identity", "laplacian"),
        activation="linear",
        hidden_width=1,
        key=jax.random.key(0),
    )
    w_in = jnp.zeros_like(model.w_in).at[0, 0, 1].set(1.0)
    w_out = jnp.zeros_like(model.w_out).at[0, 0].set(rate)
    return eqx.tree_at(lambda m: (m.w_in, m.w_out), model, (w_in, w_out))


def smooth_fields(rng, count: int, size: int = 24) -> np.ndarray:
    """Random fields of a few Fourier modes, ``(count, size, size, 1)``."""
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    fields = np.zeros((count, size, size, 1), np.float32)
    for r in range(count):
        for _ in range(4):
            k, l = rng.integers(1, 4, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            fields[r, ..., 0] += rng.normal() * np.cos(2 * np.pi * (k * i + l * j) / size + phase)
    return fields


def test_gray_scott_data_give_exactly_the_gray_scott_terms(gray_scott_data, key):
    equation = fit_equation(
        gray_scott_data, Library.build(("A", "B")), dt=1.0, samples=30_000, key=key
    )
    truth = gray_scott_equation()["channels"]
    for channel, terms in truth.items():
        assert set(equation["channels"][channel]) == TRUE_TERMS[channel]
        for term, value in terms.items():
            assert equation["channels"][channel][term] == pytest.approx(value, rel=0.01)
        assert equation["fit"][channel]["held_out_r2"] > 0.999999
    rows = coefficient_table(equation["channels"], truth)
    assert {row["status"] for row in rows} == {"recovered", "derived"}
    assert rows[-1]["parameter"] == "gamma" and rows[-1]["relative_error"] < 0.01


def test_a_diffusion_nca_gives_its_diffusion_constant_and_nothing_else(rng, key):
    model = diffusion_nca(0.07, hidden=1)
    equation = extract_from_model(
        model, smooth_fields(rng, 3), 24, Library.build(("c0",)), samples=20_000, key=key
    )
    assert set(equation["channels"]["c0"]) == {"lap(c0)"}
    assert equation["channels"]["c0"]["lap(c0)"] == pytest.approx(0.07, rel=0.01)


def test_time_unit_scales_the_coefficients(rng, key):
    """One NCA step standing for dt = 2 time units halves the rate per unit time."""
    model = diffusion_nca(0.08)
    equation = extract_from_model(
        model, smooth_fields(rng, 2), 16, Library.build(("c0",)), dt=2.0, key=key
    )
    assert equation["channels"]["c0"] == {"lap(c0)": pytest.approx(0.04, rel=0.01)}


def test_an_untrained_nca_has_no_dynamics_to_extract(rng, key):
    model = NCA(1, 2, key=jax.random.key(0))  # zero output layer: nothing ever changes
    with pytest.raises(ValueError, match="no observable dynamics"):
        extract_from_model(model, smooth_fields(rng, 2), 8, Library.build(("c0",)), key=key)


def test_bad_extraction_arguments_are_refused(rng, key):
    model = diffusion_nca(0.05)
    initial = smooth_fields(rng, 1)
    with pytest.raises(ValueError, match="burn_in"):
        extract_from_model(model, initial, 8, Library.build(("c0",)), burn_in=8, key=key)
    with pytest.raises(ValueError, match="shape"):
        extract_from_model(model, initial[0], 8, Library.build(("c0",)), key=key)
    with pytest.raises(ValueError, match="repeats"):
        Library.build(("A", "B"), terms=["A*B^2", "B^2*A"])
    with pytest.raises(ValueError, match="not a channel"):
        Library.build(("A", "B"), terms=["C"])
    with pytest.raises(ValueError, match="derivative"):
        fit_equation(np.zeros((1, 4, 5, 5, 1)), Library.build(("c0",)), dt=1.0,
                     derivative="backward", key=key)  # fmt: skip


def test_stlsq_on_the_triangular_factor_is_stlsq_on_the_samples(rng):
    """The regression is handed R and Q^T y for X = Q R: PySINDy's STLSQ on all the samples
    gives the same coefficients, on a nearly collinear library as the NCA's states give."""
    import warnings

    import pysindy

    from stnca.analysis.extract_regression import RIDGE, _square_root, _stlsq

    a = rng.uniform(0, 1, 5000)
    b = 1 - a + 0.05 * rng.normal(size=5000)
    noise = rng.normal(size=5000)
    features = np.stack([np.ones_like(a), a, b, a * a, a * b, b * b, a * b * b, noise], 1)
    target = 0.06 - 0.06 * a - a * b * b + 0.1 * noise + 0.01 * rng.normal(size=5000)
    factor, projected = _square_root(features, target)
    norm = np.linalg.norm(target)
    for threshold in (1e-3, 0.1, 1.0):
        full = pysindy.STLSQ(threshold=threshold, alpha=RIDGE, normalize_columns=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full.fit(features, target / norm)
        np.testing.assert_allclose(
            _stlsq(factor, projected, norm, threshold), full.coef_[0] * norm, atol=1e-9
        )


def test_without_pysindy_extraction_says_how_to_install_it(monkeypatch, gray_scott_data, key):
    monkeypatch.setitem(sys.modules, "pysindy", None)  # import pysindy raises ImportError
    with pytest.raises(ValueError, match=r'pip install "stnca\[extract\]"'):
        fit_equation(gray_scott_data, Library.build(("A", "B")), dt=1.0, key=key)


def test_term_names_are_canonical_and_the_library_is_complete():
    channels = ("A", "B")
    assert parse_term("B^2*A", channels).name(channels) == "A*B^2"
    assert parse_term("B * A * B", channels).name(channels) == "A*B^2"
    assert parse_term("lap(B)*A", channels).name(channels) == "A*lap(B)"
    assert parse_term("1", channels).factors == ()
    terms = library(channels, 3)
    assert len(terms) == 10 + 6 and terms[:3] == ["1", "A", "B"] and "A^2*B" in terms
    assert library(("c0",), 2, ("lap",)) == ["1", "c0", "c0^2", "lap(c0)"]
    for bad in ("A^", "grad(A)", "lap(C)", "A**2"):
        with pytest.raises(ValueError, match="cannot read the term"):
            parse_term(bad, channels)


def test_the_gray_scott_equation_simulates_like_the_simulator_and_round_trips(
    gray_scott_data, tmp_path
):
    equation = gray_scott_equation()
    path = tmp_path / "equation.json"
    path.write_text(json.dumps(equation))
    loaded = json.loads(path.read_text())
    initial = gray_scott_data[:, 0]
    frames = np.asarray(simulate(loaded, initial, 160, dt=1.0, every=4))
    expected = gray_scott_data[:, ::4]
    assert frames.shape == expected.shape
    np.testing.assert_allclose(frames, expected, atol=1e-5)
    channels, terms, coefficients = read_equation(loaded)
    assert channels == ("A", "B") and len(terms) == 6 and coefficients.shape == (6, 2)
    wrong = {"channels": {"A": {"lap(A)": 0.1}, "B": {"B": -0.1}}}
    assert not np.allclose(np.asarray(simulate(wrong, initial, 160, dt=1.0, every=4)), expected)


def test_coefficient_table_marks_missed_and_spurious_terms():
    truth = gray_scott_equation()["channels"]
    found = {"A": {"lap(A)": 0.11, "A*B^2": -1.0, "1": 0.0623, "B": 0.5}, "B": {"B": -0.125}}
    rows = {(r["channel"], r["term"]): r for r in coefficient_table(found, truth)}
    assert rows[("A", "lap(A)")]["relative_error"] == pytest.approx(0.1)
    assert rows[("A", "A")]["status"] == "missed" and rows[("A", "A")]["relative_error"] == 1.0
    assert rows[("A", "B")]["status"] == "spurious"
    assert rows[("B", "lap(B)")]["status"] == "missed"


def test_cli_extracts_from_data_and_writes_the_report(gray_scott_data, tmp_path):
    data = tmp_path / "gs.npy"
    np.save(data, gray_scott_data[:, :41])
    np.save(tmp_path / "test.npy", gray_scott_data[0, -1])  # (a family would compile slowly)
    out = tmp_path / "out"
    result = invoke(
        "extract", "--data", data, "--pde", "gray-scott", "--samples", 20_000,
        "--test-init", tmp_path / "test.npy", "--test-steps", 16, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "dA/dt = 0.0623 - 0.0623 A - 1 A*B^2 + 0.1 lap(A)" in result.output
    for name in ("equation.json", "equation.txt", "coefficients.csv", "simulation.json"):
        assert (out / name).is_file(), name
    assert (out / "simulation.png").stat().st_size > 1000
    equation = json.loads((out / "equation.json").read_text())
    assert set(equation["channels"]["A"]) == TRUE_TERMS["A"]
    assert equation["dt"] == 1.0 and equation["source"]["data"] == str(data)
    errors = json.loads((out / "simulation.json").read_text())
    assert errors["reference"] == "PDE" and errors["relative_error"]["equation"][-1] < 1e-4
    assert "missed" not in (out / "coefficients.csv").read_text()
    # without a truth there is nothing to compare a --test-init run with
    alone = invoke(
        "extract", "--data", data, "--samples", 20_000, "--test-init", tmp_path / "test.npy",
        "--out", tmp_path / "alone",
    )  # fmt: skip
    assert alone.exit_code == 2 and "test_init with data needs a truth" in alone.output
    assert not (tmp_path / "alone").exists()


def test_cli_extracts_from_a_model_file(rng, tmp_path):
    save_model(tmp_path / "model.eqx", diffusion_nca(0.06))
    np.save(tmp_path / "init.npy", smooth_fields(rng, 2))
    out = tmp_path / "out"
    result = invoke(
        "extract", tmp_path / "model.eqx", "--init", tmp_path / "init.npy", "--steps", 16,
        "--terms", "lap", "--degree", 1, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "dc0/dt = 0.06 lap(c0)" in result.output
    assert not (out / "coefficients.csv").exists()  # no known truth
    errors = json.loads((out / "simulation.json").read_text())
    assert errors["reference"] == "NCA" and errors["relative_error"]["equation"][-1] < 1e-4


def test_cli_refuses_an_untrained_model_and_bad_input_writing_nothing(rng, tmp_path):
    save_model(tmp_path / "model.eqx", NCA(1, 1, key=jax.random.key(0)))
    np.save(tmp_path / "init.npy", smooth_fields(rng, 1))
    out = tmp_path / "out"
    model = tmp_path / "model.eqx"
    cases = [
        ((model, "--init", tmp_path / "init.npy", "--steps", 8), "no observable dynamics"),
        ((model, "--data", tmp_path / "init.npy"), "exactly one"),
        ((model, "--init", tmp_path / "init.npy", "--terms", "1,c1"), "not a channel"),
        ((model, "--init", tmp_path / "init.npy", "--terms", "lap,curl"), "'curl' is not a"),
        (
            (model, "--init", tmp_path / "init.npy", "--terms", "1,lap(c0)", "--degree", 2),
            "not both",
        ),  # fmt: skip
        ((model, "--init", "smooth"), "Gray-Scott initial condition"),
        ((model, "--init", tmp_path / "init.npy", "--tolerance", -1), "tolerance"),
        ((model, "--init", "smooth", "--rollouts", 0), "rollouts must be"),  # not silently 4
        (("--data", tmp_path / "init.npy"), "at least 2 frames"),  # a state, not a trajectory
        (("--data", tmp_path / "traj.npy", "--dt", 1e300), "give a smaller dt"),
        (("--data", tmp_path / "traj.npy", "--degree", 500), "would have 504 terms"),
    ]
    np.save(tmp_path / "traj.npy", rng.uniform(size=(5, 8, 8, 1)).astype(np.float32))
    for args, message in cases:
        result = invoke("extract", *args, "--out", out)
        assert result.exit_code == 2, (args, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], (args, result.output)
        assert not out.exists()


def test_relative_errors_of_a_zero_truth_are_left_out():
    from stnca.analysis.extract_report import coefficient_table

    rows = coefficient_table({"A": {"lap(A)": 0.11, "A": 0.01}}, {"A": {"lap(A)": 0.1, "A": 0.0}})
    by_term = {row["term"]: row for row in rows}
    assert by_term["lap(A)"]["relative_error"] == pytest.approx(0.1)
    assert by_term["A"]["relative_error"] is None
