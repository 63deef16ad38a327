"""Several random initialisations ("seeds") of one configuration, trained as one program.

A hyperparameter sweep trains each of its cells with ``training.seed = s`` for a few seeds
``s``. ``train_seeds`` trains them together: the K models, optimiser states, propagated
start states and PRNG keys are stacked on a leading axis and one jitted, vmapped epoch
function advances them all, with the data made once and shared on the device
(``stnca.train.loop.train_runs``). Seeds differ only in the model's initial weights and the
training PRNG stream, so the data (``train_data.npy``) are the same for all.

Each folder ends as ``train(config.replace("training", seed=s), out)`` leaves it, with the
same files and the same per-run rules (model selection, restarts, propagation gate,
learning-rate schedule, checkpoints, exact resume). Weights and losses agree with separate
``train`` runs up to float rounding, not bit for bit: batching the K models lets XLA sum in
another order (differences of ~1e-7 relative), which Adam-type optimisers, insensitive to
the scale of a gradient, can amplify over many updates as any rounding change would. A
resumed ``train_seeds`` matches an uninterrupted one bit for bit when it resumes the same
seeds together (as it does when all folders are at the same epoch).

A seed whose loss becomes non-finite stops alone: its folder is left as ``train`` leaves it
when it raises ``TrainingDiverged`` (the last finite state checkpointed, the chosen model
kept), the message is logged and put in its result's ``diverged``; its lane of the batched
program goes on being computed, unused, until the others finish. TensorBoard
(``training.tensorboard``) logs each seed to its own folder.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..serialization import read_header
from .config import Config
from .loop import TrainResult, train_runs
from .run_folder import CHECKPOINT_FILE


def _repeated(values: Sequence) -> list:
    seen, repeated = set(), []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated


def train_seeds(
    config: Config,
    outs: Sequence[str | os.PathLike],
    seeds: Sequence[int],
    *,
    epochs: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> list[TrainResult]:
    """Train ``config`` with ``training.seed = seeds[i]`` into ``outs[i]``, all seeds at once.

    Args:
        config: the configuration (its own ``training.seed`` is replaced by each seed).
        outs: one output folder per seed, all different; each is checked as by ``train``.
        seeds: the training seeds, all different.
        epochs: total number of epochs, overriding ``training.epochs``.
        resume: continue every folder from its checkpoint. Folders at different epochs
            (e.g. a seed that stopped early) are resumed in groups, one program per epoch,
            one after the other, each checked when its turn comes; such a group's numerics
            match an uninterrupted run's within rounding only (it batches other seeds).
        overwrite: start afresh in folders that hold an earlier run's files.
        progress: a rich progress bar for all seeds (default: when stdout is a terminal).
        log: where plain messages go.

    Returns:
        One ``TrainResult`` per seed, in the order of ``seeds``. A seed whose loss became
        non-finite stops at that epoch without stopping the others: its folder keeps the
        last finite checkpoint and its chosen model (as ``train`` leaves it when it raises
        ``TrainingDiverged``), and its result's ``diverged`` holds the message.

    Raises:
        ValueError: unequal numbers of folders and seeds, repeated seeds or folders, or
            anything ``train`` refuses (nothing is written then).
    """
    folders = [Path(out) for out in outs]
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one training seed")
    if len(folders) != len(seeds):
        raise ValueError(
            f"outs and seeds must have the same length, got {len(folders)} folders for "
            f"{len(seeds)} seeds"
        )
    if repeated := _repeated(seeds):
        raise ValueError(f"seeds must all differ, got {repeated} more than once")
    if repeated := _repeated([folder.resolve() for folder in folders]):
        raise ValueError(f"outs must all differ, got {[str(r) for r in repeated]} more than once")
    if epochs is not None:
        config = config.replace("training", epochs=epochs)
    configs = [config.replace("training", seed=seed) for seed in seeds]
    run = functools.partial(
        train_runs, resume=resume, overwrite=overwrite, progress=progress, log=log
    )
    if resume:
        done = [
            read_header(folder / CHECKPOINT_FILE, kind="training_state")["epoch"]
            if (folder / CHECKPOINT_FILE).is_file()
            else None  # train_runs says there is nothing to resume
            for folder in folders
        ]
        epochs_done = sorted({epoch for epoch in done if epoch is not None})
        if None not in done and len(epochs_done) > 1:
            log(
                f"the folders are at different epochs ({', '.join(map(str, done))}): each "
                "group at the same epoch is resumed as one program"
            )
            results: list[TrainResult | None] = [None] * len(seeds)
            for epoch in epochs_done:
                group = [i for i, e in enumerate(done) if e == epoch]
                trained = run([configs[i] for i in group], [folders[i] for i in group])
                for i, result in zip(group, trained, strict=True):
                    results[i] = result
            return [result for result in results if result is not None]
    return run(configs, folders)
