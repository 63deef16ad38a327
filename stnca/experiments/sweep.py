"""Hyperparameter sweeps: a grid of trainings, each over several seeds, and their test errors.

A sweep varies config keys (``section.key``, e.g. ``data.noise``) over lists of values; the
grid is their Cartesian product, the first key outermost. Each cell trains its seeds
(``training.seed`` = the base seed + 0, 1, ...) together (``stnca.train.train_seeds``) in
``OUT/cells/<cell>/seed<k>/`` and records ``OUT/cells/<cell>/result.json``: per seed the
minimum training loss and the test errors on an unseen initial condition at the training
horizon and at twice it, for the NCA and both baselines. A finished cell is skipped; an
interrupted one resumes. When every cell is done, ``results.csv`` and ``sweep.png``.

Time sampling, as in the paper's Fig 4 (section 3.1.1): the key ``t`` sets both the NCA steps
between training frames (``training.steps_between_frames``) and, for Gray-Scott data, the PDE
steps between them (``data.every``), with the horizon ``N = data.steps`` fixed, so there are
``M = N / t`` frames; the number of mini-batches follows, keeping the base config's
transitions per mini-batch. Varying ``training.steps_between_frames`` alone keeps the data's
frame spacing (``data.every`` pinned to the base's), so the NCA then takes a different number
of steps per PDE interval; varying ``data.every`` alone keeps ``t``.

The unseen test: Gray-Scott data - the PDE from a ``high_frequency`` initial condition (never
in training) for twice the horizon, clean even when the training data are noisy (Fig 6);
image data - the image sequence itself from its first image, with the final image held to
twice the horizon.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import os
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._files import atomic_path, json_safe, write_text
from ..analysis.evaluate import evaluate
from ..data import gray_scott
from ..data.augment import embed
from ..data.images import image_sequence
from ..data.initial_conditions import unseen_initial_condition
from ..train.config import Config, FileData, GrayScottData, ImageData, config_from_dict
from ..train.loop import check_data_shape

SAMPLING = "t"
"""The sweep key of the paper's time sampling (see the module's docstring)."""
RESULT_FILE = "result.json"
UNSTABLE = 10.0
"""A test relative error above this (persistence is about 0.5) marks a model that blew up
on the unseen initial condition: left out of the figure's means, counted instead."""
PREDICTORS = ("nca", "persistence", "spatial_mean")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One point of the grid: its varied values and the config they give."""

    values: tuple[tuple[str, Any], ...]
    config: Config

    @property
    def name(self) -> str:
        """A folder name, e.g. ``t=32`` or ``model.activation=relu_data.noise=0.1``."""
        return "_".join(f"{key}={_text(value)}" for key, value in self.values)


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


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "+".join(map(str, value))
    return str(value)


def parse_vary(text: str) -> tuple[str, list]:
    """``KEY=V1,V2,...`` -> ``(KEY, [V1, V2, ...])``; values are TOML scalars (numbers,
    booleans, strings), and ``a+b`` is the list ``[a, b]`` (e.g. kernels)."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"vary must look like KEY=V1,V2,..., got {text!r}")
    items = [v.strip() for v in values.split(",")]
    if not any(items) or any(not v for v in items):
        raise ValueError(f"vary {key}: give a comma-separated list of values, got {values!r}")
    return key, [_scalar_or_list(v) for v in items]


def _scalar_or_list(text: str) -> Any:
    if "+" in text and not _is_number(text):
        return [_scalar(part) for part in text.split("+")]
    return _scalar(text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def expand(base: Config, vary: Sequence[tuple[str, Sequence]]) -> list[Cell]:
    """The grid: every combination of the varied values (first key outermost), each checked
    by the config loader, so a bad key or value is refused before any training."""
    keys = [key for key, _ in vary]
    if len(set(keys)) != len(keys):
        raise ValueError(f"vary names a key twice: {', '.join(keys)}")
    for key, values in vary:
        if not values:
            raise ValueError(f"vary {key}: the list of values is empty")
        if len({json.dumps(v) for v in values}) != len(values):
            raise ValueError(f"vary {key}: a value is repeated")
    cells = []
    for combination in itertools.product(*(values for _, values in vary)):
        values = tuple(zip(keys, combination, strict=True))
        cell = Cell(values, cell_config(base, values))
        try:
            check_data_shape(cell.config, *_planned_shape(cell.config))
        except ValueError as error:
            raise ValueError(f"vary {cell.name}: {error}") from None
        cells.append(cell)
    return cells


def _planned_shape(config: Config) -> tuple[int, int, bool]:
    """The training data's trajectories, frames and whether the last frame repeats, from
    the config alone (so a cell is checked before any training)."""
    data = config.data
    if isinstance(data, GrayScottData):
        every = data.every or config.training.steps_between_frames
        return data.trajectories, data.steps // every + 1, False
    if isinstance(data, ImageData):
        return data.copies, len(data.images) + data.final_repeats - 1, data.final_repeats >= 2
    raise ValueError(f"sweeps need Gray-Scott or image data, got data.source = {data.source!r}")


def _planned_data(config: Config) -> tuple[int, int, int, int, int]:
    """The shape ``(R, T, H, W, C)`` of a cell's training data, from its config alone."""
    trajectories, frames, _ = _planned_shape(config)
    data = config.data
    if isinstance(data, ImageData):
        side = data.size + 2 * data.padding
        return trajectories, frames, side, side, 4
    return trajectories, frames, data.size, data.size, 2


def cell_config(base: Config, values: Sequence[tuple[str, Any]]) -> Config:
    """``base`` with the varied ``values`` set (``t`` and the pinning rules of the module's
    docstring), validated like a config file."""
    tables = base.to_dict()
    keys = {key for key, _ in values}
    if isinstance(base.data, GrayScottData) and "data.every" not in keys:
        tables["data"]["every"] = base.data.every or base.training.steps_between_frames
    sampling = [value for key, value in values if key == SAMPLING]
    for key, value in values:
        if key == SAMPLING:
            continue
        section, _, name = key.partition(".")
        if section not in ("model", "data", "training") or not name:
            raise ValueError(
                f"vary {key}: keys are {SAMPLING} or section.key with section model, data "
                "or training (e.g. data.noise, model.activation)"
            )
        if (section, name) in (("data", "source"), ("training", "epochs")):
            raise ValueError(f"vary {key}: not a key a sweep may vary")
        tables[section][name] = value
    # t last, on the cell's own horizon and trajectories; a varied training.minibatches
    # overrides the number of mini-batches it implies
    for t in sampling:
        _set_sampling(base, tables, t, "training.minibatches" not in keys)
    try:
        return config_from_dict(tables, base.base_dir)
    except ValueError as error:
        where = ", ".join(f"{k}={_text(v)}" for k, v in values)
        raise ValueError(f"vary {where}: {error}") from None


def _set_sampling(base: Config, tables: dict, t: Any, minibatches: bool) -> None:
    if not isinstance(t, int) or isinstance(t, bool) or t < 1:
        raise ValueError(f"vary {SAMPLING}: the time sampling must be an integer >= 1, got {t!r}")
    tables["training"]["steps_between_frames"] = t
    if not isinstance(base.data, GrayScottData):
        return  # file and image data keep their frames; t is the NCA steps between them
    steps = tables["data"].get("steps", base.data.steps)
    if not isinstance(steps, int) or steps < 1 or steps % t:
        raise ValueError(f"vary {SAMPLING}={t}: it must divide the horizon data.steps = {steps}")
    tables["data"]["every"] = t
    if not minibatches:
        return
    # keep the base config's transitions per mini-batch
    base_every = base.data.every or base.training.steps_between_frames
    per_batch = base.data.steps // base_every * base.data.trajectories / base.training.minibatches
    trajectories = tables["data"].get("trajectories", base.data.trajectories)
    if not isinstance(trajectories, int) or trajectories < 1:
        return  # the config loader names the bad value
    transitions = steps // t * trajectories
    wanted = max(1.0, transitions / per_batch)
    divisors = [b for b in range(1, transitions + 1) if transitions % b == 0]
    tables["training"]["minibatches"] = min(divisors, key=lambda b: (abs(b - wanted), b))


def select_shard(cells: Sequence[Cell], spec: str) -> list[Cell]:
    """The cells of shard ``i/n`` (0 <= i < n; ``$SLURM_ARRAY_TASK_ID`` of ``--array=0-(n-1)``):
    every n-th cell starting at the i-th, so shards get similar mixes of settings."""
    try:
        index, count = (int(part) for part in spec.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/n with integers, got {spec!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard i/n needs n >= 1 and 0 <= i < n, got {spec!r}")
    return list(cells[index::count])


# --- the unseen test ---------------------------------------------------------------------


def test_truth(config: Config, size: int | None = None) -> tuple[np.ndarray, int]:
    """The unseen test trajectory ``(T, H, W, C)`` (physical units) to twice the training
    horizon, and the NCA steps between its frames."""
    t = config.training.steps_between_frames
    data = config.data
    if isinstance(data, GrayScottData):
        every = data.every or t
        lattice = size or data.size
        initial = unseen_initial_condition(lattice)
        return np.asarray(
            gray_scott.simulate(initial, 2 * data.steps, every=every, params=data.params())
        ), t
    if isinstance(data, ImageData):
        sequence = image_sequence(data.images, data.size, data.final_repeats, config.base_dir)
        sequence = np.asarray(embed(sequence, data.padding))
        held = np.repeat(sequence[-1:], len(sequence) - 1, axis=0)
        return np.concatenate([sequence, held]), t
    if isinstance(data, FileData):
        raise ValueError(
            "sweeps over file data need an unseen test trajectory; use Gray-Scott or image data"
        )
    raise ValueError(f"no unseen test for data.source = {data.source!r}")


# --- running -------------------------------------------------------------------------------


def run_sweep(
    base: Config,
    vary: Sequence[tuple[str, Sequence]],
    out: str | os.PathLike,
    *,
    seeds: int = 1,
    shard: str | None = None,
    collect: bool = False,
    test_size: int | None = None,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Train the grid (or one shard of it), then write ``results.csv`` and ``sweep.png`` when
    every cell is done. With ``collect`` nothing is trained: the finished cells are merged.

    Returns ``{"cells": [...names...], "missing": [...], "results": path or None}``.
    """
    from ..train.loop import check_training_memory
    from ..train.seeds import train_seeds

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
    if test_size is not None and (
        isinstance(test_size, bool) or not isinstance(test_size, int) or test_size < 3
    ):
        raise ValueError(f"test_size must be an integer >= 3, got {test_size!r}")
    if shard is not None and collect:
        raise ValueError("give shard or collect, not both")
    if base.model.conditions:
        raise ValueError(
            "sweeps of conditioned models (model.conditions) are not supported: evaluate "
            "each parameter point with `stnca evaluate --condition ...`"
        )
    out = Path(out)
    cells = expand(base, vary)  # every cell checked before anything is written
    for cell in cells:  # and its memory, for all its seeds at once
        try:
            check_training_memory(cell.config, _planned_data(cell.config), seeds)
        except ValueError as error:
            raise ValueError(f"vary {cell.name}: {error}") from None
    log(f"sweep of {len(cells)} cell(s) x {seeds} seed(s) into {out}")
    mine = [] if collect else (select_shard(cells, shard) if shard else cells)
    if collect and not (out / "sweep.json").is_file():
        raise ValueError(f"{out} holds no sweep to collect (no {out / 'sweep.json'})")
    _check_grid(out, base, vary, seeds, test_size)
    for number, cell in enumerate(mine, 1):
        folder = out / "cells" / cell.name
        if (folder / RESULT_FILE).is_file():
            log(f"[{number}/{len(mine)}] {cell.name}: done earlier, skipped")
            continue
        log(f"[{number}/{len(mine)}] {cell.name}: training {seeds} seed(s)")
        outs = [folder / f"seed{k}" for k in range(seeds)]
        seed_values = [cell.config.training.seed + k for k in range(seeds)]
        resume = all((o / "checkpoint.eqx").is_file() for o in outs)
        start = time.perf_counter()
        results = train_seeds(
            cell.config,
            outs,
            seed_values,
            resume=resume,
            overwrite=not resume,
            progress=progress,
            log=log,
        )
        wall = time.perf_counter() - start
        truth, t = test_truth(cell.config, test_size)
        _write_cell(folder, cell, results, seed_values, truth, t, wall)
    return collect_sweep(out, cells, log=log)


def _check_grid(out: Path, base: Config, vary, seeds: int, test_size) -> None:
    """Record the grid in ``OUT/sweep.json``; refuse a folder holding another grid."""
    grid = json_safe(
        {
            "base": base.to_dict(),
            "vary": [[k, list(v)] for k, v in vary],
            "seeds": seeds,
            "test_size": test_size,
        }
    )
    path = out / "sweep.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved != json.loads(json.dumps(grid)):
            raise ValueError(
                f"{out} holds another sweep (a different config, vary, seeds or test size "
                f"in {path}); choose another out folder"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(grid, indent=2))


def _write_cell(folder, cell, results, seed_values, truth, t, wall) -> None:
    """Evaluate each seed's chosen model on the unseen test; write the cell's result."""
    horizon = (truth.shape[0] - 1) // 2
    rows, finals = [], []
    for seed, result in zip(seed_values, results, strict=True):
        evaluation = evaluate(result.model, truth, t, key=jax.random.key(seed), allow_diverged=True)
        row: dict[str, Any] = {
            "seed": seed,
            "min_training_loss": result.lowest_loss,
            "chosen_epoch": result.best_epoch,
            # a seed whose training loss became non-finite stopped early; its chosen model
            # (the last good one) is still tested
            "diverged": bool(result.diverged),
            "wall_seconds": wall,  # the cell's, all its seeds trained together
        }
        for name, frame in (("horizon", horizon), ("twice", 2 * horizon)):
            at = evaluation.at_frame(frame)
            for who in PREDICTORS:
                row[f"{who}_{name}"] = at[who]["relative_error"]
        rows.append(row)
        finals.append(evaluation.prediction[0, -1])
    report = {
        "cell": cell.name,
        "values": [[k, v] for k, v in cell.values],
        "steps_between_frames": t,
        "test_steps": [horizon * t, 2 * horizon * t],
        "rows": rows,
    }
    with atomic_path(folder / "snapshots.npy") as temporary:
        np.save(temporary, np.stack(finals).astype(np.float32), allow_pickle=False)
    with atomic_path(folder / "truth.npy") as temporary:
        np.save(temporary, np.stack([truth[0], truth[-1]]).astype(np.float32), allow_pickle=False)
    write_text(folder / RESULT_FILE, json.dumps(json_safe(report), indent=2))


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


def sweep_figure(out: Path, done: Sequence[tuple[Cell, dict]], path: Path) -> Path:
    """The paper's layout: A, the minimum training loss and the test error at twice the
    horizon against the (first) varied value, mean +- standard deviation over seeds (one
    curve per value of a second varied key); B, the test's initial condition and truth at
    the last step; C, the NCA at that step, per cell (its seed of lowest training loss)."""
    from matplotlib.figure import Figure

    from .. import viz

    keys = [k for k, _ in done[0][0].values]
    first = keys[0]
    firsts = {_label(first, c.values[0][1]): c.values[0][1] for c, _ in done}
    labels = [label.partition("=")[2] for label in firsts]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in firsts.values())
    positions = {
        label: (float(value) if numeric else i) for i, (label, value) in enumerate(firsts.items())
    }
    groups: dict[str, list] = {}
    for cell, report in done:
        group = ", ".join(_label(k, v) for k, v in cell.values[1:])
        groups.setdefault(group, []).append((cell, report))

    columns = len(done)
    width = max(8.0, 1.6 * (columns + 2))
    figure = Figure(figsize=(width, 3.4 + width / (columns + 2)))
    grid = figure.add_gridspec(2, columns + 2, height_ratios=[3.2, width / (columns + 2)])
    for panel, (metric, title) in enumerate(
        (
            ("min_training_loss", "minimum training loss"),
            ("nca_twice", "test relative error at twice the horizon"),
        )
    ):
        half = (columns + 2) // 2
        ax = figure.add_subplot(grid[0, panel * half : (panel + 1) * half if panel == 0 else None])
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
                x.append(positions[_label(first, cell.values[0][1])])
                mean.append(finite.mean() if finite.size else np.nan)
                std.append(finite.std() if finite.size > 1 else 0.0)
                if metric == "nca_twice" and not kept.all():
                    ax.annotate(
                        f"{int((~kept).sum())}/{kept.size}\nunstable",
                        (x[-1], 0.97),
                        xycoords=("data", "axes fraction"),
                        fontsize=7,
                        color="red",
                        ha="center",
                        va="top",
                    )
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=group or None)
        if metric == "nca_twice":
            baseline = [r["persistence_twice"] for _, rep in done for r in rep["rows"]]
            ax.axhline(
                np.nanmean(np.array(baseline, float)), color="grey", ls=":", label="persistence"
            )
        if not numeric:
            ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=7)
        elif len(labels) > 2 and min(positions.values()) > 0:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(first)
        ax.set_title(title, fontsize=9)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(groups) > 1 or metric == "nca_twice":
            ax.legend(fontsize=7)
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
    for i, (frame, label) in enumerate(panels):
        ax = figure.add_subplot(grid[1, i])
        channel = None if frame.shape[-1] in (3, 4) else frame.shape[-1] - 1
        finite = np.nan_to_num(frame, nan=low, posinf=high, neginf=low)
        ax.imshow(viz.render(finite, channel=channel, vmin=low, vmax=high), interpolation="nearest")
        ax.set_title(label, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    return path


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
