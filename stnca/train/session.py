"""Setting up training runs: the data and its units, the memory check, the untrained models,
the devices' plan, the start (fresh, or resumed from the checkpoints) and the compiled
functions every epoch calls. ``stnca.train.loop`` drives the epochs over what this builds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

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
    make_epoch,
    make_optimizer,
    redrawn_states,
    rollout_score,
    shared_epoch,
)
from .config import Config, TrainingConfig
from .dataset import TrainingData, observable_channels
from .distributed import barrier, is_primary
from .lanes import BATCHED, Lanes
from .run_folder import (
    CONFIG_FILE,
    DATA_FILE,
    VALIDATION_FILE,
    clean_temporaries,
    prepare_runs,
    start_fresh,
)
from .run_state import (
    Device,
    Run,
    RunState,
    Snapshot,
    no_save,
    read_checkpoint,
    save_run,
    untrained_row,
)
from .sharding import plan


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
    trajectories, frames, *lattice, data_channels = shape
    model = config.model
    conditions = len(model.conditions)
    observable = data_channels - conditions
    channels = data_channels + model.hidden_channels
    hidden = model.hidden_width or 4 * (observable + model.hidden_channels)
    parameters = parameter_count(
        observable,
        model.hidden_channels,
        len(model.kernels),
        hidden,
        model.hidden_bias,
        conditions,
        model.learnable_kernels,
        model.learnable_kernel_symmetry,
    )
    transitions = trajectories * (frames - 1)
    # what is rolled out at once: a mini-batch, or a chunk of one
    batch = config.training.rollout_chunk or -(-transitions // config.training.minibatches)
    cells = int(np.prod(lattice))
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
    if training.damage_fraction and (r <= training.reinitialised_batches or frames < 3):
        raise ValueError(
            f"training.damage_fraction > 0 needs propagated start states to damage: more "
            f"trajectories than training.reinitialised_batches ({training.reinitialised_batches}"
            f"; R = {r}) and at least 2 transitions per trajectory (M = {frames - 1})"
        )


_SCORE = eqx.filter_jit(rollout_score)
"""The free-rollout score, one wrapper for every training in the process (a new wrapper
would trace and compile again)."""


def _redrawn(model: NCA, y, hidden_noise: float, key) -> jax.Array:
    return redrawn_states(model, y, hidden_noise, key=key)


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
    score_fn = _SCORE  # compiled once per shape, for row 0 and every validation
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
        shared_epoch(session.training, session.data.augment_noise)
        if parallel is None
        else make_epoch(session.training, session.optimizer, session.data.augment_noise, parallel),
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
