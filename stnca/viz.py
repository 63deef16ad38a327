"""Figures and videos of trajectories, losses and comparisons.

Matplotlib is used through ``matplotlib.figure.Figure`` only (no pyplot, no global state,
no display needed). Every file is written atomically.

How a state is turned into colours (``render``):

- 4 channels: RGBA with premultiplied colour, composited on white (``rgb + 1 - alpha``);
- 3 channels: RGB, clipped to ``[0, 1]``;
- otherwise one channel (by default the last: B for Gray-Scott) through a colour map.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from ._files import atomic_path


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite premultiplied RGBA ``(..., 4)`` on a white background, giving RGB in [0, 1]."""
    rgba = np.clip(np.asarray(rgba, np.float32), 0.0, 1.0)
    rgb, alpha = rgba[..., :3], rgba[..., 3:4]
    return np.clip(rgb + 1.0 - alpha, 0.0, 1.0)


def render(
    frames: np.ndarray,
    *,
    channel: int | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
) -> np.ndarray:
    """Turn states ``(..., H, W, C)`` into RGB floats ``(..., H, W, 3)`` in ``[0, 1]``.

    Args:
        frames: observable channels of one or many states.
        channel: channel to show through the colour map; default: colour for 3 or 4
            channels, else the last channel.
        vmin, vmax: colour-map range (default: the data's range).
        cmap: matplotlib colour-map name for single-channel display.
    """
    frames = np.asarray(frames, np.float32)
    channels = frames.shape[-1]
    if channel is None and channels == 4:
        return composite_on_white(frames)
    if channel is None and channels == 3:
        return np.clip(frames, 0.0, 1.0)
    channel = channels - 1 if channel is None else channel
    if not -channels <= channel < channels:
        raise ValueError(f"channel must be in [0, {channels}), got {channel}")
    values = frames[..., channel]
    low = float(np.min(values)) if vmin is None else vmin
    high = float(np.max(values)) if vmax is None else vmax
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return colormaps[cmap](np.clip(scaled, 0.0, 1.0))[..., :3].astype(np.float32)


def evenly_spaced(frames: int, count: int) -> np.ndarray:
    """Up to ``count`` evenly spaced frame indices in ``[0, frames)``, first and last included."""
    return np.unique(np.linspace(0, frames - 1, min(count, frames)).round().astype(int))


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


FIGURE_DPI = 100
"""Resolution of every saved figure, in dots per inch (the test suite lowers it: drawing is
a tenth of its time)."""


def _save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=FIGURE_DPI, bbox_inches="tight")
    return path


def frames_figure(
    rows: Sequence[Sequence[np.ndarray] | np.ndarray],
    path: str | os.PathLike,
    *,
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """A grid of images: ``rows[r][c]`` is an RGB array ``(H, W, 3)``; write it as PNG."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    figure = Figure(figsize=(1.6 * n_cols + 0.6, 1.6 * n_rows + (0.5 if title else 0.2)))
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(row):
                ax.imshow(row[c], interpolation="nearest")
            else:
                ax.axis("off")
            if column_labels is not None and r == 0 and c < len(column_labels):
                ax.set_title(column_labels[c], fontsize=9)
            if row_labels is not None and c == 0:
                ax.set_ylabel(row_labels[r], fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    return _save_figure(figure, path)


def trajectory_figure(
    trajectory: np.ndarray,
    path: str | os.PathLike,
    *,
    every: int = 1,
    max_frames: int = 9,
    channel: int | None = None,
    title: str | None = None,
) -> Path:
    """Snapshots of one or more trajectories ``(T, H, W, C)`` / ``(R, T, H, W, C)`` as PNG.

    At most ``max_frames`` evenly spaced frames (first and last included) per trajectory
    and at most 4 trajectories are shown; ``every`` labels frames with their step number.
    """
    trajectory = np.asarray(trajectory)
    if trajectory.ndim == 4:
        trajectory = trajectory[None]
    trajectory = trajectory[:4]
    frames = trajectory.shape[1]
    picked = evenly_spaced(frames, max_frames)
    low, high = float(trajectory.min()), float(trajectory.max())
    rgb = render(trajectory[:, picked], channel=channel, vmin=low, vmax=high)
    return frames_figure(
        [list(r) for r in rgb],
        path,
        column_labels=[f"n = {i * every}" for i in picked],
        row_labels=[f"r = {r}" for r in range(len(rgb))] if len(rgb) > 1 else None,
        title=title,
    )


def _comparison_panels(truth, prediction, channel: int | None) -> list[np.ndarray]:
    """RGB truth, prediction (same colour scale) and |difference| (magma) frame stacks."""
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    low, high = float(truth.min()), float(truth.max())
    difference = np.abs(prediction - truth)
    if truth.shape[-1] in (3, 4) and channel is None:
        difference = difference[..., :3].max(axis=-1, keepdims=True)
    else:
        difference = difference[..., [channel if channel is not None else -1]]
    return [
        render(truth, channel=channel, vmin=low, vmax=high),
        render(prediction, channel=channel, vmin=low, vmax=high),
        render(difference, vmin=0.0, vmax=max(high - low, 1e-6), cmap="magma"),
    ]


def evaluation_figure(
    truth: np.ndarray,
    prediction: np.ndarray,
    steps_between_frames: int,
    path: str | os.PathLike,
    *,
    columns: int = 7,
    title: str | None = None,
) -> Path:
    """``comparison_figure`` of two whole trajectories ``(T, H, W, C)`` frames
    ``steps_between_frames`` apart, at ``columns`` evenly spaced frames."""
    picked = evenly_spaced(truth.shape[0], columns)
    steps = [int(i) * steps_between_frames for i in picked]
    return comparison_figure(truth[picked], prediction[picked], steps, path, title=title)


def comparison_figure(
    truth: np.ndarray,
    prediction: np.ndarray,
    steps: Sequence[int],
    path: str | os.PathLike,
    *,
    channel: int | None = None,
    title: str | None = None,
) -> Path:
    """The paper's Fig 5 layout: rows truth / NCA / |difference| at the given step numbers.

    Args:
        truth, prediction: frames ``(T, H, W, C)`` at the times labelled by ``steps``.
        steps: one step number per frame (column labels).
    """
    rows = _comparison_panels(truth, prediction, channel)
    return frames_figure(
        [list(r) for r in rows],
        path,
        row_labels=["truth", "NCA", "|difference|"],
        column_labels=[f"n = {s}" for s in steps],
        title=title,
    )


def loss_figure(
    epochs: Sequence[float],
    losses: Sequence[float],
    path: str | os.PathLike,
    *,
    title: str = "",
    others: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    chosen: int | None = None,
) -> Path:
    """Training loss against epoch on a log scale, written as PNG.

    Args:
        others: more curves, ``label -> (epochs, values)`` (NaN values are skipped).
        chosen: mark this epoch (the chosen model) with a vertical line.
    """
    figure = Figure(figsize=(5.5, 3.4))
    ax = figure.subplots()
    curves = {"training loss (all transitions)": (epochs, losses), **(others or {})}
    any_finite = False
    for label, (x, curve) in curves.items():
        values = np.asarray(curve, dtype=float)
        finite = np.isfinite(values) & (values > 0)
        if finite.any():
            any_finite = True
            ax.plot(np.asarray(x)[finite], values[finite], lw=1, label=label)
    if any_finite:
        ax.set_yscale("log")
    if chosen:
        ax.axvline(chosen, color="k", ls=":", lw=1, label=f"chosen model (epoch {chosen})")
    if len(curves) > 1 or chosen:
        ax.legend(fontsize=7)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    # one axes: the tight bounding box of the save is all the layout it needs (tight_layout
    # would draw the figure once more: a fifth of the time of a figure every checkpoint writes)
    return _save_figure(figure, path)


def heatmap_figure(
    values: np.ndarray,
    panels: Sequence[np.ndarray],
    path: str | os.PathLike,
    *,
    extent: tuple[float, float, float, float] | None = None,
    panel_labels: Sequence[str] = (),
    markers: Sequence[tuple[float, float] | None] = (),
    heatmap_label: str = "",
    colorbar_label: str = "",
    title: str | None = None,
    columns: int = 4,
) -> Path:
    """A heatmap (first panel, with a colour bar) followed by RGB panels; write it as PNG.

    Args:
        values: the heatmap ``(rows, columns)``.
        panels: RGB images ``(H, W, 3)`` shown after it.
        extent: ``(left, right, bottom, top)`` of the heatmap in lattice cells (imshow's).
        panel_labels: a title per panel.
        markers: ``(row, column)`` to mark with a cross (or ``None``), one per panel.
        heatmap_label, colorbar_label: titles of the heatmap and its colour bar.
        columns: panels per figure row.
    """
    count = 1 + len(panels)
    n_cols = min(columns, count)
    n_rows = -(-count // n_cols)
    figure = Figure(figsize=(2.3 * n_cols + 0.6, 2.3 * n_rows + (0.5 if title else 0.2)))
    axes = figure.subplots(n_rows, n_cols, squeeze=False).reshape(-1)
    image = axes[0].imshow(values, cmap="magma", extent=extent, interpolation="nearest")
    figure.colorbar(image, ax=axes[0], fraction=0.046, pad=0.04).set_label(
        colorbar_label, fontsize=8
    )
    axes[0].set_title(heatmap_label, fontsize=8)
    for i, ax in enumerate(axes[1:]):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(panels):
            ax.axis("off")
            continue
        ax.imshow(panels[i], interpolation="nearest")
        marker = markers[i] if i < len(markers) else None
        if marker is not None:
            ax.plot(marker[1], marker[0], "x", color="red", ms=6, mew=1.5)
        if i < len(panel_labels):
            ax.set_title(panel_labels[i], fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _save_figure(figure, path)


def _upscale(rgb: np.ndarray, min_size: int = 256) -> np.ndarray:
    """Nearest-neighbour upscale by an even factor so the shorter side is >= ``min_size``."""
    factor = max(2, -(-min_size // min(rgb.shape[-3], rgb.shape[-2])))
    factor += factor % 2
    return np.repeat(np.repeat(rgb, factor, axis=-3), factor, axis=-2)


def annotate(frame: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in the top-left corner of a uint8 RGB frame (white box, black text)."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((4, 2), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(255, 255, 255))
    draw.text((4, 2), text, fill=(0, 0, 0))
    return np.asarray(image)


def write_video(
    frames: np.ndarray,
    path: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    fps: int = 12,
) -> Path:
    """Write RGB frames ``(T, H, W, 3)`` in ``[0, 1]`` as ``.mp4`` (H.264) or ``.gif``.

    Frames are upscaled (nearest neighbour) to at least 256 pixels and ``labels[t]`` is
    written in the top-left corner of frame ``t``.
    """
    import imageio.v2 as imageio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"video path must end in .mp4 or .gif, got {path.name!r}")
    images = _upscale(_to_uint8(np.asarray(frames)))
    if labels is not None:
        images = np.stack([annotate(f, label) for f, label in zip(images, labels, strict=True)])
    with atomic_path(path) as temporary:
        if suffix == ".gif":
            pictures = [Image.fromarray(f) for f in images]
            pictures[0].save(
                temporary,
                save_all=True,
                append_images=pictures[1:],
                duration=int(1000 / fps),
                loop=0,
            )
        else:
            # imageio-ffmpeg starts ffmpeg with subprocess (fork + exec at once), which JAX's
            # generic os.fork() warning does not need to flag.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
                imageio.mimwrite(
                    temporary,
                    list(images),
                    fps=fps,
                    codec="libx264",
                    quality=8,
                    macro_block_size=2,
                    pixelformat="yuv420p",
                )
    return path


def side_by_side(*panels: np.ndarray, gap: int = 2) -> np.ndarray:
    """Join RGB frame stacks ``(T, H, W, 3)`` left to right with a white gap."""
    height = panels[0].shape[-3]
    spacer = np.ones(panels[0].shape[:-3] + (height, gap, 3), np.float32)
    pieces = []
    for i, panel in enumerate(panels):
        if i:
            pieces.append(spacer)
        pieces.append(panel)
    return np.concatenate(pieces, axis=-2)


def comparison_video(
    truth: np.ndarray,
    prediction: np.ndarray,
    steps_between_frames: int,
    path: str | os.PathLike,
    *,
    channel: int | None = None,
    fps: int = 6,
) -> Path:
    """Truth, NCA and |difference| side by side, step number top left (videos S4-S6).

    Args:
        truth, prediction: observable frames ``(T, H, W, C)``, ``steps_between_frames`` apart.
        path: ``.mp4`` or ``.gif``.
    """
    panels = side_by_side(*_comparison_panels(truth, prediction, channel))
    labels = [f"n={i * steps_between_frames}  truth | NCA | diff" for i in range(len(truth))]
    return write_video(panels, path, labels=labels, fps=fps)
