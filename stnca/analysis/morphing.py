"""What a trained image-morphing NCA does: per-image errors, snapshots and videos.

The model is run from the first image (hidden channels zero) for up to ``max(extrapolate)``
times the training horizon ``M t`` (2x and 4x by default). At ``n = m t`` it should show
image ``m``; beyond the horizon it should hold the final image (a stable attractor, the
paper's Fig 11 right column).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from .. import viz
from .._files import json_safe, write_text
from ..model import NCA
from .metrics import euclidean, relative_error


@eqx.filter_jit
def _run(model: NCA, first, steps: int, every: int, key):
    frames = model.rollout(model.initial_state(first), steps, every=every, key=key)
    return frames


def hidden_as_rgb(frames: np.ndarray, observable: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first nine hidden channels as three RGB frame stacks (channels in threes).

    Each hidden channel is scaled by its largest magnitude over all frames and mapped to
    ``[0, 1]`` (0.5 = zero); missing channels of the last triple show as grey.
    """
    hidden = np.asarray(frames[..., observable:], np.float32)
    scale = np.max(np.abs(hidden), axis=tuple(range(hidden.ndim - 1)), keepdims=True)
    hidden = (0.5 + 0.5 * hidden / np.where(scale > 0, scale, 1.0)).astype(np.float32)
    stacks = []
    for start in range(0, min(hidden.shape[-1], 9), 3):
        triple = hidden[..., start : start + 3]
        if triple.shape[-1] < 3:
            pad = np.full(triple.shape[:-1] + (3 - triple.shape[-1],), 0.5, np.float32)
            triple = np.concatenate([triple, pad], axis=-1)
        stacks.append(triple)
    while len(stacks) < 3:
        stacks.append(np.full(hidden.shape[:-1] + (3,), 0.5, np.float32))
    return stacks[0], stacks[1], stacks[2]


def _quadrants(top_left, top_right, bottom_left, bottom_right, gap: int = 2) -> np.ndarray:
    top = viz.side_by_side(top_left, top_right, gap=gap)
    bottom = viz.side_by_side(bottom_left, bottom_right, gap=gap)
    spacer = np.ones(top.shape[:-3] + (gap,) + top.shape[-2:], np.float32)
    return np.concatenate([top, spacer, bottom], axis=-3)


def morph_report(
    model: NCA,
    sequence: np.ndarray,
    steps_between_frames: int,
    out_dir: str | os.PathLike,
    *,
    extrapolate: tuple[int, ...] = (2, 4),
    key: jax.Array | None = None,
    videos: bool = True,
) -> dict:
    """Evaluate a morphing NCA on its image sequence; write figures, videos and JSON.

    Args:
        model: a trained NCA with RGBA observable channels.
        sequence: the (embedded) target sequence ``(M + 1, H, W, 4)``.
        steps_between_frames: NCA steps ``t`` per image.
        out_dir: folder for ``snapshots.png``, ``morph.json`` and, with ``videos``,
            ``trajectory.mp4`` (video S1) and ``hidden.mp4`` (S2: hidden channels as RGB).
        extrapolate: multiples of the training horizon ``M t`` at which the final image is
            compared once more (the run goes to the largest).
        key: PRNG key for stochastic updates.

    Returns:
        Per-image errors: ``{"images": [{"step", "target", "euclidean", "relative_error"}],
        "extrapolation": [{"multiple", "step", "target", ...}, ...]}``.
    """
    out = Path(out_dir)
    sequence = np.asarray(sequence, np.float32)
    images, t = len(sequence) - 1, steps_between_frames
    horizon = images * t
    multiples = sorted({int(m) for m in extrapolate})
    if not multiples or multiples[0] < 1:
        raise ValueError(f"extrapolate must list multiples >= 1, got {extrapolate}")
    total = multiples[-1] * horizon
    every = _frame_spacing(t)
    key = jax.random.key(0) if key is None else key
    first = model.encode(sequence[0])
    frames = np.asarray(_run(model, first, total, every, key if model.stochastic else None))
    observable = np.asarray(model.decode(frames[..., : model.observable_channels]))

    def at(step: int) -> np.ndarray:
        return observable[step // every]

    def errors(step: int, target: int) -> dict:
        prediction, truth = at(step), sequence[target]
        return {
            "step": step,
            "target": target,
            "euclidean": float(euclidean(prediction, truth)),
            "relative_error": float(relative_error(prediction, truth)),
        }

    report = {
        "steps_between_frames": t,
        "images": [errors(m * t, m) for m in range(1, images + 1)],
        "extrapolation": [
            {"multiple": m, **errors(m * horizon, images)} for m in multiples if m > 1
        ],
    }
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "morph.json", json.dumps(json_safe(report), indent=2))

    later = [m * horizon for m in multiples if m > 1]
    _snapshots_figure(out / "snapshots.png", sequence, observable, every, t, later)
    if videos:
        _write_videos(out, frames, observable, every, model.observable_channels)
    return report


def _frame_spacing(t: int) -> int:
    """The steps between kept frames: the largest divisor of ``t`` up to ``t // 8`` (so each
    image's step is a kept frame)."""
    every = max(1, t // 8)
    while t % every:
        every -= 1
    return every


def _snapshots_figure(
    path: Path, sequence: np.ndarray, observable: np.ndarray, every: int, t: int, later: list[int]
) -> None:
    """Targets above the NCA at each image's step, then at the ``later`` (extrapolated)
    steps beside the final image."""
    images, horizon = len(sequence) - 1, (len(sequence) - 1) * t
    steps = [m * t for m in range(images + 1)] + later
    targets = list(sequence) + [sequence[-1]] * len(later)
    viz.frames_figure(
        [
            list(viz.render(np.stack(targets))),
            list(viz.render(np.stack([observable[s // every] for s in steps]))),
        ],
        path,
        row_labels=["target", "NCA"],
        column_labels=[f"n = {s}" for s in steps],
        title=f"image morphing, {t} steps per image; beyond n = {horizon}: extrapolation "
        f"(the final image should hold)",
    )


def _write_videos(
    out: Path, frames: np.ndarray, observable: np.ndarray, every: int, channels: int
) -> None:
    """``trajectory.mp4`` (video S1) and ``hidden.mp4`` (S2: hidden channels as RGB)."""
    labels = [f"n={i * every}" for i in range(len(frames))]
    rgb = viz.render(observable)
    viz.write_video(rgb, out / "trajectory.mp4", labels=labels, fps=24)
    viz.write_video(
        _quadrants(rgb, *hidden_as_rgb(frames, channels)),
        out / "hidden.mp4",
        labels=labels,
        fps=24,
    )
