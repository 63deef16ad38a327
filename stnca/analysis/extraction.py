"""``stnca extract`` as one library call: the PDE behind a trained model (or trajectories),
with the defaults the command uses, the comparison run and the report files.

``extract_equation`` chooses, as the command does (``extraction_inputs``): the rollouts'
initial conditions (the training family drawn with another seed), their length (the
training horizon), the burn-in (one frame interval, while the hidden channels fill), the
time step (one PDE step of the training data), the term library (polynomials of degree 3
times lap, dx, dy), the true PDE (the model's Gray-Scott config), and the comparison's
initial condition (the unseen ``high_frequency`` family); it fits
(``extract.extract_from_model`` or ``extract.fit_equation``), simulates the equation beside
the truth and the NCA (``extract_report.compare``) and writes the report
(``extract_report.write_report``). ``Extraction.summary`` is what the command prints.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from .._validate import choice, count, real
from .._validate import seed as check_seed
from ..boundaries import BOUNDARIES
from ..data.gray_scott import GrayScottParams
from .equations import format_equation, gray_scott_equation
from .extract import DERIVATIVES, Library, extract_from_model, fit_equation
from .extract_report import Comparison, compare, write_report
from .extraction_inputs import DERIVATIVE_TERMS as DERIVATIVE_TERMS
from .extraction_inputs import DataTrajectories, ModelRollouts, data_trajectories, model_rollouts
from .extraction_inputs import extraction_starts as extraction_starts
from .extraction_inputs import input_files as input_files
from .extraction_inputs import term_library as term_library
from .extraction_inputs import true_pde as true_pde
from .inputs import run_config


@dataclasses.dataclass
class Extraction:
    """What ``extract_equation`` found and wrote."""

    equation: dict[str, Any]
    """As written to ``equation.json`` (``source`` says what it was fitted to)."""
    report: dict[str, Any]
    """``write_report``'s: the coefficient table (or ``None``), the simulation errors, the files."""
    comparison: Comparison

    def summary(self) -> list[str]:
        """The lines ``stnca extract`` prints: the equation, each channel's fit, the
        coefficient table against a known truth and the simulation errors."""
        lines = ["", *format_equation(self.equation), *_fit_lines(self.equation)]
        if self.report["table"] is not None:
            lines += ["", *_table_lines(self.report["table"])]
        errors = self.report["simulation"]
        lines += [
            "",
            f"simulated from {errors['initial_condition']} to t = {self.comparison.times[-1]:g}"
            f", relative error against the {errors['reference']}:",
        ]
        for name, values in errors["relative_error"].items():
            final = "diverged" if values[-1] is None else f"{values[-1]:.4f}"
            lines.append(f"  {name:20s} {final}")
        return lines


def _fit_lines(equation: dict[str, Any]) -> list[str]:
    """Each moving channel's terms, threshold and held-out R^2."""
    lines = []
    for name, fit in equation["fit"].items():
        if not fit.get("static"):
            r2 = fit["held_out_r2"]
            lines.append(
                f"  {name}: {len(equation['channels'][name])} of {len(equation['library'])} terms, "
                f"threshold {fit['threshold']:.3g}, held-out R^2 "
                + ("-" if r2 is None else f"{r2:.4f}")
            )
    return lines


def _table_lines(table: list[dict[str, Any]]) -> list[str]:
    """The coefficient table: true against recovered coefficients."""
    lines = [
        f"{'channel':7s}  {'term':28s} {'parameter':17s} {'true':>10s} "
        f"{'recovered':>10s} {'rel. error':>10s}  status"
    ]
    for row in table:
        error = "" if row["relative_error"] is None else f"{100 * row['relative_error']:.3g}%"
        got = "" if row["recovered"] is None else f"{row['recovered']:.5g}"
        lines.append(
            f"{row['channel']:7s}  {row['term']:28s} {row['parameter']:17s} "
            f"{row['true']:10.5g} {got:>10s} {error:>10s}  {row['status']}"
        )
    return lines


def extract_equation(
    model: str | os.PathLike | None = None,
    *,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike = "extract",
    dt: float | None = None,
    pde: str | None = None,
    init: str | None = None,
    rollouts: int | None = None,
    steps: int | None = None,
    burn_in: int | None = None,
    degree: int | None = None,
    terms: str = "lap,dx,dy",
    derivative: str | None = None,
    boundary: str | None = None,
    samples: int = 200_000,
    tolerance: float = 0.1,
    test_init: str | None = None,
    test_steps: int | None = None,
    seed: int = 2024,
    log: Callable[[str], None] = print,
) -> Extraction:
    """The PDE behind a trained model (``model``: a model file or a shipped model's name)
    or trajectories (``data``: a ``.npy`` (T, H, W, C) or (R, T, H, W, C)), by sparse
    regression; write the report into ``out``.

    Args:
        dt: time per NCA step, or between ``data`` frames (default: one PDE step of the
            model's Gray-Scott config, else 1); coefficients are per unit time.
        pde: the true PDE to compare with (see ``true_pde``).
        init: a model's rollouts' initial conditions: a ``.npy`` (R, H, W, C) or a
            Gray-Scott family (default: the training family, drawn with another seed).
        rollouts: how many rollouts from a family ``init`` (default 4).
        steps: their length in NCA steps (default: the training horizon).
        burn_in: steps at their start not fitted (default: the training's t, while the
            hidden channels fill).
        degree: the polynomials' highest degree (default 3; see ``term_library``).
        terms: the derivatives in the library, or the whole library as a list of terms.
        derivative: ``data``'s finite differences: forward (default) or central.
        boundary: ``data``'s boundary: periodic (default), fixed or reflect.
        samples: (cell, time) samples regressed, 20% held out.
        tolerance: the sparsest model within ``1 + tolerance`` of the best held-out error
            is kept.
        test_init: the comparison run's initial condition: a ``.npy`` state or a
            Gray-Scott family drawn with ``seed`` (default ``high_frequency`` against a
            Gray-Scott truth, else the first fitted initial condition).
        test_steps: the comparison's length in steps of ``dt``.
        seed: for initial conditions, samples and stochastic updates.
        log: progress messages.

    Raises:
        ValueError: bad settings or inputs (before any fitting).
    """
    rollout = {"init": init, "rollouts": rollouts, "steps": steps, "burn_in": burn_in}
    derivative, boundary = _check_settings(
        model, data, rollout, derivative, boundary, dt, samples, tolerance
    )
    key = jax.random.key(check_seed(seed, "seed"))
    params, config = true_pde(pde, None if model is None else run_config(model))
    fitted = _fitted(model, data, config, params, test_init, rollout, dt, key, seed)
    library = term_library(fitted.names, terms, degree)
    log(f"library: {len(library.terms)} terms: {', '.join(library.terms)}")
    equation = _fit(fitted, library, derivative, boundary, samples, tolerance, key, log)
    comparison, report = _compare_and_report(
        out, equation, fitted, params, test_init, test_steps, key, seed, f"{model or data}"
    )
    return Extraction(equation, report, comparison)


def _check_settings(model, data, rollout, derivative, boundary, dt, samples, tolerance):
    """``(derivative, boundary)`` with their defaults, once the settings are checked."""
    if (model is None) == (data is None):
        raise ValueError("give a model or data (a trajectory .npy), exactly one")
    if data is not None:
        for name, value in rollout.items():
            if value is not None:
                raise ValueError(f"{name} applies to a model's rollouts, not to data")
    elif derivative is not None or boundary is not None:
        raise ValueError("derivative and boundary apply to data (a model has its own)")
    derivative = choice(derivative or "forward", "derivative", DERIVATIVES)
    boundary = choice(boundary or "periodic", "boundary", BOUNDARIES)
    if dt is not None and real(dt, "dt", 0.0) == 0:
        raise ValueError("dt must be > 0")
    count(samples, "samples", 10)
    real(tolerance, "tolerance", 0.0)
    return derivative, boundary


def _fitted(
    model, data, config, params, test_init, rollout, dt, key, seed
) -> ModelRollouts | DataTrajectories:
    """What the equation is fitted to: the model's rollouts or the data's trajectories."""
    gray = params is not None
    if test_init is not None and model is None and not gray:
        raise ValueError(
            "test_init with data needs a truth to compare with: give pde='gray-scott' or a "
            "Gray-Scott config (or no test_init, to use the data's first trajectory)"
        )
    if model is not None:
        return model_rollouts(model, config, gray, dt=dt, key=key, seed=seed, **rollout)
    return data_trajectories(data, gray, dt)


def _fit(
    fitted: ModelRollouts | DataTrajectories,
    library: Library,
    derivative: str,
    boundary: str,
    samples: int,
    tolerance: float,
    key,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The equation (``equation.json``'s dict) of ``fitted``, with its ``source``."""
    common: dict[str, Any] = dict(
        dt=fitted.dt, samples=samples, tolerance=tolerance, key=jax.random.fold_in(key, 1)
    )
    if isinstance(fitted, ModelRollouts):
        log(f"rolling out {len(fitted.initial)} x {fitted.steps} steps from {fitted.described}")
        equation = extract_from_model(
            fitted.model, fitted.initial, fitted.steps, library, burn_in=fitted.burn_in, **common
        )
    else:
        equation = fit_equation(
            fitted.trajectories,
            library,
            boundary=boundary,
            derivative=derivative,
            what=f"data {fitted.path}",
            **common,
        )
    return {**equation, "source": fitted.source()}


def _test_start(
    fitted: ModelRollouts | DataTrajectories, test_init, gray: bool, key, seed: int
) -> tuple[np.ndarray, str, np.ndarray | None]:
    """The comparison's ``(initial state, description, true frames or None)``."""
    if test_init is not None or gray:
        tests, described = extraction_starts(
            test_init or "high_frequency",
            "test_init",
            len(fitted.names),
            fitted.size,
            key,
            None,
            f"seed {seed}",
        )
        return tests[0], described, None
    if isinstance(fitted, ModelRollouts):
        return fitted.initial[0], f"{fitted.described}, the first (fitted)", None
    frames = fitted.trajectories
    return frames[0, 0], f"frame 0 of {fitted.path} (fitted)", frames[0]


def _compare_and_report(
    out,
    equation: dict[str, Any],
    fitted: ModelRollouts | DataTrajectories,
    params: GrayScottParams | None,
    test_init,
    test_steps,
    key,
    seed: int,
    name: str,
) -> tuple[Comparison, dict[str, Any]]:
    """Simulate the equation beside the truth and the NCA, and write the report."""
    gray = params is not None
    initial, described, truth = _test_start(fitted, test_init, gray, key, seed)
    comparison = compare(
        equation,
        initial,
        count(fitted.steps if test_steps is None else test_steps, "test_steps", 1),
        description=described,
        model=fitted.model if isinstance(fitted, ModelRollouts) else None,
        pde=params,
        truth=truth,
        key=jax.random.fold_in(key, 3),
    )
    report = write_report(
        out,
        equation,
        truth=gray_scott_equation(params) if gray else None,
        comparison=comparison,
        title=f"equation extracted from {name}, run from {described}",
    )
    return comparison, report
