"""The training driver: data, model, epochs, checkpoints, resume, metrics, progress.

What a run writes in its folder, and how the folder is checked first, is in
``stnca.train.run_folder``; the progress display in ``stnca.train.progress``.

Every file is written atomically, in an order that keeps the files consistent (see
``save_all``), so an interruption at any moment leaves the previous version of each file
intact. Resuming replays exactly: per-epoch randomness is derived from the saved key and the
epoch number, so a resumed run ends with the same weights, bit for bit, as an uninterrupted
one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import viz
from .._files import write_text
from .._resources import check_memory
from ..data.io import save_array
from ..model import NCA, parameter_count
from ..scaling import Scaling, fit_scaling
from ..serialization import header_float, load_tree, read_header, save_model, save_tree
from .algorithm import (
    check_minibatches,
    initial_states,
    learning_rate_schedule,
    make_epoch,
    make_optimizer,
    redrawn_states,
    rollout_score,
    transition_losses,
)
from .config import Config, load_config
from .dataset import TrainingData
from .progress import Progress
from .run_folder import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    DATA_FILE,
    FINAL_FILE,
    LOSS_FIGURE,
    METRICS_FILE,
    MODEL_FILE,
    VALIDATION_FILE,
    clean_temporaries,
    prepare_run,
    start_fresh,
    write_metrics,
)

if TYPE_CHECKING:
    from .tensorboard import TensorBoardWriter


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

    @property
    def lowest_loss(self) -> float:
        """The lowest training loss (all transitions) of any epoch."""
        return min((m["loss"] for m in self.metrics if m["epoch"] > 0), default=math.inf)

    @property
    def untrained(self) -> dict[str, float]:
        """The untrained model's row of the metrics (epoch 0)."""
        return self.metrics[0]


def build_model(
    config: Config, observable_channels: int, key, scaling: Scaling | None = None
) -> NCA:
    """The untrained NCA described by ``config.model`` for data with that many channels."""
    settings = dataclasses.asdict(config.model)
    return NCA(observable_channels, key=key, scaling=scaling, **settings)


def _check_memory(config: Config, shape: tuple[int, ...]) -> None:
    """Refuse a run whose weights and rollouts cannot fit, before allocating them: the
    parameters with the optimiser's moments, the propagated states, and one mini-batch's
    rollout kept for the backward pass (t states per transition, one step's hidden layer)."""
    trajectories, frames, height, width, observable = shape
    model = config.model
    channels = observable + model.hidden_channels
    hidden = model.hidden_width or 4 * channels
    parameters = parameter_count(
        observable, model.hidden_channels, len(model.kernels), hidden, model.hidden_bias
    )
    transitions = trajectories * (frames - 1)
    batch = -(-transitions // config.training.minibatches)
    cells = height * width
    floats = (
        4 * parameters
        + transitions * cells * channels * 2
        + batch * cells * (channels * (config.training.steps_between_frames + 2) + hidden)
    )
    check_memory(floats, f"training this config ({parameters:_} weights, {cells:_} cells)")


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
    lowest_loss: float = math.inf
    previous_score: float = math.inf

    def tree(self):
        return (self.model, self.opt_state, self.states, self.best_model, self.key_data)


def _check_data(config: Config, y: np.ndarray) -> None:
    r, frames = y.shape[:2]
    training = config.training
    check_minibatches(r, frames - 1, training.minibatches, "training.minibatches")
    if training.hold_final and not (frames >= 3 and np.array_equal(y[:, -1], y[:, -2])):
        raise ValueError(
            "training.hold_final needs data whose last frame repeats (e.g. images with "
            "data.final_repeats >= 2)"
        )
    if training.reinitialised_batches > r:
        raise ValueError(
            f"training.reinitialised_batches ({training.reinitialised_batches}) exceeds the "
            f"number of trajectories R = {r}"
        )


def _untrained_row(model: NCA, y, scored, training, score_fn) -> dict[str, float]:
    """Metrics row 0: the untrained model's losses (all transitions from the data, the
    re-initialised trajectories, and a free rollout), the reference every run is judged by."""
    t, loss = training.steps_between_frames, training.loss
    losses = eqx.filter_jit(transition_losses)(model, initial_states(model, y), y[:, 1:], t, loss)
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


def _is_better(score: float, state: _State, training, epoch: int) -> bool:
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


def train(
    config: Config | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    epochs: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
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
            the number of epochs may change, and not below the epochs already done).
        overwrite: start afresh in a folder that holds an earlier run's files, replacing
            them (without it such a folder is refused).
        progress: show a rich progress bar (default: when stdout is a terminal); otherwise
            plain lines at most every 10 seconds.
        log: where plain messages go.

    Returns:
        A ``TrainResult`` with the chosen model and the metrics.

    Raises:
        ValueError: bad config, data or output folder (nothing is written).
        TrainingDiverged: the loss became non-finite (the chosen model so far stays saved).
    """
    if not isinstance(config, Config):
        config = load_config(config)
    if epochs is not None:
        config = config.replace("training", epochs=epochs)
    out = Path(out_dir)
    if config.training.tensorboard:
        from .tensorboard import check_available

        check_available(out)  # before anything is written
    config, base, held, metrics = prepare_run(config, out, resume, overwrite)
    data = TrainingData(config, base)
    first = data.trajectories(1)  # epoch 1's trajectories (for images: copies made once)
    _check_data(config, first)
    training = config.training

    key = jax.random.key(training.seed)
    k_model, k_train = jax.random.split(key)
    # the model trains in the units of the scaled data; it keeps the map for its users
    scaling = fit_scaling(base, getattr(config.data, "scale", "none"))
    _check_memory(config, first.shape)
    model = build_model(config, base.shape[-1], k_model, scaling)

    def trajectories(epoch: int):
        return jnp.asarray(model.encode(data.trajectories(epoch)))

    # free rollouts for model selection: held-back trajectories, else the training ones
    # (for images: the untransformed sequence)
    scored = jnp.asarray(model.encode(base if held is None else held))
    if training.hold_final:
        # a final frame that must hold: score the rollout to twice the horizon against it
        scored = jnp.concatenate([scored] + [scored[:, -1:]] * (scored.shape[1] - 1), axis=1)
    score_fn = eqx.filter_jit(rollout_score)  # compiled once, for row 0 and every validation
    optimizer = make_optimizer(training)
    params = eqx.filter(model, eqx.is_inexact_array)
    y_device = jnp.asarray(model.encode(first))
    state = _State(
        model=model,
        opt_state=optimizer.init(params),
        states=initial_states(model, y_device),
        best_model=model,
        key_data=jax.random.key_data(k_train),
    )
    if resume:
        header = read_header(out / CHECKPOINT_FILE, kind="training_state")
        if training.epochs < header["epoch"]:
            raise ValueError(
                f"{out} is already at epoch {header['epoch']}: --epochs {training.epochs} would "
                f"not continue it (give at least {header['epoch']})"
            )
        model, opt_state, states, best_model, key_data = load_tree(
            out / CHECKPOINT_FILE, state.tree()
        )
        state = _State(
            model,
            opt_state,
            states,
            best_model,
            key_data,
            epoch=header["epoch"],
            best_epoch=header["best_epoch"],
            # non-finite values are stored as null; the last two are absent from
            # checkpoints written before they were tracked
            best_loss=header_float(header, "best_loss"),
            lowest_loss=header_float(header, "lowest_loss"),
            previous_score=header_float(header, "previous_score"),
            elapsed=header["elapsed"],
        )
        metrics = [row for row in metrics if row["epoch"] <= state.epoch]
        write_text(out / CONFIG_FILE, config.to_toml())  # the new number of epochs
        log(f"resuming {out} at epoch {state.epoch} of {training.epochs}")
    else:
        start_fresh(out)
        save_array(out / DATA_FILE, base)
        if held is not None:
            save_array(out / VALIDATION_FILE, held)
        write_text(out / CONFIG_FILE, config.to_toml())
        metrics = [_untrained_row(model, y_device, scored, training, score_fn)]
    # files a killed process was writing (atomically) when it died
    for stale in clean_temporaries(out):
        log(f"removed {stale.name}, left by an interrupted write")

    draw = data.draw(max(state.epoch, 1))
    y_device = trajectories(max(state.epoch, 1))
    epoch_fn = make_epoch(training, optimizer, data.augment_noise)
    schedule = learning_rate_schedule(training)  # of the optimiser's update count
    base_key = jax.random.wrap_key_data(state.key_data)
    bar = Progress(training.epochs, state.epoch, progress, log)
    run_start = time.perf_counter()
    elapsed_at_start = state.elapsed
    # After a resume model.eqx is rewritten from the checkpoint at the first save, so that
    # the two files always describe the same run.
    saved_best = None if resume else state.best_epoch

    def save_all(current: _State) -> None:
        """Save metrics, then the checkpoint, then the chosen model (each file atomically).

        In this order a crash at any point leaves files that agree: metrics may run ahead
        of the checkpoint (a resume drops the extra rows), and model.eqx is never newer
        than the checkpoint it came from.
        """
        nonlocal saved_best
        rows = [m for m in metrics if m["epoch"] <= current.epoch]
        write_metrics(out / METRICS_FILE, rows)
        if rows:
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
                chosen=current.best_epoch or None,
            )
        save_tree(
            out / CHECKPOINT_FILE,
            current.tree(),
            {
                "kind": "training_state",
                "epoch": current.epoch,
                "best_loss": current.best_loss,
                "best_epoch": current.best_epoch,
                "lowest_loss": current.lowest_loss,
                "previous_score": current.previous_score,
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
                selected_by=training.select_by,
            )
            saved_best = current.best_epoch
        if board is not None:
            board.flush()

    board: TensorBoardWriter | None = None
    if training.tensorboard:
        from .tensorboard import TensorBoardWriter

        board = TensorBoardWriter(
            out,
            base[0],
            training.steps_between_frames,
            reinitialised=training.reinitialised_batches > 0,
            start=state.epoch + 1 if resume else 0,
        )
    try:
        if board is not None and not resume:
            board.scalars(0, metrics[0])
            board.image(0, state.model)
        while state.epoch < training.epochs:
            epoch = state.epoch + 1
            states = state.states
            if data.draw(epoch) != draw:
                # new random copies of the data: every trajectory restarts from them
                draw = data.draw(epoch)
                y_device = trajectories(epoch)
                states = initial_states(state.model, y_device)
            if training.restart_every and epoch > 1 and (epoch - 1) % training.restart_every == 0:
                states = redrawn_states(
                    state.model,
                    y_device,
                    training.restart_hidden_noise,
                    key=jax.random.fold_in(jax.random.fold_in(base_key, epoch), 1),
                )
            result = epoch_fn(
                state.model,
                state.opt_state,
                states,
                y_device,
                jax.random.fold_in(base_key, epoch),
                jnp.asarray(state.lowest_loss, jnp.float32),
            )
            loss = float(result.loss)
            reinitialised_loss = float(result.reinitialised_loss)
            gradient_norm = float(result.gradient_norm)
            elapsed = elapsed_at_start + time.perf_counter() - run_start
            if not all(map(math.isfinite, (loss, reinitialised_loss, gradient_norm))):
                save_all(state)  # the last finite state, and the chosen model so far
                raise TrainingDiverged(
                    f"training stopped at epoch {epoch}: the loss became {loss} (gradient norm "
                    f"{gradient_norm}). The chosen model (epoch {state.best_epoch}) is kept in "
                    f"{out / MODEL_FILE}; try a lower training.learning_rate"
                )
            rollout_loss = math.nan
            # on the grid of validate_every (so that an extended, resumed run scores the
            # same epochs as an uninterrupted one), and at the end if nothing was chosen yet
            if training.select_by == "rollout" and (
                epoch % training.validate_every == 0
                or (epoch == training.epochs and state.best_epoch == 0)
            ):
                # the model after this epoch's updates, from the trajectories' first frames
                rollout_loss = float(
                    score_fn(result.model, scored, training.steps_between_frames, training.loss)
                )
            metrics.append(
                {
                    "epoch": epoch,
                    "loss": loss,
                    "reinitialised_loss": reinitialised_loss,
                    "rollout_loss": rollout_loss,
                    "gradient_norm": gradient_norm,
                    # at the epoch's first update
                    "learning_rate": float(schedule((epoch - 1) * training.updates_per_epoch)),
                    "propagated": int(bool(result.propagated)),
                    "elapsed_seconds": elapsed,
                }
            )
            if board is not None:
                board.scalars(epoch, metrics[-1])
            if training.select_by == "rollout":
                # scored after the update: the candidate is the updated model
                candidate, score = result.model, rollout_loss
            else:
                # measured with the parameters before this epoch's update
                candidate = state.model
                score = loss if training.select_by == "loss" else reinitialised_loss
            best = (
                dict(best_model=candidate, best_loss=score, best_epoch=epoch)
                if _is_better(score, state, training, epoch)
                else {}
            )
            if not math.isnan(score):
                best["previous_score"] = score
            # one rebinding, so an interrupt never sees a half-updated state
            state = dataclasses.replace(
                state,
                model=result.model,
                opt_state=result.opt_state,
                states=result.states,
                epoch=epoch,
                elapsed=elapsed,
                lowest_loss=min(state.lowest_loss, loss),
                **best,
            )
            bar.update(epoch, loss, state.best_loss, elapsed, run_start)
            if board is not None and (
                epoch % training.tensorboard_every == 0 or epoch == training.epochs
            ):
                board.image(epoch, state.model)
            if epoch % training.checkpoint_every == 0 or epoch == training.epochs:
                save_all(state)
    except KeyboardInterrupt:
        bar.close()
        save_all(state)
        log(f"interrupted at epoch {state.epoch}; the checkpoint is saved: resume with --resume")
        raise
    finally:
        bar.close()
        if board is not None:
            board.close()
    if training.epochs == 0 or not (out / MODEL_FILE).exists():
        save_all(state)
    if state.best_epoch == 0 and state.epoch > 0:
        log(
            f"warning: no epoch qualified as the chosen model, so {out / MODEL_FILE} holds the "
            f"untrained model; train longer or use {out / FINAL_FILE}"
        )
    return TrainResult(
        out_dir=out,
        model=state.best_model,
        best_loss=state.best_loss,
        best_epoch=state.best_epoch,
        epochs=state.epoch,
        metrics=metrics,
        final_model=state.model,
        selected_by=training.select_by,
        config=config,
        data=base,
    )
