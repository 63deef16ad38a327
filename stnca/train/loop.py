"""The training driver: data, model, epochs, checkpoints, resume, metrics, progress.

An output folder holds::

    model.eqx        the best model so far (lowest training loss, as in the paper), loadable
                     by load_model
    final.eqx        the latest weights (at the last checkpoint), also loadable
    checkpoint.eqx   everything needed to resume: model, optimiser state, propagated start
                     states, best model, PRNG key, epoch
    config.toml      the resolved configuration
    metrics.csv      epoch, loss (all transitions), reinitialised_loss, gradient_norm,
                     learning_rate, elapsed_seconds
    loss.png         the loss curve
    train_data.npy   the training trajectories (R, M+1, H, W, C), noise included

Every file is written atomically, so an interruption at any moment leaves the previous
version of each file intact. Resuming replays exactly: per-epoch randomness is derived from
the saved key and the epoch number, so a resumed run ends with the same weights, bit for
bit, as an uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import viz
from .._files import write_text
from ..data.io import load_trajectory, save_array
from ..model import NCA
from ..serialization import load_tree, read_header, save_model, save_tree
from .algorithm import initial_states, learning_rate_schedule, make_epoch, make_optimizer
from .config import Config, load_config
from .dataset import TrainingData, training_data

MODEL_FILE = "model.eqx"
CHECKPOINT_FILE = "checkpoint.eqx"
FINAL_FILE = "final.eqx"
CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.csv"
LOSS_FIGURE = "loss.png"
DATA_FILE = "train_data.npy"
METRICS_COLUMNS = (
    "epoch",
    "loss",
    "reinitialised_loss",
    "gradient_norm",
    "learning_rate",
    "elapsed_seconds",
)


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite; the best model on disk is kept."""


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns."""

    out_dir: Path
    model: NCA
    """The best model (lowest training loss), as saved in ``model.eqx``."""
    best_loss: float
    best_epoch: int
    epochs: int
    """Epochs completed in total (including those before a resume)."""
    metrics: list[dict[str, float]]
    final_model: NCA
    """The model after the last update (may differ from the best)."""


def build_model(config: Config, observable_channels: int, key) -> NCA:
    """The untrained NCA described by ``config.model`` for data with that many channels."""
    settings = dataclasses.asdict(config.model)
    return NCA(observable_channels, key=key, **settings)


@dataclasses.dataclass(frozen=True)
class _State:
    model: NCA
    opt_state: object
    states: jax.Array
    best_model: NCA
    key_data: jax.Array
    epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    elapsed: float = 0.0

    def tree(self):
        return (self.model, self.opt_state, self.states, self.best_model, self.key_data)


def _check_data(config: Config, y: np.ndarray) -> None:
    r, frames = y.shape[:2]
    transitions = r * (frames - 1)
    training = config.training
    if transitions % training.minibatches:
        raise ValueError(
            f"training.minibatches ({training.minibatches}) must divide the number of "
            f"transitions M x R = {frames - 1} x {r} = {transitions}"
        )
    if training.reinitialised_batches > r:
        raise ValueError(
            f"training.reinitialised_batches ({training.reinitialised_batches}) exceeds the "
            f"number of trajectories R = {r}"
        )


def _write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (row[k] if k == "epoch" else repr(float(row[k]))) for k in row})
    write_text(path, buffer.getvalue())


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Read a ``metrics.csv`` written by training."""
    with open(path, newline="") as handle:
        return [
            {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]


class _Progress:
    """A rich progress bar on a terminal, plain lines otherwise."""

    def __init__(self, total: int, start: int, enabled: bool | None, log: Callable[[str], None]):
        from rich.console import Console

        self.console = Console(stderr=False)
        self.total, self.start, self.log = total, start, log
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.last_print = -math.inf
        self.bar = None
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]training"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("best {task.fields[best]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.bar.add_task("train", total=total, completed=start, loss="-", best="-")
            self.bar.start()

    def update(self, epoch: int, loss: float, best: float, elapsed: float, run_start: float):
        if self.bar is not None:
            self.bar.update(self.task, completed=epoch, loss=f"{loss:.4g}", best=f"{best:.4g}")
            return
        now = time.perf_counter()
        if now - self.last_print < 10 and epoch not in (self.start + 1, self.total):
            return
        self.last_print = now
        done = epoch - self.start
        rate = (now - run_start) / max(done, 1)
        eta = rate * (self.total - epoch)
        self.log(
            f"epoch {epoch}/{self.total}  loss {loss:.5g}  best {best:.5g}  "
            f"elapsed {elapsed:.0f}s  eta {eta:.0f}s"
        )

    def close(self):
        if self.bar is not None:
            self.bar.stop()


def _prepare_run(
    config: Config, out: Path, resume: bool
) -> tuple[Config, np.ndarray, list[dict[str, float]]]:
    """Validate the output folder and return (config, base data, earlier metrics)."""
    checkpoint = out / CHECKPOINT_FILE
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {out} exists and is not a folder")
    if resume:
        if not checkpoint.is_file():
            raise ValueError(f"nothing to resume: {checkpoint} does not exist")
        saved = load_config(out / CONFIG_FILE)
        wanted = config.replace("training", epochs=saved.training.epochs)
        if wanted.to_dict() != saved.to_dict():
            raise ValueError(
                f"the config differs from the one {out} was trained with "
                f"(only training.epochs may change on --resume); see {out / CONFIG_FILE}"
            )
        config = saved.replace("training", epochs=config.training.epochs)
        base = load_trajectory(out / DATA_FILE, what="saved training data")
        metrics = read_metrics(out / METRICS_FILE) if (out / METRICS_FILE).is_file() else []
        return config, base, metrics
    for name in (MODEL_FILE, CHECKPOINT_FILE):
        if (out / name).exists():
            raise ValueError(
                f"{out} already holds a training run ({name}); pass --resume to continue it "
                f"or choose another output folder"
            )
    return config, training_data(config), []  # base data (see TrainingData)


def train(
    config: Config | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    epochs: int | None = None,
    resume: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train an NCA with Algorithm 2 and write the results to ``out_dir``.

    Args:
        config: a ``Config`` or the path of a TOML config file.
        out_dir: output folder (created if needed). Without ``resume`` it must not already
            hold a run.
        epochs: total number of epochs, overriding ``training.epochs``.
        resume: continue the run saved in ``out_dir`` (its own saved config is used; only
            the number of epochs may change).
        progress: show a rich progress bar (default: when stdout is a terminal); otherwise
            plain lines at most every 10 seconds.
        log: where plain messages go.

    Returns:
        A ``TrainResult`` with the best model and the metrics.

    Raises:
        ValueError: bad config, data or output folder (nothing is written).
        TrainingDiverged: the loss became non-finite (the best model so far stays saved).
    """
    if not isinstance(config, Config):
        config = load_config(config)
    if epochs is not None:
        config = config.replace("training", epochs=epochs)
    out = Path(out_dir)
    config, base, metrics = _prepare_run(config, out, resume)
    data = TrainingData(config, base)
    y = data.trajectories(1)
    _check_data(config, y)
    training = config.training

    key = jax.random.key(training.seed)
    k_model, k_train = jax.random.split(key)
    model = build_model(config, y.shape[-1], k_model)
    optimizer = make_optimizer(training)
    params = eqx.filter(model, eqx.is_inexact_array)
    state = _State(
        model=model,
        opt_state=optimizer.init(params),
        states=initial_states(model, y),
        best_model=model,
        key_data=jax.random.key_data(k_train),
    )
    if resume:
        header = read_header(out / CHECKPOINT_FILE, kind="training_state")
        loaded = load_tree(out / CHECKPOINT_FILE, state.tree())
        state = _State(
            *loaded,
            **{k: header[k] for k in ("epoch", "best_loss", "best_epoch")},
            elapsed=header["elapsed"],
        )
        metrics = [row for row in metrics if row["epoch"] <= state.epoch]
        write_text(out / CONFIG_FILE, config.to_toml())  # the new number of epochs
        log(f"resuming {out} at epoch {state.epoch} of {training.epochs}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        save_array(out / DATA_FILE, base)
        write_text(out / CONFIG_FILE, config.to_toml())

    draw = data.draw(max(state.epoch, 1))
    y_device = jnp.asarray(data.trajectories(max(state.epoch, 1)))
    epoch_fn = make_epoch(training, optimizer, data.augment_noise)
    schedule = learning_rate_schedule(training)
    base_key = jax.random.wrap_key_data(state.key_data)
    bar = _Progress(training.epochs, state.epoch, progress, log)
    run_start = time.perf_counter()
    elapsed_at_start = state.elapsed
    # After a resume model.eqx is rewritten from the checkpoint at the first save, so that
    # the two files always describe the same run.
    saved_best = None if resume else state.best_epoch

    def save_all(current: _State) -> None:
        """Save metrics, then the checkpoint, then the best model (each file atomically).

        In this order a crash at any point leaves files that agree: metrics may run ahead
        of the checkpoint (a resume drops the extra rows), and model.eqx is never newer
        than the checkpoint it came from.
        """
        nonlocal saved_best
        rows = [m for m in metrics if m["epoch"] <= current.epoch]
        _write_metrics(out / METRICS_FILE, rows)
        if rows:
            viz.loss_figure(
                [m["epoch"] for m in rows], [m["loss"] for m in rows], out / LOSS_FIGURE
            )
        save_tree(
            out / CHECKPOINT_FILE,
            current.tree(),
            {
                "kind": "training_state",
                "epoch": current.epoch,
                "best_loss": current.best_loss,
                "best_epoch": current.best_epoch,
                "elapsed": current.elapsed,
                "hyperparameters": current.model.hyperparameters(),
            },
        )
        save_model(out / FINAL_FILE, current.model, epoch=current.epoch)
        if current.best_epoch != saved_best or not (out / MODEL_FILE).exists():
            save_model(
                out / MODEL_FILE,
                current.best_model,
                epoch=current.best_epoch,
                loss=current.best_loss,
            )
            saved_best = current.best_epoch

    try:
        while state.epoch < training.epochs:
            epoch = state.epoch + 1
            if data.draw(epoch) != draw:
                # new random copies of the data: every trajectory restarts from them
                draw = data.draw(epoch)
                y_device = jnp.asarray(data.trajectories(epoch))
                state = dataclasses.replace(state, states=initial_states(state.model, y_device))
            result = epoch_fn(
                state.model,
                state.opt_state,
                state.states,
                y_device,
                jax.random.fold_in(base_key, epoch),
            )
            loss = float(result.loss)
            reinitialised_loss = float(result.reinitialised_loss)
            elapsed = elapsed_at_start + time.perf_counter() - run_start
            if not (math.isfinite(loss) and math.isfinite(reinitialised_loss)):
                save_all(state)  # the last finite state, and the best model so far
                raise TrainingDiverged(
                    f"training stopped at epoch {epoch}: the loss became {loss}. The best model "
                    f"(epoch {state.best_epoch}, loss {state.best_loss:.5g}) is kept in "
                    f"{out / MODEL_FILE}; try a lower training.learning_rate"
                )
            metrics.append(
                {
                    "epoch": epoch,
                    "loss": loss,
                    "reinitialised_loss": reinitialised_loss,
                    "gradient_norm": float(result.gradient_norm),
                    "learning_rate": float(schedule(epoch - 1)),
                    "elapsed_seconds": elapsed,
                }
            )
            best = (
                # the loss was measured with the parameters before this epoch's update
                dict(best_model=state.model, best_loss=loss, best_epoch=epoch)
                if loss < state.best_loss
                else {}
            )
            # one rebinding, so an interrupt never sees a half-updated state
            state = dataclasses.replace(
                state,
                model=result.model,
                opt_state=result.opt_state,
                states=result.states,
                epoch=epoch,
                elapsed=elapsed,
                **best,
            )
            bar.update(epoch, loss, state.best_loss, elapsed, run_start)
            if epoch % training.checkpoint_every == 0 or epoch == training.epochs:
                save_all(state)
    except KeyboardInterrupt:
        bar.close()
        save_all(state)
        log(f"interrupted at epoch {state.epoch}; the checkpoint is saved: resume with --resume")
        raise
    finally:
        bar.close()
    if training.epochs == 0 or not (out / MODEL_FILE).exists():
        save_all(state)
    if state.best_epoch == 1 and state.epoch > 1:
        log(
            f"warning: the training loss never fell below its value at epoch 1, so "
            f"{out / MODEL_FILE} holds the untrained model; train longer (the propagated "
            f"trajectories can take many epochs to settle) or use {out / FINAL_FILE}"
        )
    return TrainResult(
        out_dir=out,
        model=state.best_model,
        best_loss=state.best_loss,
        best_epoch=state.best_epoch,
        epochs=state.epoch,
        metrics=metrics,
        final_model=state.model,
    )
