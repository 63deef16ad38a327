"""The generalisation benchmark's report: a CSV of every row, a Markdown summary, a JSON, and
one figure per case (truth / NCA / |difference| at frame 0 and at each horizon)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import viz
from .._files import json_safe, write_text
from .benchmark import Benchmark

COLUMNS = (
    "size",
    "family",
    "condition",
    "predictor",
    "horizon",
    "step",
    "pde_step",
    "draws",
    "relative_l2",
    "vrmse",
    "correlation",
    "correlation_time",
    "spectrum_distance",
)
"""The CSV's columns, one row per case, predictor and horizon."""
LABELS = {
    "nca": "NCA",
    "persistence": "persistence",
    "spatial_mean": "spatial mean",
    "pde_perturbed": "PDE, feed 1% off",
}


def benchmark_csv(benchmark: Benchmark) -> str:
    """Every row of the benchmark as CSV text."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in benchmark.rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
    return out.getvalue()


def _number(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.3f}"


def benchmark_markdown(
    benchmark: Benchmark, title: str = "Generalisation benchmark", extra: str = ""
) -> str:
    """A table per horizon: VRMSE of the NCA and its baselines per case, the NCA's relative
    L2 error and correlation time, and the mean over cases."""
    present = benchmark.predictors
    t, every = benchmark.steps_between_frames, benchmark.pde_steps_between_frames
    lines = [
        f"# {title}",
        "",
        f"Horizon 1x = {benchmark.horizon_frames} frames of {t} NCA steps"
        + (f" ({every} PDE steps each)." if every else "."),
        "VRMSE: sqrt(MSE / Var(truth)), 1 = no better than the spatial mean; correlation"
        " time: NCA steps until the Pearson correlation with the truth drops below 0.8.",
    ]
    cases = list(dict.fromkeys((r["size"], r["family"], r["condition"]) for r in benchmark.rows))
    for horizon in benchmark.horizons:
        rows = {
            (r["size"], r["family"], r["condition"], r["predictor"]): r
            for r in benchmark.rows
            if r["horizon"] == horizon
        }
        step = next(r["step"] for r in rows.values())
        header = ["lattice", "family", *(f"VRMSE {LABELS.get(p, p)}" for p in present)]
        header += ["NCA rel. L2", "NCA corr. time"]
        lines += ["", f"## {horizon}x the horizon (step {step})", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for size, family, condition in cases:
            name = family + (f" ({condition})" if condition else "")
            nca = rows[(size, family, condition, "nca")]
            cells = [
                size,
                name,
                *(_number(rows[(size, family, condition, p)]["vrmse"]) for p in present),
            ]
            cells += [_number(nca["relative_l2"]), f"{nca['correlation_time']:.0f}"]
            lines.append("| " + " | ".join(cells) + " |")
        means = [_number(benchmark.mean_vrmse(p, horizon)) for p in present]
        beaten = sum(rows[(s, f, c, "nca")]["vrmse"] < 1 for s, f, c in cases)
        lines.append("| | **mean** | " + " | ".join(f"**{m}**" for m in means) + " | | |")
        lines += ["", f"The NCA beats the spatial mean on {beaten} of {len(cases)} cases."]
    return "\n".join(lines) + "\n" + (f"\n{extra.strip()}\n" if extra.strip() else "")


def write_benchmark(
    benchmark: Benchmark,
    folder: str | os.PathLike,
    *,
    title: str = "Generalisation benchmark",
    meta: dict[str, Any] | None = None,
    extra: str = "",
) -> dict[str, Path]:
    """Write ``benchmark.csv``, ``benchmark.md``, ``benchmark.json`` and
    ``figures/SIZE_FAMILY.png`` in ``folder``; return the paths by kind. ``meta`` goes
    into the JSON, ``extra`` (Markdown) at the end of the summary."""
    folder = Path(folder)
    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    marks = [0] + [h * benchmark.horizon_frames for h in benchmark.horizons]
    t = benchmark.steps_between_frames
    pictures = []
    for case in benchmark.examples:
        name = f"{case.size[0]}x{case.size[1]}_{case.family}"
        name += f"_{case.condition.replace(',', '_')}" if case.condition else ""
        truth, prediction = case.truth[0], case.predictions["nca"][0]
        pictures.append(
            viz.comparison_figure(
                truth[marks],
                prediction[marks],
                [m * t for m in marks],
                figures / f"{name}.png",
                title=f"{case.family} {case.size[0]}x{case.size[1]} {case.condition}".strip(),
            )
        )
    report = {
        **(meta or {}),
        "steps_between_frames": t,
        "pde_steps_between_frames": benchmark.pde_steps_between_frames,
        "horizon_frames": benchmark.horizon_frames,
        "horizons": list(benchmark.horizons),
        "mean_vrmse": {
            p: {str(h): benchmark.mean_vrmse(p, h) for h in benchmark.horizons}
            for p in benchmark.predictors
        },
        "rows": benchmark.rows,
    }
    paths = {
        "csv": folder / "benchmark.csv",
        "markdown": folder / "benchmark.md",
        "json": folder / "benchmark.json",
    }
    write_text(paths["csv"], benchmark_csv(benchmark))
    write_text(paths["markdown"], benchmark_markdown(benchmark, title, extra))
    write_text(paths["json"], json.dumps(json_safe(report), indent=2))
    return {**paths, "figures": figures}
