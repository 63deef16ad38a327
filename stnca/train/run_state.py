"""One run's state and what is written of it: the device state the epoch function advances,
the host-side selection state, the checkpoint (save and resume), metrics rows, and the rule
that chooses model.eqx."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import viz
from ..model import NCA
from ..serialization import header_float, load_tree, read_header, save_model, save_tree
from .algorithm import initial_states, transition_losses
from .config import Config, TrainingConfig
from .run_folder import (
    CHECKPOINT_FILE,
    FINAL_FILE,
    LOSS_FIGURE,
    METRICS_FILE,
    MODEL_FILE,
    forget_replaced,
    replacing,
    write_metrics,
)

if TYPE_CHECKING:
    from .tensorboard import TensorBoardWriter


_TRANSITION_LOSSES = eqx.filter_jit(transition_losses)  # one wrapper: compiled once per shape


def untrained_row(model: NCA, y, scored, training, score_fn) -> dict[str, float]:
    """Metrics row 0: the untrained model's losses (all transitions from the data, the
    re-initialised trajectories, and a free rollout), the reference every run is judged by."""
    t, loss = training.steps_between_frames, training.loss
    losses = _TRANSITION_LOSSES(model, initial_states(model, y), y[:, 1:], t, loss)
    restarted = min(training.reinitialised_batches, y.shape[0]) or y.shape[0]
    rollout = math.nan
    if training.select_by == "rollout":
        rollout = float(score_fn(model, scored, t, loss))
    return {
        "epoch": 0,
        "loss": float(jnp.mean(losses)),
        "reinitialised_loss": float(jnp.mean(losses[:restarted])),
        "rollout_loss": rollout,
        "gradient_norm": math.nan,
        "learning_rate": math.nan,
        "propagated": 0,
        "elapsed_seconds": 0.0,
    }


def is_better(score: float, state: RunState, training, epoch: int) -> bool:
    """Whether the model scored ``score`` at ``epoch`` replaces the chosen one.

    Never in the first ``select_after`` of the epochs (the first candidate after that is
    always taken). ``rollout``: the lowest score. ``loss``/``reinitialised`` (one score per
    epoch, noisier): lower than the best so far *and* than the previous epoch's, as in
    the authors' code.
    """
    if not math.isfinite(score) or epoch <= training.select_after * training.epochs:
        return False
    if training.select_by == "rollout":
        return score < state.best_loss
    return score < state.best_loss and score < state.previous_score


class TrainingDiverged(RuntimeError):
    """The training loss or gradient became non-finite; the chosen model on disk is kept."""


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns."""

    out_dir: Path
    model: NCA
    """The chosen model, as saved in ``model.eqx``."""
    best_loss: float
    """The chosen model's score by ``selected_by`` (a rollout loss by default)."""
    best_epoch: int
    epochs: int
    """Epochs completed in total (including those before a resume)."""
    metrics: list[dict[str, float]]
    final_model: NCA
    """The model after the last update (may differ from the best)."""
    config: Config
    """The config the run used (after a resume: the saved one, with the new epochs)."""
    data: np.ndarray
    """The base training data, physical units, as saved in ``train_data.npy``."""
    selected_by: str = "rollout"
    diverged: str | None = None
    """Why the run stopped early (its loss became non-finite), else ``None``. Only
    ``train_seeds`` returns such a result; ``train`` raises ``TrainingDiverged`` instead."""

    @property
    def lowest_loss(self) -> float:
        """The lowest training loss (all transitions) of any epoch."""
        return min((m["loss"] for m in self.metrics if m["epoch"] > 0), default=math.inf)

    @property
    def untrained(self) -> dict[str, float]:
        """The untrained model's row of the metrics (epoch 0)."""
        return self.metrics[0]


class Device(NamedTuple):
    """What the epoch function advances (stacked over the runs when K > 1)."""

    model: NCA
    opt_state: Any
    states: jax.Array


@dataclasses.dataclass(frozen=True)
class RunState:
    """One run's host-side state: its epoch, the chosen model and the selection rule's memory."""

    best_model: NCA
    epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    elapsed: float = 0.0
    lowest_loss: float = math.inf
    previous_score: float = math.inf
    diverged: str | None = None
    """Set when the run's loss became non-finite: it stopped at ``epoch`` (its files hold
    that epoch's state) while the other runs went on."""
    final_model: NCA | None = None
    """A stopped run's last finite weights (its lane of the device state is stale)."""


class Snapshot(NamedTuple):
    """Everything an epoch changes, rebound at once so an interrupt never sees half of it."""

    epoch: int
    device: Device
    runs: tuple[RunState, ...]


@dataclasses.dataclass
class Run:
    """One run's fixed parts: its folder, config, key, metrics rows and TensorBoard writer."""

    out: Path
    config: Config
    key_data: jax.Array
    metrics: list[dict[str, float]]
    elapsed_at_start: float = 0.0
    saved_best: int | None = None
    """The epoch of the model in ``model.eqx`` (``None``: rewrite it at the first save)."""
    figure_at: float = -math.inf
    """When (``time.monotonic``) ``loss.png`` was last drawn."""
    board: TensorBoardWriter | None = None


LOSS_FIGURE_SECONDS = 20.0
"""A checkpoint redraws ``loss.png`` when it was last drawn this long ago (drawing takes
0.3-0.5 s, as long as a whole epoch of a small run), and always at the last epoch, at an
interruption and when a run diverges; ``metrics.csv`` is written at every checkpoint."""


def save_run(
    run: Run,
    state: RunState,
    device: Device,
    training: TrainingConfig,
    *,
    figure: bool | None = None,
) -> None:
    """Save metrics, then the checkpoint, then the chosen model (each file atomically).

    In this order a crash at any point leaves files that agree: metrics may run ahead
    of the checkpoint (a resume drops the extra rows), and model.eqx is never newer
    than the checkpoint it came from. ``figure``: redraw ``loss.png`` (``None``: at the
    last epoch, or when it is ``LOSS_FIGURE_SECONDS`` old).
    """
    out = run.out
    rows = [m for m in run.metrics if m["epoch"] <= state.epoch]
    write_metrics(out / METRICS_FILE, rows)
    if figure is None:
        stale = time.monotonic() - run.figure_at >= LOSS_FIGURE_SECONDS
        figure = stale or state.epoch >= training.epochs or not (out / LOSS_FIGURE).exists()
    if rows and figure:
        run.figure_at = time.monotonic()
        x = [m["epoch"] for m in rows]
        others = {}
        if training.reinitialised_batches:
            others["re-initialised trajectories"] = (x, [m["reinitialised_loss"] for m in rows])
        rollout = [m.get("rollout_loss", math.nan) for m in rows]
        others["free rollout (model selection)"] = (x, rollout)
        viz.loss_figure(
            x,
            [m["loss"] for m in rows],
            out / LOSS_FIGURE,
            others=others,
            chosen=state.best_epoch or None,
        )
    save_tree(
        out / CHECKPOINT_FILE,
        (device.model, device.opt_state, device.states, state.best_model, run.key_data),
        {
            "kind": "training_state",
            "epoch": state.epoch,
            "best_loss": state.best_loss,
            "best_epoch": state.best_epoch,
            "lowest_loss": state.lowest_loss,
            "previous_score": state.previous_score,
            "elapsed": state.elapsed,
            "hyperparameters": device.model.hyperparameters(),
        },
    )
    save_model(out / FINAL_FILE, device.model, epoch=state.epoch)
    # (while replacing another run, model.eqx is still the other run's: always write it)
    if state.best_epoch != run.saved_best or not (out / MODEL_FILE).exists() or replacing(out):
        save_model(
            out / MODEL_FILE,
            state.best_model,
            epoch=state.best_epoch,
            loss=state.best_loss,
            selected_by=training.select_by,
        )
        run.saved_best = state.best_epoch
    forget_replaced(out)  # the new run has its checkpoint: an overwritten run can go
    if run.board is not None:
        run.board.flush()


def no_save(*args, **kwargs) -> None:
    """``save_run`` in the processes of a distributed run that do not write (all but 0)."""


def read_checkpoint(
    run: Run, device: Device, model: NCA, training: TrainingConfig
) -> tuple[Device, RunState]:
    """Resume ``run`` from its checkpoint: its device state and selection state (and, in
    ``run``, its key and the time it had run); ``device`` and ``model`` give the shapes."""
    header = read_header(run.out / CHECKPOINT_FILE, kind="training_state")
    if training.epochs < header["epoch"]:
        raise ValueError(
            f"{run.out} is already at epoch {header['epoch']}: epochs = "
            f"{training.epochs} would not continue it (give at least {header['epoch']})"
        )
    *device_tree, best_model, run.key_data = load_tree(
        run.out / CHECKPOINT_FILE, (*device, model, run.key_data)
    )
    run.elapsed_at_start = header["elapsed"]
    return Device(*device_tree), RunState(
        best_model,
        epoch=header["epoch"],
        best_epoch=header["best_epoch"],
        # non-finite values are stored as null; the last two are absent from checkpoints
        # written before they were tracked
        best_loss=header_float(header, "best_loss"),
        lowest_loss=header_float(header, "lowest_loss"),
        previous_score=header_float(header, "previous_score"),
        elapsed=header["elapsed"],
    )
