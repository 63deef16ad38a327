"""The results of a sweep: the finished cells merged into ``results.csv`` and the figure
``sweep.png`` (the paper's Fig 4 layout), and ``results.csv`` read back as numbers.

Each cell's ``result.json`` holds per seed the minimum training loss and the test errors
(``PREDICTORS``) at the training horizon and at twice it; ``stnca.experiments.sweep`` writes
it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._files import atomic_path, write_text
from .sweep_grid import Cell, _text

RESULT_FILE = "result.json"
UNSTABLE = 10.0
"""A test relative error above this (persistence is about 0.5) marks a model that blew up
on the unseen initial condition: left out of the figure's means, counted instead."""
PREDICTORS = ("nca", "persistence", "spatial_mean")


SHORT = {
    "identity": "id",
    "laplacian": "lap",
    "gradient_x": "gx",
    "gradient_y": "gy",
    "average": "avg",
    "gradient_magnitude": "|g|",
}
"""Short names of kernels for the figure's labels."""


def _label(key: str, value: Any) -> str:
    """``key=value`` for the figure: the key without its section, kernels abbreviated."""
    if isinstance(value, list | tuple):
        value = "+".join(SHORT.get(str(v), str(v)) for v in value)
    return f"{key.rpartition('.')[2]}={value}"


def collect_sweep(
    out: str | os.PathLike, cells: Sequence[Cell], *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Merge the finished cells into ``results.csv`` and ``sweep.png``; name missing ones."""
    out = Path(out)
    done, missing = [], []
    for cell in cells:
        path = out / "cells" / cell.name / RESULT_FILE
        if path.is_file():
            done.append((cell, json.loads(path.read_text())))
        else:
            missing.append(cell.name)
    if missing:
        log(f"{len(missing)} of {len(cells)} cells not finished: {', '.join(missing)}")
        return {"cells": [c.name for c in cells], "missing": missing, "results": None}
    keys = [k for k, _ in cells[0].values]
    table = io.StringIO()
    columns = [*keys, "seed", "min_training_loss", "chosen_epoch", "diverged"]
    columns += [f"{w}_{n}" for n in ("horizon", "twice") for w in PREDICTORS] + ["wall_seconds"]
    writer = csv.DictWriter(table, columns, lineterminator="\n")
    writer.writeheader()
    for cell, report in done:
        for row in report["rows"]:
            writer.writerow({**{k: _text(v) for k, v in cell.values}, **row})
    write_text(out / "results.csv", table.getvalue())
    sweep_figure(out, done, out / "sweep.png")
    log(f"wrote {out / 'results.csv'} and {out / 'sweep.png'} ({len(done)} cells)")
    return {"cells": [c.name for c in cells], "missing": [], "results": out / "results.csv"}


# --- the figure ----------------------------------------------------------------------------

CURVES = (
    ("min_training_loss", "minimum training loss"),
    ("nca_twice", "test relative error at twice the horizon"),
)
"""The figure's panel A: the metric and title of each of its two plots."""


class _XAxis(NamedTuple):
    """Panel A's x axis: the first varied key, its values' labels and positions (the values
    themselves when all are numbers, else their order)."""

    key: str
    labels: list[str]
    positions: dict[str, float]
    numeric: bool


def sweep_figure(out: Path, done: Sequence[tuple[Cell, dict]], path: Path) -> Path:
    """The paper's layout: A, the minimum training loss and the test error at twice the
    horizon against the (first) varied value, mean +- standard deviation over seeds (one
    curve per value of a second varied key); B, the test's initial condition and truth at
    the last step; C, the NCA at that step, per cell (its seed of lowest training loss)."""
    from matplotlib.figure import Figure

    axis = _x_axis(done)
    groups: dict[str, list] = {}
    for cell, report in done:
        group = ", ".join(_label(k, v) for k, v in cell.values[1:])
        groups.setdefault(group, []).append((cell, report))

    columns = len(done)
    width = max(8.0, 1.6 * (columns + 2))
    figure = Figure(figsize=(width, 3.4 + width / (columns + 2)))
    grid = figure.add_gridspec(2, columns + 2, height_ratios=[3.2, width / (columns + 2)])
    for panel, (metric, title) in enumerate(CURVES):
        half = (columns + 2) // 2
        ax = figure.add_subplot(grid[0, panel * half : (panel + 1) * half if panel == 0 else None])
        _plot_curves(ax, metric, title, axis, groups, done)
    panels, low, high = _snapshots(out, done)
    for i, (frame, label) in enumerate(panels):
        _show_frame(figure.add_subplot(grid[1, i]), frame, label, low, high)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    return path


def _x_axis(done: Sequence[tuple[Cell, dict]]) -> _XAxis:
    """Panel A's x axis, from the first varied value of every cell."""
    keys = [k for k, _ in done[0][0].values]
    first = keys[0]
    firsts = {_label(first, c.values[0][1]): c.values[0][1] for c, _ in done}
    labels = [label.partition("=")[2] for label in firsts]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in firsts.values())
    positions = {
        label: (float(value) if numeric else i) for i, (label, value) in enumerate(firsts.items())
    }
    return _XAxis(first, labels, positions, numeric)


def _plot_curves(ax, metric: str, title: str, axis: _XAxis, groups: dict, done) -> None:
    """One plot of panel A: ``metric`` per cell, a curve per group, and for the test error
    the persistence baseline and each cell's count of unstable seeds."""
    for group, members in groups.items():
        x, mean, std = [], [], []
        for cell, report in members:
            values = np.array(
                [r[metric] if r[metric] is not None else np.nan for r in report["rows"]], float
            )
            # as in the paper's Fig 4A, a model that blew up on the test is left out of
            # the mean (and counted on the plot)
            kept = np.isfinite(values)
            if metric == "nca_twice":
                kept &= values < UNSTABLE
            finite = values[kept]
            x.append(axis.positions[_label(axis.key, cell.values[0][1])])
            mean.append(finite.mean() if finite.size else np.nan)
            std.append(finite.std() if finite.size > 1 else 0.0)
            if metric == "nca_twice" and not kept.all():
                _count_unstable(ax, x[-1], kept)
        ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=group or None)
    if metric == "nca_twice":
        baseline = [r["persistence_twice"] for _, rep in done for r in rep["rows"]]
        ax.axhline(np.nanmean(np.array(baseline, float)), color="grey", ls=":", label="persistence")
    if not axis.numeric:
        ax.set_xticks(range(len(axis.labels)), axis.labels, rotation=20, fontsize=7)
    elif len(axis.labels) > 2 and min(axis.positions.values()) > 0:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(axis.key)
    ax.set_title(title, fontsize=9)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(groups) > 1 or metric == "nca_twice":
        ax.legend(fontsize=7)


def _count_unstable(ax, x: float, kept: np.ndarray) -> None:
    """Write a cell's count of seeds that blew up on the test at the top of its column."""
    ax.annotate(
        f"{int((~kept).sum())}/{kept.size}\nunstable",
        (x, 0.97),
        xycoords=("data", "axes fraction"),
        fontsize=7,
        color="red",
        ha="center",
        va="top",
    )


def _snapshots(
    out: Path, done: Sequence[tuple[Cell, dict]]
) -> tuple[list[tuple[np.ndarray, str]], float, float]:
    """Panels B and C: the test's initial condition and truth, then each cell's NCA at the
    last step, with their labels; and the truth's range, which colours them all."""
    truth = np.load(out / "cells" / done[0][0].name / "truth.npy")
    low, high = float(truth.min()), float(truth.max())
    steps = {report["test_steps"][1] for _, report in done}
    when = f"n = {steps.pop()}" if len(steps) == 1 else "twice the horizon"
    panels = [(truth[0], "initial condition"), (truth[1], f"truth, {when}")]
    for cell, report in done:
        snapshots = np.load(out / "cells" / cell.name / "snapshots.npy")
        losses = [r["min_training_loss"] for r in report["rows"]]
        # the paper's choice: the seed of lowest training loss, whether or not it holds
        best = int(np.nanargmin(np.array(losses, float)))
        error = report["rows"][best]["nca_twice"]
        note = "" if error is not None and error < UNSTABLE else " (blew up)"
        named = "\n".join(_label(k, v) for k, v in cell.values)
        label = f"{named}\nseed {report['rows'][best]['seed']}{note}"
        panels.append((snapshots[best], label))
    return panels, low, high


def _show_frame(ax, frame: np.ndarray, label: str, low: float, high: float) -> None:
    """One snapshot, coloured on the truth's range (non-finite cells clipped to it): a volume
    as its middle slices and projections, a line as a strip."""
    from .. import viz
    from ..viz_volumes import as_pictures

    if frame.ndim == 4:  # (D, H, W, C)
        frame = as_pictures(frame[None], 3)[0]
    elif frame.ndim == 2:  # (X, C)
        frame = frame[None]
    channel = None if frame.shape[-1] in (3, 4) else frame.shape[-1] - 1
    finite = np.nan_to_num(frame, nan=low, posinf=high, neginf=low)
    ax.imshow(viz.render(finite, channel=channel, vmin=low, vmax=high), interpolation="nearest")
    ax.set_title(label, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """``results.csv`` as rows of numbers (the varied values stay text)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            try:
                row[key] = float(value) if value not in ("", None) else math.nan
            except ValueError:
                pass
    return rows
