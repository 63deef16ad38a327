"""The ``stnca extract`` report: the extracted equation (JSON and text), its coefficients
against a known truth (CSV), and the equation simulated from an unseen initial condition
beside the truth and the NCA (PNG and JSON).

Files written in the output folder:

- ``equation.json``: the equation and how it was found (``stnca.analysis.extract``);
- ``equation.txt``: the same, readable: ``dA/dt = 0.1 lap(A) - 1 A*B^2 + ...``;
- ``coefficients.csv``: with a true equation (Gray-Scott), every true term (recovered or
  missed) and every spurious one, with the relative error of each coefficient;
- ``simulation.png``, ``simulation.json``: the comparison run (``compare``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from .. import viz
from .._files import json_safe, write_text
from .._resources import MAX_STEPS
from ..data import gray_scott
from ..model import NCA
from .equations import format_equation, simulate
from .evaluate import predict
from .metrics import relative_error

FILES = ("equation.json", "equation.txt", "coefficients.csv", "simulation.png", "simulation.json")
"""Everything ``write_report`` may write."""

GRAY_SCOTT_LABELS = {
    ("A", "lap(A)"): "D_A",
    ("A", "A*B^2"): "-1 (reaction)",
    ("A", "1"): "alpha (feed)",
    ("A", "A"): "-alpha",
    ("B", "lap(B)"): "D_B",
    ("B", "A*B^2"): "+1 (reaction)",
    ("B", "B"): "-(gamma + alpha)",
}
"""The Gray-Scott parameter each true term's coefficient stands for."""


def relative_errors(prediction: np.ndarray, truth: np.ndarray) -> list[float | None]:
    """``metrics.relative_error`` per frame of ``(T, H, W, C)`` arrays, as JSON-ready floats:
    ``None`` where not finite (a diverged simulation)."""
    with np.errstate(all="ignore"):
        values = relative_error(prediction, truth)
    return [float(v) if np.isfinite(v) else None for v in values]


def coefficient_table(
    recovered: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, float]]
) -> list[dict[str, Any]]:
    """Recovered against true coefficients, channel by channel: every true term (``recovered``
    or ``missed``) then every ``spurious`` one, with the relative error ``|c - c*| / |c*|``
    (1 for a missed term, ``None`` for a spurious one). For Gray-Scott a last row gives
    ``gamma``, derived as ``-[B in dB/dt] - [1 in dA/dt]``."""
    rows = []
    for channel, true_terms in truth.items():
        found = recovered.get(channel, {})
        for term, value in true_terms.items():
            got = found.get(term)
            rows.append(
                {
                    "channel": channel,
                    "term": term,
                    "parameter": GRAY_SCOTT_LABELS.get((channel, term), ""),
                    "true": value,
                    "recovered": 0.0 if got is None else got,
                    "relative_error": _relative(got, value),
                    "status": "missed" if got is None else "recovered",
                }
            )
        for term, got in found.items():
            if term not in true_terms:
                rows.append(
                    {
                        "channel": channel,
                        "term": term,
                        "parameter": "",
                        "true": 0.0,
                        "recovered": got,
                        "relative_error": None,
                        "status": "spurious",
                    }
                )
    decay, feed = truth.get("B", {}).get("B"), truth.get("A", {}).get("1")
    if set(truth) == {"A", "B"} and decay is not None and feed is not None:
        true_gamma = -decay - feed
        got_decay = recovered.get("B", {}).get("B")
        got_feed = recovered.get("A", {}).get("1")
        gamma = None if got_decay is None or got_feed is None else -got_decay - got_feed
        rows.append(
            {
                "channel": "",
                "term": "-[B in dB/dt] - [1 in dA/dt]",
                "parameter": "gamma",
                "true": true_gamma,
                "recovered": gamma,
                "relative_error": None if gamma is None else _relative(gamma, true_gamma),
                "status": "derived" if gamma is not None else "missed",
            }
        )
    return rows


def _relative(got: float | None, true: float) -> float | None:
    """``|got - true| / |true|``: 1 for a missed term, ``None`` when the truth is 0."""
    if got is None:
        return 1.0
    return None if true == 0 else abs(got - true) / abs(true)


@dataclasses.dataclass
class Comparison:
    """Runs from one initial condition, frames at the same ``times``.

    Attributes:
        times: the frames' times, in the equation's time unit.
        runs: run name -> frames ``(T, H, W, C)``; the first is the reference (the truth
            when there is one), the last the simulated equation.
        description: where the initial condition came from.
        step: the Euler step the equation was integrated with.
    """

    times: list[float]
    runs: dict[str, np.ndarray]
    description: str
    step: float

    def errors(self) -> dict[str, Any]:
        """Relative errors per frame against the reference, and of the equation against
        the NCA; ``None`` where a run diverged."""
        names = list(self.runs)
        reference = self.runs[names[0]]
        report: dict[str, Any] = {
            "initial_condition": self.description,
            "times": self.times,
            "equation_step": self.step,
            "reference": names[0],
            "relative_error": {
                name: relative_errors(self.runs[name], reference) for name in names[1:]
            },
        }
        if "NCA" in self.runs and names[0] != "NCA":
            report["equation_vs_nca"] = relative_errors(self.runs[names[-1]], self.runs["NCA"])
        report["diverged"] = not bool(np.all(np.isfinite(self.runs[names[-1]])))
        return report


def _ratio(longer: float, shorter: float, what: str) -> int:
    ratio = round(longer / shorter)
    if ratio < 1 or not math.isclose(ratio * shorter, longer, rel_tol=1e-9):
        raise ValueError(f"{what}: {longer} is not a whole number of steps of {shorter}")
    return ratio


def compare(
    equation: Mapping[str, Any],
    initial: np.ndarray,
    steps: int,
    *,
    description: str,
    model: NCA | None = None,
    pde: gray_scott.GrayScottParams | None = None,
    truth: np.ndarray | None = None,
    frames: int = 8,
    key: PRNGKeyArray | None = None,
) -> Comparison:
    """Simulate ``equation`` from ``initial`` ``(H, W, C)`` beside the truth and the NCA.

    Args:
        equation: the extracted equation (``equation.json``'s dict, with its ``dt``).
        initial: the initial condition, physical units.
        steps: the duration, in steps of the equation's ``dt`` (NCA steps for a model,
            frame intervals for data).
        description: where ``initial`` came from (for the report).
        model: the NCA to run beside (one NCA step per ``dt``).
        pde: Gray-Scott parameters of the truth, integrated with their own ``dt``.
        truth: true frames ``(T, H, W, C)`` spaced ``dt`` from ``initial`` instead.
        frames: about how many frame intervals to compare at.
        key: PRNG key for a stochastic NCA.

    The equation is integrated by forward Euler with the largest step of at most one time
    unit that divides ``dt`` (``dt / ceil(dt)``).
    """
    dt = float(equation["dt"])
    every = max(1, steps // frames)
    count = steps // every
    if not dt * steps <= MAX_STEPS:  # the equation integrates in steps of at most 1 unit
        raise ValueError(
            f"dt = {dt:g} over {steps} steps is {dt * steps:.3g} time units, integrated in "
            f"steps of at most 1: more than {MAX_STEPS:_} steps; give a smaller dt"
        )
    substeps = max(1, math.ceil(dt - 1e-9))
    runs: dict[str, np.ndarray] = {}
    if pde is not None:
        ratio = _ratio(dt, pde.dt, "the equation's dt against the PDE's time step")
        runs["PDE"] = np.asarray(
            gray_scott.simulate(initial, count * every * ratio, every=every * ratio, params=pde)
        )
    elif truth is not None:
        if len(truth) < count * every + 1:
            raise ValueError(f"the true frames cover {len(truth) - 1} steps, not {steps}")
        runs["data"] = np.asarray(truth[: count * every + 1 : every], np.float32)
    if model is not None:
        key = jax.random.key(0) if key is None else key
        runs["NCA"] = predict(model, initial[None], count * every, every=every, key=key)[0]
    runs["equation"] = np.asarray(
        simulate(
            equation, initial, count * every * substeps, dt=dt / substeps, every=every * substeps
        )
    )
    times = [k * every * dt for k in range(count + 1)]
    return Comparison(times, runs, description, dt / substeps)


def comparison_figure(comparison: Comparison, path: str | os.PathLike, title: str) -> Path:
    """Rows: each run, then ``|equation - reference|``; columns: the compared times. One
    channel (the last; B for Gray-Scott) or the colours of RGB(A) states."""
    names = list(comparison.runs)
    reference = comparison.runs[names[0]]
    low, high = float(np.min(reference)), float(np.max(reference))
    rows = [viz.render(np.nan_to_num(comparison.runs[name]), vmin=low, vmax=high) for name in names]
    difference = np.abs(np.nan_to_num(comparison.runs[names[-1]]) - reference)
    rows.append(
        viz.render(difference[..., -1:], vmin=0.0, vmax=max(high - low, 1e-6), cmap="magma")
    )
    return viz.frames_figure(
        [list(r) for r in rows],
        path,
        row_labels=[*names, f"|equation - {names[0]}|"],
        column_labels=[f"t = {t:g}" for t in comparison.times],
        title=title,
    )


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    fields = ["channel", "term", "parameter", "true", "recovered", "relative_error", "status"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in fields})
    return buffer.getvalue()


def equation_text(equation: Mapping[str, Any]) -> str:
    """``equation.txt``: the equation, then how each channel's fit went."""
    lines = format_equation(equation)
    lines.append("")
    for channel, fit in equation.get("fit", {}).items():
        if fit.get("static"):
            lines.append(f"# {channel}: no change (no terms)")
            continue
        r2 = fit.get("held_out_r2")
        lines.append(
            f"# {channel}: {len(equation['channels'][channel])} terms, STLSQ threshold "
            f"{fit['threshold']:.3g}, held-out relative error "
            f"{fit['held_out_relative_error']:.4g}"
            + ("" if r2 is None else f", held-out R^2 {r2:.4f}")
        )
    lines.append(f"# samples {equation['dt']:g} time unit(s) apart; coefficients are per unit time")
    return "\n".join(lines) + "\n"


def write_report(
    folder: str | os.PathLike,
    equation: Mapping[str, Any],
    *,
    truth: Mapping[str, Any] | None = None,
    comparison: Comparison | None = None,
    title: str = "",
) -> dict[str, Any]:
    """Write the report files (``FILES``) that apply into ``folder``; return
    ``{"table": rows or None, "simulation": errors or None, "files": [paths]}``."""
    folder = Path(folder)
    written = []
    rows = None
    if comparison is not None:
        written.append(comparison_figure(comparison, folder / "simulation.png", title))
        errors = comparison.errors()
        write_text(folder / "simulation.json", json.dumps(json_safe(errors), indent=2))
        written.append(folder / "simulation.json")
    if truth is not None:
        rows = coefficient_table(equation["channels"], truth["channels"])
        write_text(folder / "coefficients.csv", _csv(rows))
        written.append(folder / "coefficients.csv")
    write_text(folder / "equation.txt", equation_text(equation))
    write_text(folder / "equation.json", json.dumps(json_safe(dict(equation)), indent=2))
    written += [folder / "equation.txt", folder / "equation.json"]
    return {
        "table": rows,
        "simulation": None if comparison is None else comparison.errors(),
        "files": written,
    }
