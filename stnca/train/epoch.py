"""One epoch of every run on the host side: the update, the free rollouts that score it,
each run's metrics row and model selection, a run that diverges; then progress,
checkpoints, an interrupt and the results."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .run_folder import (
    FINAL_FILE,
    MODEL_FILE,
    replacing,
)
from .run_state import (
    Device,
    Run,
    RunState,
    Snapshot,
    TrainingDiverged,
    TrainResult,
    is_better,
)
from .session import _EpochFunctions, _Session


class _Clock(NamedTuple):
    """The loop's per-run inputs that are not part of the snapshot."""

    base_key: jax.Array
    schedule: Callable
    start: float


def _epoch(
    session: _Session,
    functions: _EpochFunctions,
    snapshot: Snapshot,
    starts: jax.Array,
    y_device: jax.Array,
    clock: _Clock,
    raise_diverged: bool,
) -> tuple[Snapshot, list[float]]:
    """Advance every run one epoch from ``starts``: the update, the free rollouts that
    score it, then each run's metrics row and model selection. Returns the new snapshot
    (the caller rebinds it at once) and the epoch's losses."""
    training, lanes = session.training, session.lanes
    epoch, device = snapshot.epoch + 1, snapshot.device
    epoch_key = functions.fold_in(clock.base_key, epoch)
    if training.restart_every and epoch > 1 and (epoch - 1) % training.restart_every == 0:
        starts = functions.redraw(
            device.model, y_device, training.restart_hidden_noise, functions.fold_in(epoch_key, 1)
        )
    lowest = lanes.stack([jnp.asarray(state.lowest_loss, jnp.float32) for state in snapshot.runs])
    result = functions.step(device.model, device.opt_state, starts, y_device, epoch_key, lowest)
    losses = lanes.floats(result.loss)
    values = _EpochValues(
        losses,
        lanes.floats(result.reinitialised_loss),
        lanes.floats(result.gradient_norm),
        lanes.floats(result.propagated),
        time.perf_counter() - clock.start,
    )
    finite = [
        all(map(math.isfinite, v))
        for v in zip(values.loss, values.reinitialised_loss, values.gradient_norm, strict=True)
    ]
    validate = _to_validate(training, epoch, finite, snapshot.runs)
    scores = [math.nan] * lanes.count
    if any(validate):
        # the models after this epoch's updates (or their weights' average), from the
        # trajectories' first frames
        scores = lanes.floats(
            functions.score_all(
                _candidates(result), session.scored, training.steps_between_frames, training.loss
            )
        )
    updated = []
    for i, (run, state) in enumerate(zip(session.runs, snapshot.runs, strict=True)):
        if state.diverged is not None:
            updated.append(state)
        elif not finite[i]:
            updated.append(
                _stop(session, run, state, lanes.lane(device, i), epoch, values, i, raise_diverged)
            )
        else:
            rollout_loss = scores[i] if validate[i] else math.nan
            updated.append(
                _record(session, run, state, i, epoch, values, rollout_loss, result, device, clock)
            )
    new = Device(result.model, result.opt_state, result.states)
    return Snapshot(epoch, new, tuple(updated)), losses


def _candidates(result):
    """The models that free rollouts score: the updated ones, or with
    ``training.weight_average`` their weights' moving average."""
    return result.model if result.average is None else result.average


def _to_validate(training, epoch: int, finite: list[bool], states) -> list[bool]:
    """Which runs score their free rollouts this epoch: on the grid of validate_every (so
    that an extended, resumed run scores the same epochs as an uninterrupted one), and at
    the end if nothing was chosen yet."""
    return [
        training.select_by == "rollout"
        and ok
        and state.diverged is None
        and (
            epoch % training.validate_every == 0
            or (epoch == training.epochs and state.best_epoch == 0)
        )
        for ok, state in zip(finite, states, strict=True)
    ]


def _record(session, run, state, i, epoch, values, rollout_loss, result, device, clock):
    """A finite epoch of run ``i``: its metrics row (and TensorBoard), the model selection;
    returns its new state."""
    training, lanes = session.training, session.lanes
    row = _row(epoch, values, i, rollout_loss, run, clock.schedule, training)
    run.metrics.append(row)
    if run.board is not None:
        run.board.scalars(epoch, row)
    if training.select_by == "rollout":
        # scored after the update: the candidate is the updated model (or its average)
        candidates, score = _candidates(result), rollout_loss
    else:
        # measured with the parameters before this epoch's update
        candidates = device.model
        score = row["loss"] if training.select_by == "loss" else row["reinitialised_loss"]
    best = (
        dict(best_model=lanes.lane(candidates, i), best_loss=score, best_epoch=epoch)
        if is_better(score, state, training, epoch)
        else {}
    )
    if not math.isnan(score):
        best["previous_score"] = score
    return dataclasses.replace(
        state,
        epoch=epoch,
        elapsed=run.elapsed_at_start + values.elapsed,
        lowest_loss=min(state.lowest_loss, values.loss[i]),
        **best,
    )


class _EpochValues(NamedTuple):
    """An epoch's numbers for every run (lists over the runs), and the seconds since start."""

    loss: list[float]
    reinitialised_loss: list[float]
    gradient_norm: list[float]
    propagated: list[float]
    elapsed: float


def _row(epoch, values: _EpochValues, i: int, rollout_loss, run: Run, schedule, training):
    """Run ``i``'s metrics row of ``epoch``."""
    return {
        "epoch": epoch,
        "loss": values.loss[i],
        "reinitialised_loss": values.reinitialised_loss[i],
        "rollout_loss": rollout_loss,
        "gradient_norm": values.gradient_norm[i],
        # at the epoch's first update
        "learning_rate": float(schedule((epoch - 1) * training.updates_per_epoch)),
        "propagated": int(bool(values.propagated[i])),
        "elapsed_seconds": run.elapsed_at_start + values.elapsed,
    }


def _stop(session, run, state, last, epoch, values, i, raise_diverged) -> RunState:
    """A run whose loss became non-finite: save its last finite state (with the chosen
    model), then raise ``TrainingDiverged`` or log and stop it while the others go on."""
    session.save(run, state, last, session.training, figure=True)
    message = (
        f"training stopped at epoch {epoch}: the loss became {values.loss[i]} "
        f"(gradient norm {values.gradient_norm[i]}). The chosen model (epoch "
        f"{state.best_epoch}) is kept in {run.out / MODEL_FILE}; try a lower "
        "training.learning_rate"
    )
    if raise_diverged:
        raise TrainingDiverged(message)
    session.log(f"seed {run.config.training.seed}: {message}")
    return dataclasses.replace(state, diverged=message, final_model=last.model)


def _after_epoch(session: _Session, snapshot: Snapshot, losses, bar, start: float) -> None:
    """Report progress; write TensorBoard images and checkpoints on their epochs."""
    training, lanes, epoch = session.training, session.lanes, snapshot.epoch
    active = [i for i, state in enumerate(snapshot.runs) if state.diverged is None]
    if active:
        bar.update(
            epoch,
            min(losses[i] for i in active),
            min(snapshot.runs[i].best_loss for i in active),
            snapshot.runs[active[0]].elapsed,
            start,
        )
    for i in active:
        run = session.runs[i]
        if run.board is not None and (
            epoch % training.tensorboard_every == 0 or epoch == training.epochs
        ):
            run.board.image(epoch, lanes.lane(snapshot.device.model, i))
        if epoch % training.checkpoint_every == 0 or epoch == training.epochs:
            session.save(run, snapshot.runs[i], lanes.lane(snapshot.device, i), training)


def _interrupted(session: _Session, snapshot: Snapshot) -> None:
    """Ctrl-C: checkpoint every run where it stands (a run still replacing another gives
    the other back instead) and say how to go on."""
    for i, (run, state) in enumerate(zip(session.runs, snapshot.runs, strict=True)):
        if state.diverged is None and not replacing(run.out):
            lane = session.lanes.lane(snapshot.device, i)
            session.save(run, state, lane, session.training, figure=True)
    if any(replacing(run.out) for run in session.runs):
        session.log(f"interrupted at epoch {snapshot.epoch}, before the new run's first checkpoint")
    else:
        saved = "the checkpoint is" if session.lanes.count == 1 else "the checkpoints are"
        session.log(
            f"interrupted at epoch {snapshot.epoch}; {saved} saved (train with resume=True)"
        )


def _results(session: _Session, snapshot: Snapshot) -> list[TrainResult]:
    """Save what the last epoch did not, warn when nothing qualified, and return each run's
    result."""
    training, lanes = session.training, session.lanes
    results = []
    for i, (run, state) in enumerate(zip(session.runs, snapshot.runs, strict=True)):
        final_model = state.final_model
        if final_model is None:
            final_model = lanes.lane(snapshot.device.model, i)
        if state.diverged is None:
            if training.epochs == 0 or not (run.out / MODEL_FILE).exists() or replacing(run.out):
                session.save(run, state, lanes.lane(snapshot.device, i), training, figure=True)
            if state.best_epoch == 0 and state.epoch > 0:
                session.log(
                    f"warning: no epoch qualified as the chosen model, so {run.out / MODEL_FILE} "
                    f"holds the untrained model; train longer or use {run.out / FINAL_FILE}"
                )
        results.append(
            TrainResult(
                out_dir=run.out,
                model=state.best_model,
                best_loss=state.best_loss,
                best_epoch=state.best_epoch,
                epochs=state.epoch,
                metrics=run.metrics,
                final_model=final_model,
                selected_by=training.select_by,
                config=run.config,
                data=session.base,
                diverged=state.diverged,
            )
        )
    return results
