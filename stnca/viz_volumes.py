"""Pictures of lines and volumes: every figure and video of ``stnca.viz`` takes 2-D frames, so
a trajectory on a 1-D or 3-D lattice is first made into 2-D pictures here.

- A **line** ``(T, X, C)`` becomes one space-time image (a kymograph, time down, space
  across): ``(1, T, X, C)``.
- A **volume** ``(T, D, H, W, C)`` becomes, per frame, a 2 x 3 montage: the top row the
  orthogonal middle slices (``[D // 2]``, ``[:, H // 2]``, ``[:, :, W // 2]``), the bottom
  row the maximum-intensity projections along the same three axes, one cell of the
  field's minimum between the panels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import viz


def _montage(frames: np.ndarray) -> np.ndarray:
    """``(..., D, H, W, C)`` volumes -> ``(..., 2 S + 1, 3 S + 2, C)`` montages (S the
    largest side; smaller panels are padded with the minimum)."""
    depth, height, width = frames.shape[-4:-1]
    slices = [
        frames[..., depth // 2, :, :, :],
        frames[..., :, height // 2, :, :],
        frames[..., :, :, width // 2, :],
    ]
    projections = [frames.max(axis=-4), frames.max(axis=-3), frames.max(axis=-2)]
    side = max(depth, height, width)
    low = float(np.min(frames)) if frames.size else 0.0

    def padded(panel: np.ndarray) -> np.ndarray:
        rows, columns = panel.shape[-3], panel.shape[-2]
        widths = [(0, 0)] * (panel.ndim - 3) + [(0, side - rows), (0, side - columns), (0, 0)]
        return np.pad(panel, widths, constant_values=low)

    def row(panels: list[np.ndarray]) -> np.ndarray:
        gap = np.full(frames.shape[:-4] + (side, 1, frames.shape[-1]), low, frames.dtype)
        pieces = [padded(panels[0]), gap, padded(panels[1]), gap, padded(panels[2])]
        return np.concatenate(pieces, axis=-2)

    top, bottom = row(slices), row(projections)
    gap = np.full(top.shape[:-3] + (1,) + top.shape[-2:], low, frames.dtype)
    return np.concatenate([top, gap, bottom], axis=-3)


def as_pictures(trajectory: np.ndarray, dims: int) -> np.ndarray:
    """A trajectory ``([R,] T, *lattice, C)`` on a ``dims``-dimensional lattice as 2-D frames
    ``([R,] T', H', W', C)`` (the module's docstring): unchanged in 2-D."""
    trajectory = np.asarray(trajectory)
    if dims == 2:
        return trajectory
    if dims == 1:
        return trajectory[..., None, :, :, :]
    if dims == 3:
        return _montage(trajectory)
    raise ValueError(f"dims must be 1, 2 or 3, got {dims!r}")


def volume_figure(
    trajectory: np.ndarray,
    path: str | os.PathLike,
    *,
    every: int = 1,
    channel: int | None = None,
    title: str | None = None,
) -> Path:
    """Frames of a volume trajectory ``(T, D, H, W, C)`` as montages of middle slices
    (top) and maximum-intensity projections (bottom), one channel (default the last)."""
    trajectory = np.asarray(trajectory)
    shown = trajectory[..., [trajectory.shape[-1] - 1 if channel is None else channel]]
    heading = "middle slices (top), maximum projections (bottom)"
    title = f"{title}: {heading}" if title else heading
    return viz.trajectory_figure(_montage(shown), path, every=every, max_frames=5, title=title)


def lattice_figure(
    trajectory: np.ndarray,
    path: str | os.PathLike,
    *,
    dims: int,
    every: int = 1,
    channel: int | None = None,
    channel_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """A picture of trajectories on a 1-D, 2-D or 3-D lattice, ``(T, *space, C)`` or
    ``(R, T, *space, C)``: in 2-D ``viz.trajectory_figure``'s frames; in 3-D
    ``volume_figure`` (middle slices and maximum projections) of the first trajectory; in
    1-D a space-time image (kymograph) per trajectory, time down (step ``n`` at row
    ``n / every``), space across, one column per channel."""
    trajectory = np.asarray(trajectory)
    if trajectory.ndim == dims + 2:
        trajectory = trajectory[None]
    title = title or ""
    if dims == 3:
        return volume_figure(trajectory[0], path, every=every, channel=channel, title=title)
    if dims == 2:  # one channel, so that the colour scale is that channel's
        shown = trajectory[..., [trajectory.shape[-1] - 1 if channel is None else channel]]
        return viz.trajectory_figure(shown, path, every=every, title=title)
    trajectory = trajectory[:4]
    columns = range(trajectory.shape[-1]) if channel is None else [channel]
    rows = []
    for run in trajectory:  # (T, X, C): an image with time down
        rows.append([viz.render(run[None], channel=c)[0] for c in columns])
    names = channel_names or [f"channel {c}" for c in range(trajectory.shape[-1])]
    labels = [names[c] for c in columns]
    title = f"{title} (time down, space across)".strip()
    return viz.frames_figure(
        rows,
        path,
        column_labels=labels,
        row_labels=[f"r = {r}" for r in range(len(rows))] if len(rows) > 1 else None,
        title=title,
    )
