"""The training driver: data, model, epochs, checkpoints, resume, metrics, progress.

What a run writes in its folder, and how the folder is checked first, is in
``stnca.train.run_folder``; the progress display in ``stnca.train.progress``.

``train_runs`` trains K runs of one configuration that differ only in ``training.seed`` (the
model's initial weights and the training PRNG stream) as one program: their device state
(model, optimiser state, propagated start states, keys) is stacked on a leading run axis and
one jitted, ``eqx.filter_vmap``-ped epoch function advances them all, with the data shared;
what happens on the host (model selection, metrics rows, saves) is done for each run in turn.
``train`` is the case K = 1, where nothing is stacked and the epoch function is called as it
is; ``stnca.train.seeds.train_seeds`` is the front end for K seeds.

Devices and processes (docs/concepts/scale.md): ``training.devices`` splits each
mini-batch over several devices (``stnca.train.sharding``); the device arrays are then placed
on all of them, and the epoch's results come back replicated. In a distributed run
(``stnca.train.distributed``) every process trains the same way, and only process 0 writes
the run folders and reports.

Every file is written atomically, in an order that keeps the files consistent (see
``_save``), so an interruption at any moment leaves the previous version of each file
intact. Resuming replays exactly: per-epoch randomness is derived from the saved key and the
epoch number, so a resumed run ends with the same weights, bit for bit, as an uninterrupted
one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._files import write_text
from .._resources import check_memory
from ..conditions import Conditions, fit_conditions
from ..data.io import save_array
from ..model import NCA, parameter_count
from ..scaling import Scaling, fit_scaling
from .algorithm import (
    check_minibatches,
    initial_states,
    learning_rate_schedule,
    make_epoch,
    make_optimizer,
    redrawn_states,
    rollout_score,
)
from .config import Config, TrainingConfig, load_config
from .dataset import TrainingData, observable_channels
from .distributed import barrier, is_primary
from .lanes import BATCHED, Lanes
from .progress import Progress
from .run_folder import (
    CONFIG_FILE,
    DATA_FILE,
    FINAL_FILE,
    MODEL_FILE,
    VALIDATION_FILE,
    clean_temporaries,
    prepare_runs,
    replacing,
    restore_replaced,
    start_fresh,
)
from .run_state import (
    Device,
    Run,
    RunState,
    Snapshot,
    is_better,
    no_save,
    read_checkpoint,
    save_run,
    untrained_row,
)
from .sharding import plan

if TYPE_CHECKING:
    pass


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


def build_model(
    config: Config,
    observable_channels: int,
    key,
    scaling: Scaling | None = None,
    conditions: Conditions | None = None,
) -> NCA:
    """The untrained NCA described by ``config.model`` for data with that many observable
    channels; ``conditions``: the normalisation of ``config.model.conditions`` (default:
    the identity)."""
    settings = dataclasses.asdict(config.model)
    names = settings.pop("conditions")
    if names and conditions is None:
        conditions = Conditions(names, (0.0,) * len(names), (1.0,) * len(names))
    return NCA(observable_channels, key=key, scaling=scaling, conditions=conditions, **settings)


def fit_units(config: Config, base: np.ndarray) -> tuple[int, Scaling | None, Conditions | None]:
    """The observable channels of data ``base`` (..., C), the scaling of the observable
    channels (``data.scale``) and the normalisation of the conditions (the trailing
    channels): the units a model trains in."""
    names = config.model.conditions
    observable = base.shape[-1] - len(names)
    scaling = fit_scaling(base[..., :observable], getattr(config.data, "scale", "none"))
    conditions = fit_conditions(names, base[..., observable:]) if names else None
    return observable, scaling, conditions


def check_training_memory(config: Config, shape: tuple[int, ...], runs: int = 1) -> None:
    """Refuse runs whose weights and rollouts cannot fit, before allocating them: per run,
    the parameters with the optimiser's moments, the propagated states, and one mini-batch's
    rollout kept for the backward pass (t states per transition, one step's hidden layer)."""
    trajectories, frames, height, width, data_channels = shape
    model = config.model
    conditions = len(model.conditions)
    observable = data_channels - conditions
    channels = data_channels + model.hidden_channels
    hidden = model.hidden_width or 4 * (observable + model.hidden_channels)
    parameters = parameter_count(
        observable, model.hidden_channels, len(model.kernels), hidden, model.hidden_bias, conditions
    )
    transitions = trajectories * (frames - 1)
    # what is rolled out at once: a mini-batch, or a chunk of one
    batch = config.training.rollout_chunk or -(-transitions // config.training.minibatches)
    cells = height * width
    floats = (
        4 * parameters
        + transitions * cells * channels * 2
        + batch * cells * (channels * (config.training.steps_between_frames + 2) + hidden)
    )
    what = f"training this config ({parameters:_} weights, {cells:_} cells)"
    check_memory(runs * floats, what if runs == 1 else f"{what} for {runs} seeds at once")


def _check_data(config: Config, y: np.ndarray) -> None:
    repeats = y.shape[1] >= 3 and bool(np.array_equal(y[:, -1], y[:, -2]))
    check_data_shape(config, y.shape[0], y.shape[1], repeats)
    names = config.model.conditions
    if names:
        fields = y[..., observable_channels(config, y.shape[-1]) :]
        if not np.array_equal(fields, np.broadcast_to(fields[:, :1], fields.shape)):
            raise ValueError(
                f"the data's condition channels (the last {len(names)}: {', '.join(names)}) "
                f"change in time; a condition must be the same in every frame of a trajectory"
            )


def check_data_shape(config: Config, trajectories: int, frames: int, repeats: bool) -> None:
    """Refuse training settings that do not fit data of ``trajectories`` x ``frames`` frames
    (``repeats``: whether the last frame repeats), before any training."""
    r, training = trajectories, config.training
    check_minibatches(r, frames - 1, training.minibatches, "training.minibatches")
    batch = r * (frames - 1) // training.minibatches
    if training.rollout_chunk and batch % training.rollout_chunk:
        raise ValueError(
            f"training.rollout_chunk ({training.rollout_chunk}) must divide the mini-batch size "
            f"M x R / minibatches = {batch}"
        )
    if training.hold_final and not repeats:
        raise ValueError(
            "training.hold_final needs data whose last frame repeats (e.g. images with "
            "data.final_repeats >= 2)"
        )
    if training.reinitialised_batches > r:
        raise ValueError(
            f"training.reinitialised_batches ({training.reinitialised_batches}) exceeds the "
            f"number of trajectories R = {r}"
        )


def _redrawn(model: NCA, y, hidden_noise: float, key) -> jax.Array:
    return redrawn_states(model, y, hidden_noise, key=key)


def train_runs(
    configs: Sequence[Config],
    outs: Sequence[Path],
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    raise_diverged: bool = False,
) -> list[TrainResult]:
    """Train K runs of one configuration that differ only in ``training.seed``, run ``i``
    with ``configs[i]`` into ``outs[i]``, as one program (see the module's docstring).

    Each folder ends as ``train(configs[i], outs[i])`` leaves it. A run whose loss becomes
    non-finite stops there, its last finite state checkpointed and its chosen model kept;
    then ``TrainingDiverged`` is raised if ``raise_diverged`` (``train``), else the message
    is logged, the run's result says why in ``diverged`` and the other runs go on.

    Args:
        configs: one config per run, equal but for ``training.seed``.
        outs: one folder per run.
        resume: continue every run from its checkpoint; all must be at the same epoch.
        overwrite, progress, log: as for ``train``.
        raise_diverged: raise ``TrainingDiverged`` when a run's loss becomes non-finite.

    Raises:
        ValueError: bad configs, data or folders (nothing is written).
    """
    outs = [Path(out) for out in outs]
    primary = is_primary()
    for out in outs if primary else []:  # a killed overwrite's set-aside run comes back
        if restore_replaced(out):
            log(f"{out}: restored the run that an interrupted overwrite had set aside")
    try:
        return _train_runs(
            configs,
            outs,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
            log=log,
            raise_diverged=raise_diverged,
        )
    except BaseException:
        # interrupted (or failed) before the new run's first checkpoint: the old run is back
        for out in outs if primary else []:
            if restore_replaced(out):
                log(f"{out}: the new run had no checkpoint yet, so the overwritten run is back")
        raise


@dataclasses.dataclass
class _Session:
    """What one call of ``train_runs`` sets up once: the runs, their data and units, the
    devices' plan and the functions every epoch calls."""

    training: TrainingConfig
    lanes: Lanes
    runs: list[Run]
    data: TrainingData
    base: np.ndarray
    held: np.ndarray | None
    encoder: NCA
    """Any run's model: every run's scaling is the same (fitted to the same data)."""
    parallel: Any
    scored: jax.Array
    """The free rollouts' targets for model selection (model units, placed)."""
    score_fn: Callable
    score_all: Callable
    optimizer: Any
    save: Callable
    log: Callable[[str], None]

    def place(self, tree):
        return tree if self.parallel is None else self.parallel.place(tree)

    def trajectories(self, epoch: int) -> jax.Array:
        """Epoch ``epoch``'s training trajectories, in model units, on the devices."""
        return self.place(jnp.asarray(self.encoder.encode(self.data.trajectories(epoch))))


class _EpochFunctions(NamedTuple):
    """The compiled functions of an epoch, mapped over the runs (and wrapped for devices)."""

    step: Callable
    fold_in: Callable
    restarted: Callable
    redraw: Callable
    score_all: Callable


def _set_up(
    configs, outs, resume: bool, overwrite: bool, log
) -> tuple[_Session, list[NCA], np.ndarray]:
    """Check the runs' folders, data and memory; build the untrained models; return them
    with epoch 1's trajectories (nothing is written yet)."""
    lanes = Lanes(len(configs))
    configs, base, held, metrics = prepare_runs(configs, outs, resume, overwrite)
    config = configs[0]
    training = config.training
    data = TrainingData(config, base)
    first = data.trajectories(1)  # epoch 1's trajectories (for images: copies made once)
    _check_data(config, first)
    # the model trains in the units of the scaled data; it keeps the map for its users
    observable, scaling, conditions = fit_units(config, base)
    check_training_memory(config, first.shape, lanes.count)
    transitions = first.shape[0] * (first.shape[1] - 1)
    # the devices split what is rolled out at once: a mini-batch, or a chunk of one
    chunked = bool(training.rollout_chunk)
    parallel = plan(
        training.devices,
        training.rollout_chunk or transitions // training.minibatches,
        log=log,
        what="rollout chunk" if chunked else "mini-batch",
    )
    runs: list[Run] = []
    models: list[NCA] = []
    for config_i, out, rows in zip(configs, outs, metrics, strict=True):
        k_model, k_train = jax.random.split(jax.random.key(config_i.training.seed))
        models.append(build_model(config_i, observable, k_model, scaling, conditions))
        runs.append(Run(out, config_i, jax.random.key_data(k_train), rows))
    encoder = models[0]
    # free rollouts for model selection: held-back trajectories, else the training ones
    # (for images: the untransformed sequence)
    scored = jnp.asarray(encoder.encode(base if held is None else held))
    if training.hold_final:
        # a final frame that must hold: score the rollout to twice the horizon against it
        scored = jnp.concatenate([scored] + [scored[:, -1:]] * (scored.shape[1] - 1), axis=1)
    score_fn = eqx.filter_jit(rollout_score)  # compiled once, for row 0 and every validation
    score_all = lanes.map(rollout_score, (BATCHED, None, None, None), jit=True)
    if not lanes.stacked:
        score_all = score_fn  # the same compiled function as row 0's
    session = _Session(
        training,
        lanes,
        runs,
        data,
        base,
        held,
        encoder,
        parallel,
        scored,
        score_fn,
        score_all,
        make_optimizer(training),
        save_run if is_primary() else no_save,
        log,
    )
    session.scored = session.place(scored)
    return session, models, first


def _start(session: _Session, models: list[NCA], first: np.ndarray, resume: bool) -> Snapshot:
    """The runs' state at their first epoch: fresh (the run folders started, metrics row 0
    measured), or read back from their checkpoints."""
    training, runs, primary = session.training, session.runs, is_primary()
    y_device = jnp.asarray(session.encoder.encode(first))
    optimizer = session.optimizer
    devices = [
        Device(
            model,
            optimizer.init(eqx.filter(model, eqx.is_inexact_array)),
            initial_states(model, y_device),
        )
        for model in models
    ]
    states = [RunState(best_model=model) for model in models]
    if resume:  # read every checkpoint before writing anything
        for i, (run, model) in enumerate(zip(runs, models, strict=True)):
            devices[i], states[i] = read_checkpoint(run, devices[i], model, training)
        if len({state.epoch for state in states}) > 1:
            at = ", ".join(f"{r.out} at {s.epoch}" for r, s in zip(runs, states, strict=True))
            raise ValueError(f"runs resumed together must be at the same epoch: {at}")
    # every process has checked and read the folders before process 0 writes in them
    barrier("stnca.train: run folders read")
    for run, state, model in zip(runs, states, models, strict=True):
        if resume:
            run.metrics = [row for row in run.metrics if row["epoch"] <= state.epoch]
            if primary:
                write_text(run.out / CONFIG_FILE, run.config.to_toml())  # the new epochs
            session.log(f"resuming {run.out} at epoch {state.epoch} of {training.epochs}")
        else:
            if primary:
                start_fresh(run.out)
                save_array(run.out / DATA_FILE, session.base)
                if session.held is not None:
                    save_array(run.out / VALIDATION_FILE, session.held)
                write_text(run.out / CONFIG_FILE, run.config.to_toml())
            row = untrained_row(model, y_device, session.scored, training, session.score_fn)
            run.metrics = [row]
        # files a killed process was writing (atomically) when it died
        for stale in clean_temporaries(run.out) if primary else []:
            session.log(f"removed {stale.name}, left by an interrupted write")
        # After a resume model.eqx is rewritten from the checkpoint at the first save, so
        # that the two files always describe the same run.
        run.saved_best = None if resume else state.best_epoch
    return Snapshot(states[0].epoch, session.lanes.stack(devices), tuple(states))


def _epoch_functions(session: _Session) -> _EpochFunctions:
    lanes, parallel = session.lanes, session.parallel
    step = lanes.map(
        make_epoch(session.training, session.optimizer, session.data.augment_noise, parallel),
        (BATCHED, BATCHED, BATCHED, None, BATCHED, BATCHED),
        jit=True,
    )
    fold_in = lanes.map(jax.random.fold_in, (BATCHED, None))  # eager: the epoch varies
    restarted = lanes.map(initial_states, (BATCHED, None), jit=True)
    redraw = lanes.map(_redrawn, (BATCHED, None, None, BATCHED), jit=True)
    score_all = session.score_all
    if parallel is not None:  # the arrays of every call on all the devices, replicated
        step, restarted, redraw, score_all = map(
            parallel.wrap, (step, restarted, redraw, score_all)
        )
    return _EpochFunctions(step, fold_in, restarted, redraw, score_all)


def _open_boards(session: _Session, snapshot: Snapshot, resume: bool) -> None:
    """A TensorBoard writer per run (``training.tensorboard``; process 0 only), with row 0."""
    if not (session.training.tensorboard and is_primary()):
        return
    from .tensorboard import TensorBoardWriter

    for i, run in enumerate(session.runs):
        run.board = TensorBoardWriter(
            run.out,
            session.base[0],
            session.training.steps_between_frames,
            reinitialised=session.training.reinitialised_batches > 0,
            start=snapshot.epoch + 1 if resume else 0,
        )
        if not resume:
            run.board.scalars(0, run.metrics[0])
            run.board.image(0, session.lanes.lane(snapshot.device.model, i))


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
    # on the grid of validate_every (so that an extended, resumed run scores the same
    # epochs as an uninterrupted one), and at the end if nothing was chosen yet
    validate = [
        training.select_by == "rollout"
        and ok
        and state.diverged is None
        and (
            epoch % training.validate_every == 0
            or (epoch == training.epochs and state.best_epoch == 0)
        )
        for ok, state in zip(finite, snapshot.runs, strict=True)
    ]
    scores = [math.nan] * lanes.count
    if any(validate):
        # the models after this epoch's updates, from the trajectories' first frames
        scores = lanes.floats(
            functions.score_all(
                result.model, session.scored, training.steps_between_frames, training.loss
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
            row = _row(epoch, values, i, rollout_loss, run, clock.schedule, training)
            run.metrics.append(row)
            if run.board is not None:
                run.board.scalars(epoch, row)
            if training.select_by == "rollout":
                # scored after the update: the candidate is the updated model
                candidates, score = result.model, rollout_loss
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
            updated.append(
                dataclasses.replace(
                    state,
                    epoch=epoch,
                    elapsed=run.elapsed_at_start + values.elapsed,
                    lowest_loss=min(state.lowest_loss, losses[i]),
                    **best,
                )
            )
    new = Device(result.model, result.opt_state, result.states)
    return Snapshot(epoch, new, tuple(updated)), losses


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
    session.save(run, state, last, session.training)
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
            session.save(run, state, session.lanes.lane(snapshot.device, i), session.training)
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
                session.save(run, state, lanes.lane(snapshot.device, i), training)
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


def _train_runs(
    configs: Sequence[Config],
    outs: Sequence[Path],
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    raise_diverged: bool = False,
) -> list[TrainResult]:
    """The body of ``train_runs`` (which restores an overwritten run on failure): set up,
    start or resume, the epochs, then the results."""
    if not is_primary():  # in a distributed run only process 0 writes and reports
        log, progress = (lambda _: None), False
    session, models, first = _set_up(configs, outs, resume, overwrite, log)
    training, lanes = session.training, session.lanes
    snapshot = _start(session, models, first, resume)
    draw = session.data.draw(max(snapshot.epoch, 1))
    y_device = session.trajectories(max(snapshot.epoch, 1))
    functions = _epoch_functions(session)
    base_key = jax.random.wrap_key_data(lanes.stack([run.key_data for run in session.runs]))
    bar = Progress(training.epochs, snapshot.epoch, progress, log, runs=lanes.count)
    clock = _Clock(base_key, learning_rate_schedule(training), time.perf_counter())
    _open_boards(session, snapshot, resume)
    try:
        while snapshot.epoch < training.epochs and any(s.diverged is None for s in snapshot.runs):
            starts = snapshot.device.states
            if session.data.draw(snapshot.epoch + 1) != draw:
                # new random copies of the data: every trajectory restarts from them
                draw = session.data.draw(snapshot.epoch + 1)
                y_device = session.trajectories(snapshot.epoch + 1)
                starts = functions.restarted(snapshot.device.model, y_device)
            # one rebinding, so an interrupt never sees a half-updated state
            snapshot, losses = _epoch(
                session, functions, snapshot, starts, y_device, clock, raise_diverged
            )
            _after_epoch(session, snapshot, losses, bar, clock.start)
    except KeyboardInterrupt:
        bar.close()
        _interrupted(session, snapshot)
        raise
    finally:
        bar.close()
        for run in session.runs:
            if run.board is not None:
                run.board.close()
    return _results(session, snapshot)


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
    (result,) = train_runs(
        [config],
        [Path(out_dir)],
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        log=log,
        raise_diverged=True,
    )
    return result
