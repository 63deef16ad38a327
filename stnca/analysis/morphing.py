"""What a trained image-morphing NCA does: per-image errors, snapshots and videos.

The model is run from the first image (hidden channels zero) for ``extrapolate`` times the
training horizon ``M t``. At ``n = m t`` it should show image ``m``; beyond the horizon it
should hold the final image (a stable attractor, the paper's Fig 11 right column).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from .. import viz
from .._files import write_text
from ..model import NCA
from .evaluate import json_safe
from .metrics import euclidean, relative_error


@eqx.filter_jit
def _run(model: NCA, first, steps: int, every: int, key):
    frames = model.rollout(model.initial_state(first), steps, every=every, key=key)
    return frames


def hidden_as_rgb(frames: np.ndarray, observable: int) -> list[np.ndarray]:
    """The hidden channels as up to three RGB frame stacks (channels in threes).

    Each hidden channel is scaled by its largest magnitude over all frames and mapped to
    ``[0, 1]`` (0.5 = zero); missing channels of the last triple show as grey.
    """
    hidden = np.asarray(frames[..., observable:], np.float32)
    scale = np.max(np.abs(hidden), axis=tuple(range(hidden.ndim - 1)), keepdims=True)
    hidden = 0.5 + 0.5 * hidden / np.where(scale > 0, scale, 1.0)
    stacks = []
    for start in range(0, min(hidden.shape[-1], 9), 3):
        triple = hidden[..., start : start + 3]
        if triple.shape[-1] < 3:
            pad = np.full(triple.shape[:-1] + (3 - triple.shape[-1],), 0.5, np.float32)
            triple = np.concatenate([triple, pad], axis=-1)
        stacks.append(triple)
    while len(stacks) < 3:
        stacks.append(np.full(hidden.shape[:-1] + (3,), 0.5, np.float32))
    return stacks


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
    extrapolate: int = 2,
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
        extrapolate: run to this many times the training horizon ``M t``.
        key: PRNG key for stochastic updates.

    Returns:
        Per-image errors: ``{"images": [{"step", "target", "euclidean", "relative_error"}],
        "extrapolation": {...}}``.
    """
    out = Path(out_dir)
    sequence = np.asarray(sequence, np.float32)
    images, t = len(sequence) - 1, steps_between_frames
    horizon = images * t
    total = extrapolate * horizon
    every = max(1, t // 8)
    while t % every:
        every -= 1
    key = jax.random.key(0) if key is None else key
    frames = np.asarray(_run(model, sequence[0], total, every, key if model.stochastic else None))
    observable = frames[..., : model.observable_channels]

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
        "extrapolation": errors(total, images),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "morph.json", json.dumps(json_safe(report), indent=2))

    steps = [m * t for m in range(images + 1)] + [total]
    targets = list(sequence) + [sequence[-1]]
    viz.frames_figure(
        [list(viz.render(np.stack(targets))), list(viz.render(np.stack([at(s) for s in steps])))],
        out / "snapshots.png",
        row_labels=["target", "NCA"],
        column_labels=[f"n = {s}" for s in steps],
        title=f"image morphing, {t} steps per image; last column: extrapolation",
    )
    if videos:
        labels = [f"n={i * every}" for i in range(len(frames))]
        rgb = viz.render(observable)
        viz.write_video(rgb, out / "trajectory.mp4", labels=labels, fps=24)
        viz.write_video(
            _quadrants(rgb, *hidden_as_rgb(frames, model.observable_channels)),
            out / "hidden.mp4",
            labels=labels,
            fps=24,
        )
    return report
