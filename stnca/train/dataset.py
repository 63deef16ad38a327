"""Turn a config's [data] table into training trajectories ``y`` of shape (R, M+1, H, W, C)."""

from __future__ import annotations

import jax
import numpy as np

from ..data import gray_scott
from ..data.augment import measurement_noise
from ..data.initial_conditions import initial_condition
from ..data.io import load_trajectory
from .config import Config, FileData, GrayScottData


def gray_scott_trajectories(data: GrayScottData, every: int) -> np.ndarray:
    """Simulate ``data.trajectories`` Gray-Scott runs, one frame every ``every`` steps."""
    if data.steps % every:
        raise ValueError(
            f"data.steps ({data.steps}) must be a multiple of the frame interval ({every})"
        )
    params = gray_scott.GrayScottParams(
        data.diffusion_a, data.diffusion_b, data.alpha, data.gamma, data.dt
    )
    initial = initial_condition(
        data.initial_condition, data.size, key=jax.random.key(data.seed), batch=data.trajectories
    )
    frames = np.asarray(gray_scott.simulate(initial, data.steps, every=every, params=params))
    if not np.all(np.isfinite(frames)):
        raise ValueError("the Gray-Scott simulation diverged; lower data.dt")
    return frames


def training_data(config: Config) -> np.ndarray:
    """The training trajectories ``y``, float32 (R, M+1, H, W, C), measurement noise applied."""
    data = config.data
    if isinstance(data, GrayScottData):
        every = data.every or config.training.steps_between_frames
        y = gray_scott_trajectories(data, every)
    elif isinstance(data, FileData):
        y = load_trajectory(config.resolve(data.path), what="data.path")
    else:  # pragma: no cover - guarded by the config loader
        raise ValueError(f"unsupported data source {data.source!r}")
    if data.noise:
        noise_key = jax.random.fold_in(jax.random.key(data.seed), 1)
        y = np.asarray(measurement_noise(y, data.noise, key=noise_key))
    return y.astype(np.float32)
