"""Hyperparameter sweeps: a grid of trainings, each over several seeds, and their test errors.

A sweep varies config keys (``section.key``, e.g. ``data.noise``) over lists of values; the
grid is their Cartesian product, the first key outermost. Each cell trains its seeds
(``training.seed`` = the base seed + 0, 1, ...) together (``stnca.train.train_seeds``) in
``OUT/cells/<cell>/seed<k>/`` and records ``OUT/cells/<cell>/result.json``: per seed the
minimum training loss and the test errors on an unseen initial condition at the training
horizon and at twice it, for the NCA and both baselines. A finished cell is skipped; an
interrupted one resumes. When every cell is done, ``results.csv`` and ``sweep.png``.

The key ``t`` is the paper's time sampling (Fig 4): the NCA steps and, for Gray-Scott data,
the PDE steps between training frames (``stnca.experiments.sweep_grid`` has the rules).

The unseen test: Gray-Scott data - the PDE from a ``high_frequency`` initial condition (never
in training) for twice the horizon, clean even when the training data are noisy (Fig 6);
image data - the image sequence itself from its first image, with the final image held to
twice the horizon.

This module runs the grid and tests each cell; the grid itself is ``sweep_grid``, the merged
results and the figure ``sweep_results`` (their names still import from here).
"""

from __future__ import annotations

import json
import os
import time
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
from ..data.initial_volumes import unseen_state
from ..train.config import Config, FileData, GrayScottData, ImageData, config_from_dict
from .sweep_grid import SAMPLING as SAMPLING
from .sweep_grid import Cell as Cell
from .sweep_grid import _planned_data
from .sweep_grid import cell_config as cell_config
from .sweep_grid import expand as expand
from .sweep_grid import parse_vary as parse_vary
from .sweep_grid import select_shard as select_shard
from .sweep_results import PREDICTORS as PREDICTORS
from .sweep_results import RESULT_FILE as RESULT_FILE
from .sweep_results import UNSTABLE as UNSTABLE
from .sweep_results import collect_sweep as collect_sweep
from .sweep_results import read_results as read_results
from .sweep_results import sweep_figure as sweep_figure

# --- the unseen test ---------------------------------------------------------------------


def test_truth(config: Config, size: int | None = None) -> tuple[np.ndarray, int]:
    """The unseen test trajectory ``(T, H, W, C)`` (physical units) to twice the training
    horizon, and the NCA steps between its frames."""
    t = config.training.steps_between_frames
    data = config.data
    if isinstance(data, GrayScottData):
        every = data.every or t
        lattice, dims = size or data.size, config.model.dimensions
        initial = unseen_state(lattice, dims)
        return np.asarray(
            gray_scott.simulate(
                initial, 2 * data.steps, every=every, params=data.params(), dims=dims
            )
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
        saved = _with_defaults(json.loads(path.read_text()), base.base_dir)
        if saved != json.loads(json.dumps(grid)):
            raise ValueError(
                f"{out} holds another sweep (a different config, vary, seeds or test size "
                f"in {path}); choose another out folder"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(grid, indent=2))


def _with_defaults(saved: Any, base_dir: str) -> Any:
    """A recorded grid with its base config read again, so that options added to the
    package since (at their defaults, which change nothing) do not make it another sweep."""
    try:
        base = config_from_dict(saved["base"], base_dir)
    except (KeyError, TypeError, ValueError):
        return saved  # not a config this version reads: compared as it is
    return {**saved, "base": json.loads(json.dumps(json_safe(base.to_dict())))}


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
