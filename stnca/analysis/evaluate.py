"""Evaluate a trained NCA against a true trajectory, with baselines.

The model is rolled out from the truth's frame 0 (hidden channels zero) for ``t`` NCA steps
per data interval, and every frame is compared with the truth. Two baselines put the
numbers in context:

- ``persistence``: the initial frame held for ever (what an untrained NCA predicts);
- ``spatial_mean``: each frame of the truth replaced by its own spatial mean per channel
  (knows the true mean at every time, but no pattern).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import viz
from .._files import json_safe, write_text
from .._trajectory import check_steps, require_finite
from ..model import NCA, observable_rollout
from ..viz_volumes import as_pictures
from .metrics import frame_metrics


def predict(
    model: NCA,
    initial: np.ndarray,
    steps: int,
    *,
    every: int = 1,
    key: jax.Array | None = None,
) -> np.ndarray:
    """Roll ``model`` out ``steps`` steps from observable ``initial`` ``(R, H, W, C)`` and
    return every ``every``-th observable frame, frame 0 included: ``(R, steps // every + 1,
    H, W, C)``, the vocabulary of ``NCA.rollout``.

    Input and output are in physical units: a model trained on scaled data (``NCA.scaling``)
    encodes the initial state and decodes every frame. A conditioned model's ``initial``
    carries its conditions as trailing channels (``NCA.with_conditions``).
    """
    check_steps(steps, every)
    key = jax.random.key(0) if key is None else key
    out = np.array(observable_rollout(model, jnp.asarray(initial), steps, every, key))
    # frame 0 is the given state itself, not its encode-decode round trip
    out[:, 0] = np.asarray(initial)[..., : model.observable_channels]
    return out


CHUNK_STEPS = 4096
"""``predict_frames`` advances at most this many steps per compiled call."""
LONG_ROLLOUT = 100_000
"""Rollouts of more steps than this run in chunks (``predict_frames``), reporting progress."""


@eqx.filter_jit
def _advance_chunk(model: NCA, state, steps: int, key):
    return model.advance(state, steps, key=key if model.stochastic else None)


def predict_frames(
    model: NCA,
    initial: np.ndarray,
    steps: int,
    *,
    every: int = 1,
    key: jax.Array | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[np.ndarray]:
    """The frames of ``predict`` one at a time (physical units, frame 0 first), holding only
    the current state and advancing at most ``CHUNK_STEPS`` per compiled call: for rollouts
    whose frames do not fit in memory or that run long enough to report progress.

    ``progress(steps_done)`` is called after every chunk. A deterministic model gives exactly
    ``predict``'s frames. A stochastic one draws each
    chunk's update masks from ``fold_in(key, chunk)``, so its frames differ from
    ``predict``'s for the same key (both are valid samples).
    """
    check_steps(steps, every)
    key = jax.random.key(0) if key is None else key
    initial = np.asarray(initial, np.float32)
    state = model.initial_state(model.encode(jnp.asarray(initial)))
    yield initial[..., : model.observable_channels]
    chunk = done = 0
    for _ in range(steps // every):
        left = every
        while left:
            n = min(left, CHUNK_STEPS)
            state = _advance_chunk(model, state, n, jax.random.fold_in(key, chunk))
            left, chunk, done = left - n, chunk + 1, done + n
            if progress is not None:
                progress(done)
        yield np.asarray(model.decode(model.observable(state)))


@dataclasses.dataclass
class Evaluation:
    """Per-frame metrics of the NCA and the baselines, and the prediction itself."""

    steps_between_frames: int
    prediction: np.ndarray
    """Observable frames (R, T, H, W, C)."""
    metrics: dict[str, dict[str, np.ndarray]]
    """``metrics[predictor][metric]``: arrays of shape (R, T)."""

    def at_frame(self, frame: int) -> dict[str, dict[str, float]]:
        """Metrics at one frame, averaged over trajectories."""
        return {
            who: {name: float(values[:, frame].mean()) for name, values in table.items()}
            for who, table in self.metrics.items()
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary: per-frame metrics (trajectory means) and a summary.

        Non-finite values (a diverged rollout) become ``null``, so the result is strict JSON.
        """
        return json_safe(self._summary())

    def _summary(self) -> dict[str, Any]:
        frames = self.prediction.shape[1]
        rows = [
            {"frame": m, "step": m * self.steps_between_frames, **self.at_frame(m)}
            for m in range(frames)
        ]
        last = self.at_frame(frames - 1)
        return {
            "steps_between_frames": self.steps_between_frames,
            "trajectories": int(self.prediction.shape[0]),
            "frames": rows,
            "final": {
                "frame": frames - 1,
                "step": (frames - 1) * self.steps_between_frames,
                **last,
            },
        }


def evaluate(
    model: NCA,
    truth: np.ndarray,
    steps_between_frames: int,
    *,
    key: jax.Array | None = None,
    progress: Callable[[int], None] | None = None,
    conditions: dict[str, float | np.ndarray] | None = None,
    allow_diverged: bool = False,
) -> Evaluation:
    """Compare an NCA rollout from the truth's frame 0 with the truth, frame by frame.

    Args:
        model: a trained NCA.
        truth: observable trajectory ``(T, H, W, C)`` or ``(R, T, H, W, C)``; for a
            conditioned model, either with its conditions as trailing channels (as in a
            run's ``train_data.npy``) or observable only, with ``conditions`` given.
        steps_between_frames: NCA steps per frame interval ``t``.
        key: PRNG key for a stochastic NCA.
        progress: for rollouts of more than ``LONG_ROLLOUT`` steps (run in chunks, see
            ``predict_frames``), called with the steps done after every chunk.
        conditions: a conditioned model's condition values by name (numbers or ``(H, W)``
            fields), for an observable-only ``truth``.
        allow_diverged: report a rollout that becomes non-finite (its metrics NaN, ``null``
            in the JSON) instead of raising; a sweep records a diverged cell this way.

    Raises:
        NonFiniteError: the rollout became NaN or infinite (named by its first such step),
            unless ``allow_diverged``.
    """
    truth = np.asarray(truth, np.float32)
    dims = model.dimensions
    if truth.ndim == dims + 2:
        truth = truth[None]
    observable = model.observable_channels
    if truth.ndim != dims + 3 or truth.shape[-1] not in (observable, model.data_channels):
        axes = {1: "T, X", 2: "T, H, W", 3: "T, D, H, W"}[dims]
        raise ValueError(
            f"truth must have shape ({axes}, {observable}) or (R, {axes}, {observable})"
            + (
                f", or {model.data_channels} channels with the conditions"
                if model.conditions
                else ""
            )
            + f", got {truth.shape}"
        )
    if truth.shape[-1] != observable:  # the conditions come with the truth
        if conditions:
            raise ValueError(
                f"the truth already holds the conditions (its last {len(model.condition_names)}"
                f" channels); give no other condition values"
            )
        initial, truth = truth[:, 0], truth[..., :observable]
    else:
        initial = model.with_conditions(truth[:, 0], conditions)
    steps = (truth.shape[1] - 1) * steps_between_frames
    if steps > LONG_ROLLOUT:
        frames = predict_frames(
            model, initial, steps, every=steps_between_frames, key=key, progress=progress
        )
        prediction = np.stack(list(frames), axis=1)
    else:
        prediction = predict(model, initial, steps, every=steps_between_frames, key=key)
    if not allow_diverged:
        require_finite(prediction, steps_between_frames, "the model's rollout", dims=dims)
    persistence = np.broadcast_to(truth[:, :1], truth.shape)
    lattice = tuple(range(2, 2 + dims))
    spatial_mean = np.broadcast_to(truth.mean(axis=lattice, keepdims=True), truth.shape)
    metrics = {
        "nca": frame_metrics(prediction, truth, dims),
        "persistence": frame_metrics(persistence, truth, dims),
        "spatial_mean": frame_metrics(spatial_mean, truth, dims),
    }
    return Evaluation(steps_between_frames, prediction, metrics)


def write_evaluation(
    evaluation: Evaluation,
    truth: np.ndarray,
    folder: str | os.PathLike,
    *,
    video: str | os.PathLike | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Write ``evaluation.json`` and ``evaluation.png`` (truth | NCA | difference) in ``folder``,
    and the same as a video at ``video``; return the JSON report. ``truth`` is the first
    true trajectory ``(T, H, W, C)`` (the figure shows it)."""
    folder = Path(folder)
    report = evaluation.to_json()
    prediction, t = evaluation.prediction[0], evaluation.steps_between_frames
    dims = np.ndim(truth) - 2
    if dims == 1:  # one space-time image each, time down
        if video is not None:
            raise ValueError("a 1-D trajectory has no video; its figure is a space-time image")
        lines = as_pictures(truth, 1), as_pictures(prediction, 1)
        heading = f"{title}: " if title else ""
        steps = [(len(truth) - 1) * t]
        viz.comparison_figure(
            *lines, steps, folder / "evaluation.png", title=f"{heading}time down, space across"
        )
    else:  # a volume as middle slices and maximum projections
        truth, prediction = as_pictures(truth, dims), as_pictures(prediction, dims)
        viz.evaluation_figure(truth, prediction, t, folder / "evaluation.png", title=title)
        if video is not None:
            viz.comparison_video(truth, prediction, t, video)
    write_text(folder / "evaluation.json", json.dumps(report, indent=2))
    return report
