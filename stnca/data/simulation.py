"""A Gray-Scott simulation written to a trajectory file: held in memory when it is small,
streamed frame by frame (with progress) when it is large or long, never half-written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._files import write_streamed
from .._resources import STREAM_ABOVE, check_disk, check_memory
from .._trajectory import check_steps
from . import gray_scott, io

LONG_SIMULATION = 2**31
"""Simulations of more cell-updates than this (about half a minute on a laptop core) are
streamed too, so that they report progress."""


def simulate_to_file(
    out: str | os.PathLike,
    initial,
    steps: int,
    *,
    every: int = 1,
    size: int = 64,
    batch: int | None = None,
    key=None,
    params: gray_scott.GrayScottParams | None = None,
    log: Callable[[str], None] = print,
    progress: Callable[[int], None] | None = None,
    dims: int = 2,
):
    """Simulate the Gray-Scott equations and write the ``steps // every + 1`` frames to the
    ``.npy`` file ``out`` (float32, ``(T, H, W, 2)`` or ``(R, T, H, W, 2)``).

    Args:
        initial: the states ``(H, W, 2)`` or ``(R, H, W, 2)``, or the name of an initial
            condition (``stnca.INITIAL_CONDITIONS``), drawn ``size`` x ``size`` (``batch`` of
            them: a leading axis) with ``key`` once memory and disk are checked.
        progress: ``progress(steps_done)`` after each chunk of a streamed simulation (one
            that is large or long: its frames go to disk one by one).
        dims: the lattice's dimension (default 2; 1: states ``(X, 2)``, 3: ``(D, H, W, 2)``,
            drawn ``size`` cells along every axis from ``stnca.data.initial_volumes``).

    Returns the trajectory (memory-mapped when streamed).

    Raises:
        ValueError: not enough memory or disk, or the simulation diverged (nothing written).
    """
    from .initial_volumes import initial_state

    params = gray_scott.GrayScottParams() if params is None else params
    check_steps(steps, every)
    drawn = isinstance(initial, str)
    lattice = (size,) * dims
    shape = (*(() if batch is None else (batch,)), *lattice, 2) if drawn else np.shape(initial)
    frames = steps // every + 1
    state_floats = int(np.prod(shape))
    cell_updates = steps * state_floats // 2
    stream = state_floats * frames > STREAM_ABOVE or cell_updates > LONG_SIMULATION
    # streamed, the frames go to disk one by one and only a few states are held
    what = f"a {'x'.join(map(str, lattice))} simulation" if drawn else "this simulation"
    check_memory(state_floats * (4 if stream else frames + 2), what)
    check_disk(state_floats * frames, Path(out).parent, f"a simulation of {frames} frames")
    if drawn:
        initial = initial_state(initial, size, dims, key=key, batch=batch)
    initial = np.asarray(initial, np.float32)
    gray_scott.check_state(initial, dims)
    diverged = ValueError(
        "the simulation diverged (non-finite values); lower dt or the diffusion constants"
    )
    if not stream:
        simulated = gray_scott.simulate(initial, steps, every=every, params=params, dims=dims)
        trajectory = np.asarray(simulated)
        if not np.all(np.isfinite(trajectory)):
            raise diverged
        io.save_array(out, trajectory)
        return trajectory

    def finite(frame):
        if not np.all(np.isfinite(frame)):
            raise diverged

    sides = "x".join(str(n) for n in initial.shape[-1 - dims : -1])
    log(
        f"simulating {frames} frames of {sides} "
        f"({cell_updates / 1e9:.2f} G cell-updates; {4 * state_floats * 4 / 2**20:.0f} MiB "
        f"of memory, {4 * state_floats * frames / 2**20:.0f} MiB on disk), writing each "
        "frame as it comes"
    )
    stream_frames = gray_scott.frames(
        initial, steps, every=every, params=params, progress=progress, dims=dims
    )
    shape = (*initial.shape[: -1 - dims], frames, *initial.shape[-1 - dims :])
    return write_streamed(out, shape, stream_frames, finite, dims=dims)
