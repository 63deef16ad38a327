"""The training driver: ``train`` and ``train_runs``, a short loop over the pieces.

The set-up (data, units, memory, models, devices) and the start or resume are in
``stnca.train.session``; one epoch on the host (metrics rows, selection, divergence, then
progress, checkpoints, interrupt, results) in ``stnca.train.epoch``; one run's state and its
checkpoint in ``stnca.train.run_state``; what a run writes in its folder, and how the folder
is checked first, in ``stnca.train.run_folder``; the progress display in
``stnca.train.progress``.

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

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax

from .algorithm import (
    learning_rate_schedule,
)
from .config import Config, load_config
from .distributed import is_primary
from .epoch import _after_epoch, _Clock, _epoch, _interrupted, _results
from .progress import Progress
from .run_folder import (
    restore_replaced,
)
from .run_state import TrainingDiverged as TrainingDiverged
from .run_state import TrainResult as TrainResult
from .session import _epoch_functions, _open_boards, _set_up, _start
from .session import build_model as build_model
from .session import check_data_shape as check_data_shape
from .session import check_training_memory as check_training_memory
from .session import fit_units as fit_units


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
