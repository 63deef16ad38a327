"""A rollout written to a trajectory file: held in memory when it is small, streamed frame
by frame (with progress) when it is large or long, never half-written, never non-finite."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from .._files import write_streamed
from .._resources import STREAM_ABOVE, check_disk, check_memory
from .._trajectory import check_steps, require_finite
from ..data.io import save_array
from ..model import NCA
from .evaluate import LONG_ROLLOUT, predict, predict_frames


def rollout_to_file(
    model: NCA,
    initial,
    out: str | os.PathLike,
    steps: int,
    *,
    every: int = 1,
    key: jax.Array | None = None,
    log: Callable[[str], None] = print,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Roll ``model`` out from ``initial`` (``(H, W, C)`` or ``(R, H, W, C)``, physical units,
    a conditioned model's conditions as trailing channels; the model's ``dimensions``
    lattice axes before the channels) and write every ``every``-th observable frame to the
    ``.npy`` file ``out``: ``(T, H, W, C)`` or ``(R, T, H, W, C)`` with
    ``T = steps // every + 1``. A large or long rollout is streamed
    (``progress(steps_done)`` after each chunk). Returns the frames (memory-mapped when
    streamed).

    Raises:
        ValueError: not enough memory or disk, or a non-finite frame (its step named;
            nothing written).
    """
    check_steps(steps, every)
    initial = np.asarray(initial)
    count = steps // every + 1
    state_floats = initial.size // model.data_channels * model.channels
    # streamed, the frames go to disk one by one and only a few states are held
    stream = state_floats * count > STREAM_ABOVE or steps > LONG_ROLLOUT
    check_memory(state_floats * (4 if stream else count + 1), f"a rollout of {count} frames")
    frame_floats = initial.size // model.data_channels * model.observable_channels
    check_disk(frame_floats * count, Path(out).parent, f"a rollout of {count} frames")
    dims = model.dimensions
    single = initial.ndim == dims + 1
    if not stream:
        batched = initial[None] if single else initial
        frames = predict(model, batched, steps, every=every, key=key)
        frames = frames[0] if single else frames
        require_finite(frames, every, dims=dims)
        save_array(out, frames)
        return frames
    lattice = initial.shape[-1 - dims : -1]
    shape = (*initial.shape[: -1 - dims], count, *lattice, model.observable_channels)
    log(
        f"rolling out {count} frames of {'x'.join(map(str, lattice))} "
        f"({steps} steps), writing each frame as it comes"
    )
    stream_frames = predict_frames(model, initial, steps, every=every, key=key, progress=progress)
    written = iter(range(count))

    def finite(frame):
        frames_axis = frame.ndim - 1 - dims  # the frame as a one-frame trajectory
        require_finite(np.expand_dims(frame, frames_axis), every, start=next(written), dims=dims)

    return write_streamed(out, shape, stream_frames, on_frame=finite, dims=dims)
