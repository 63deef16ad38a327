"""A training run's folder: its files, how they are checked before a run, and metrics.csv.

A folder holds::

    model.eqx        the chosen model so far, loadable by ``load_model`` (physical units)
    final.eqx        the latest weights (at the last checkpoint), also loadable
    checkpoint.eqx   everything needed to resume: model, optimiser state, propagated start
                     states, best model, PRNG key, epoch
    config.toml      the resolved configuration
    metrics.csv      one row per epoch (row 0: the untrained model)
    loss.png         the loss curves
    train_data.npy   the training trajectories (R, M+1, H, W, C), physical units
    validation_data.npy  the held-back trajectories, if any

An overwritten run (``overwrite``) is not deleted when the new one starts: ``start_fresh``
moves its files into ``.replaced/`` inside the folder, and they are removed only once the
new run has saved its first checkpoint (``forget_replaced``). A run interrupted before
then puts them back (``restore_replaced``), and so does the next run in that folder after a
kill: a folder never ends without a loadable ``model.eqx`` because of an overwrite.

The old ``model.eqx`` also stays in place (a hard link) until the new run's first save
writes its own, so even a kill leaves a loadable model in the folder.

``check_folder`` checks a folder before a run writes anything: a folder in a file's place,
another run's files (kept unless ``overwrite``), a resume that does not match its config;
``saved_run`` reads back what a resumed run needs; ``prepare_runs`` does both for the runs
of one training (several seeds share one copy of the data).
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._files import remove_stale_temporaries, write_text
from ..data.io import load_trajectory
from .config import Config, load_config
from .dataset import training_data, validation_data

MODEL_FILE = "model.eqx"
CHECKPOINT_FILE = "checkpoint.eqx"
FINAL_FILE = "final.eqx"
CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.csv"
LOSS_FIGURE = "loss.png"
DATA_FILE = "train_data.npy"
VALIDATION_FILE = "validation_data.npy"
RUN_FILES = (
    MODEL_FILE,
    CHECKPOINT_FILE,
    FINAL_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    LOSS_FIGURE,
    DATA_FILE,
    VALIDATION_FILE,
)
"""Every file a training run writes in its folder (and ``tensorboard/``, when enabled)."""
RESUME_MAY_CHANGE = ("epochs", "tensorboard", "tensorboard_every")
"""The ``[training]`` keys a ``--resume`` may change: none changes what is trained."""
REPORT_FILES = ("snapshots.png", "morph.json", "trajectory.mp4", "hidden.mp4")
"""The files an image run's morph report adds (``stnca.analysis.morphing``)."""
REPLACED_FOLDER = ".replaced"
"""Where an overwritten run's files wait until the new run's first checkpoint."""
METRICS_COLUMNS = (
    "epoch",
    "loss",
    "reinitialised_loss",
    "rollout_loss",
    "gradient_norm",
    "learning_rate",
    "propagated",
    "elapsed_seconds",
)


def write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(k, v) for k, v in row.items()})
    write_text(path, buffer.getvalue())


def _cell(name: str, value) -> str:
    if name in ("epoch", "propagated"):
        return str(int(value))
    value = float(value)
    return "" if math.isnan(value) else repr(value)


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Read a ``metrics.csv`` written by training (empty cells read as NaN).

    Raises:
        ValueError: naming the file, when it is not a metrics file of ours.
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if rows and "epoch" not in rows[0]:
            raise ValueError("no epoch column")
        return [
            {
                k: (int(v) if k in ("epoch", "propagated") else float(v) if v else math.nan)
                for k, v in row.items()
            }
            for row in rows
        ]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path} is not a metrics file written by stnca ({error})") from None


def check_folder(config: Config, out: Path, resume: bool, overwrite: bool = False) -> Config:
    """Validate the output folder; return the config the run will use.

    Nothing is written here: every file the run will write is checked first (a folder in
    its place is refused), and an earlier run's files are kept unless ``overwrite``. On
    ``resume`` the config is the one saved in ``out``, with the changes a resume may make.
    """
    checkpoint = out / CHECKPOINT_FILE
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {out} exists and is not a folder")
    for name in RUN_FILES:
        if (out / name).is_dir():
            raise ValueError(f"cannot write {out / name}: it is a folder")
    if resume and overwrite:
        raise ValueError("give resume or overwrite, not both")
    if resume:
        if not checkpoint.is_file():
            raise ValueError(f"nothing to resume: {checkpoint} does not exist")
        saved = load_config(out / CONFIG_FILE)
        changes = {key: getattr(config.training, key) for key in RESUME_MAY_CHANGE}
        wanted = config.replace("training", **{k: getattr(saved.training, k) for k in changes})
        if wanted.to_dict() != saved.to_dict():
            raise ValueError(
                f"the config differs from the one {out} was trained with (only "
                f"{', '.join('training.' + k for k in RESUME_MAY_CHANGE)} may change on "
                f"resume); see {out / CONFIG_FILE}"
            )
        return saved.replace("training", **changes)
    for name in (MODEL_FILE, CHECKPOINT_FILE):
        if (out / name).exists() and not overwrite:
            raise ValueError(
                f"{out} already holds a training run ({name}); pass resume=True to continue "
                f"it, overwrite=True to replace it, or choose another output folder"
            )
    leftovers = [name for name in RUN_FILES if (out / name).exists()]
    if leftovers and not overwrite and _same_run_started(config, out):
        return config  # this run, interrupted before its first checkpoint: start it again
    if leftovers and not overwrite:
        raise ValueError(
            f"{out} already holds files of a training run ({', '.join(leftovers)}) but no "
            f"checkpoint to resume; pass overwrite=True to replace them or choose another folder"
        )
    return config


def _same_run_started(config: Config, out: Path) -> bool:
    """Whether ``out`` holds only the start of this very run (its ``config.toml`` equal to
    ``config``, or none yet), stopped before its first checkpoint: nothing trained to lose."""
    saved = out / CONFIG_FILE
    if not saved.is_file():
        return True
    try:
        return load_config(saved).to_dict() == config.to_dict()
    except ValueError:
        return False


def saved_run(
    out: Path, dims: int = 2
) -> tuple[np.ndarray, np.ndarray | None, list[dict[str, float]]]:
    """The base data, validation data (or ``None``) and metrics rows a run saved in ``out``
    (on a ``dims``-dimensional lattice)."""
    base = load_trajectory(out / DATA_FILE, what="saved training data", dims=dims)
    held = None
    if (out / VALIDATION_FILE).is_file():
        held = load_trajectory(out / VALIDATION_FILE, what="saved validation data", dims=dims)
    metrics = read_metrics(out / METRICS_FILE) if (out / METRICS_FILE).is_file() else []
    return base, held, metrics


def _unseeded(config: Config) -> dict[str, Any]:
    return config.replace("training", seed=0).to_dict()


def prepare_runs(
    configs: Sequence[Config], outs: Sequence[Path], resume: bool, overwrite: bool
) -> tuple[list[Config], np.ndarray, np.ndarray | None, list[list[dict[str, float]]]]:
    """Check every run's folder (nothing is written), then make the data once for all runs,
    or load each resumed run's (which must agree).

    Args:
        configs: one config per run, equal but for ``training.seed``.
        outs: one folder per run.
        resume, overwrite: as for ``check_folder``.

    Returns:
        ``(configs, base data, validation data or None, metrics rows per run)``; the configs
        are the ones the runs will use (``check_folder``'s).
    """
    for config, out in zip(configs, outs, strict=True):
        if _unseeded(config) != _unseeded(configs[0]):
            raise ValueError(
                f"the config for {out} differs from that for {outs[0]} in more than "
                "training.seed: train them as separate runs"
            )
        if config.training.tensorboard:
            from .tensorboard import check_available

            check_available(out)  # before anything is written
    configs = [check_folder(c, o, resume, overwrite) for c, o in zip(configs, outs, strict=True)]
    if not resume:
        return configs, training_data(configs[0]), validation_data(configs[0]), [[] for _ in outs]
    saved = [saved_run(out, configs[0].model.dimensions) for out in outs]
    base, held, _ = saved[0]
    for out, (other_base, other_held, _) in zip(outs, saved, strict=True):
        if not (
            np.array_equal(other_base, base)
            and (other_held is None) == (held is None)
            and (held is None or other_held is None or np.array_equal(other_held, held))
        ):
            raise ValueError(
                f"{out} was trained on other data than {outs[0]}: resume them one by one"
            )
    return configs, base, held, [metrics for _, _, metrics in saved]


def start_fresh(out: Path) -> None:
    """Make ``out`` ready for a new run: no file of an earlier run may stay in place (after
    ``check_folder`` allowed it, i.e. with ``overwrite``). The earlier run's files move to
    ``out/.replaced/`` until the new run's first checkpoint (``forget_replaced``)."""
    out.mkdir(parents=True, exist_ok=True)
    earlier = [name for name in RUN_FILES if (out / name).exists()]
    if earlier:
        kept = out / REPLACED_FOLDER
        kept.mkdir(exist_ok=True)
        for name in earlier:
            os.replace(out / name, kept / name)
        if (kept / MODEL_FILE).exists():  # the old model stays loadable in place until the
            try:  # new run's first save replaces it (atomically)
                os.link(kept / MODEL_FILE, out / MODEL_FILE)
            except OSError:  # a file system without hard links
                shutil.copy2(kept / MODEL_FILE, out / MODEL_FILE)
    for events in (out / "tensorboard").glob("events.out.tfevents.*"):
        events.unlink()  # an earlier run's curves would mix with the new ones


def replacing(out: Path) -> bool:
    """Whether ``out`` holds an overwritten run that the new run has not yet replaced."""
    return (out / REPLACED_FOLDER).is_dir()


def forget_replaced(out: Path) -> None:
    """The new run in ``out`` has its first checkpoint: remove the overwritten run."""
    shutil.rmtree(out / REPLACED_FOLDER, ignore_errors=True)


def restore_replaced(out: Path) -> bool:
    """Put back the overwritten run an interrupted or killed overwrite set aside (the new
    run's files, written before its first checkpoint, are removed); ``False`` if none."""
    kept = out / REPLACED_FOLDER
    if not kept.is_dir():
        return False
    for name in RUN_FILES:
        if (kept / name).exists():
            os.replace(kept / name, out / name)
        else:
            (out / name).unlink(missing_ok=True)
    shutil.rmtree(kept)
    return True


def clean_temporaries(out: Path) -> list[Path]:
    """Remove what writes killed mid-way left in ``out`` (our own temporary names only)."""
    return remove_stale_temporaries(out, (*RUN_FILES, *REPORT_FILES))
