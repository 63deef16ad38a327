"""Turn a config's [data] table into training trajectories ``y`` of shape (R, M+1, H, W, C).

``training_data`` builds the *base* data once (simulated, read from a file, or an embedded
image sequence); it is what a run saves as ``train_data.npy``. ``validation_data`` gives
the trajectories held back to score models (``validation_data.npy``), if any.
``TrainingData`` turns the base into the trajectories of a given epoch: the base itself,
or, for images, ``copies`` randomly transformed copies of it, redrawn every ``redraw_every`` epochs.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._resources import check_memory
from ..data import gray_scott
from ..data.augment import augmented_copies, embed, measurement_noise
from ..data.images import image_sequence
from ..data.importers import read_source, split_spec
from ..data.initial_volumes import initial_state
from ..data.io import load_trajectory
from .config import Config, FileData, GrayScottData, ImageData, PdeData


def gray_scott_trajectories(
    data: GrayScottData, every: int, conditions: tuple[str, ...] = (), dims: int = 2
) -> np.ndarray:
    """Simulate ``data.trajectories`` Gray-Scott runs, one frame every ``every`` steps, at
    each of the data's parameter points (``GrayScottData.parameter_points``).

    With ``conditions`` (names of Gray-Scott parameters) the frames carry each point's
    values of them as constant trailing channels: ``(R, M + 1, S, S, 2 + K)``, the points'
    trajectories one after another. Without, the one point's ``(R, M + 1, S, S, 2)``.
    ``dims``: the lattice's dimension (``S`` once per lattice axis; default 2).
    """
    if data.steps % every:
        raise ValueError(
            f"data.steps ({data.steps}) must be a multiple of the frame interval ({every})"
        )
    points = data.parameter_points(conditions)
    total = data.trajectories * len(points)
    check_memory(
        total * (data.steps // every + 2) * data.size**dims * (2 + len(conditions)),
        f"simulating {total} Gray-Scott trajectories of {'x'.join([str(data.size)] * dims)}",
    )
    runs = []
    for i, params in enumerate(points):
        key = jax.random.key(data.seed)
        if len(points) > 1:  # each point from its own initial conditions
            key = jax.random.fold_in(key, i)
        initial = _initial_conditions(data, key, dims)
        simulated = gray_scott.simulate(initial, data.steps, every=every, params=params, dims=dims)
        frames = np.asarray(simulated)
        if not np.all(np.isfinite(frames)):
            raise ValueError("the Gray-Scott simulation diverged; lower data.dt")
        if conditions:
            values = np.array([getattr(params, name) for name in conditions], np.float32)
            frames = np.concatenate(
                [frames, np.broadcast_to(values, frames.shape[:-1] + values.shape)], axis=-1
            )
        runs.append(frames.astype(np.float32))
    return np.concatenate(runs)


def pde_trajectories(data: PdeData, dims: int = 2) -> np.ndarray:
    """Simulate ``data.trajectories`` runs of the data's zoo system (``stnca.data.systems``)
    on a ``dims``-dimensional lattice: float32 ``(R, M + 1, S, S, C)`` in 2-D."""
    from ..data import systems

    steps, every = data.frames()
    return systems.simulate_systems(
        data.system_parameters(),
        data.initial_condition,
        steps,
        every=every,
        dims=dims,
        size=data.size,
        batch=data.trajectories,
        key=jax.random.key(data.seed),
    )


def _initial_conditions(data: GrayScottData, key, dims: int = 2) -> jax.Array:
    """``data.trajectories`` initial conditions, trajectory ``r`` from the family
    ``data.families[r % len(data.families)]`` with the ``r``-th key of ``split(key)``."""
    families = data.families
    if len(families) == 1:
        return initial_state(families[0], data.size, dims, key=key, batch=data.trajectories)
    keys = jax.random.split(key, data.trajectories)
    return jnp.stack(
        [
            initial_state(families[r % len(families)], data.size, dims, key=keys[r])
            for r in range(data.trajectories)
        ]
    )


def _file_trajectories(config: Config) -> tuple[np.ndarray, np.ndarray | None]:
    """The file's trajectories split into (training, held back)."""
    data = config.data
    file, inside = split_spec(data.path)
    path = config.resolve(str(file))
    dims = config.model.dimensions
    if path.suffix.lower() == ".npy":
        y = load_trajectory(path, what="data.path", dims=dims)
    elif dims != 2:
        raise ValueError(
            f"model.dimensions = {dims}: data.path must be a .npy trajectory file (convert "
            f"other formats with `stnca import`), got {data.path}"
        )
    else:  # TIFF, HDF5, video, a folder of images, .npz: as `stnca import` reads them
        y = read_source(path if inside is None else f"{path}:{inside}").trajectories
    held = data.validation_trajectories
    if not held:
        return y, None
    if held >= y.shape[0]:
        raise ValueError(
            f"data.validation_trajectories ({held}) must be smaller than the number of "
            f"trajectories in {data.path} ({y.shape[0]})"
        )
    return y[:-held], y[-held:]


def observable_channels(config: Config, channels: int) -> int:
    """The observable channels of data with ``channels`` channels: all of them, or all but
    the last one per ``model.conditions`` (refused when that leaves none)."""
    names = config.model.conditions
    if channels - len(names) < 1:
        raise ValueError(
            f"model.conditions names {len(names)} conditions but the data have {channels} "
            f"channels: a conditioned model's data hold the observable channels, then one "
            f"channel per condition ({', '.join(names)})"
        )
    return channels - len(names)


def _with_noise(config: Config, y: np.ndarray, stream: int) -> np.ndarray:
    """Measurement noise on the observable channels (a model's conditions are exact)."""
    data = config.data
    observable = observable_channels(config, y.shape[-1])
    if data.noise:
        noise_key = jax.random.fold_in(jax.random.key(data.seed), stream)
        noisy = np.asarray(measurement_noise(y[..., :observable], data.noise, key=noise_key))
        y = np.concatenate([noisy, y[..., observable:]], axis=-1)
    return y.astype(np.float32)


def validation_data(config: Config) -> np.ndarray | None:
    """Trajectories held back from training, float32 (R_val, M+1, H, W, C), or ``None``.

    Gray-Scott and zoo systems: ``data.validation_trajectories`` more simulations from the
    same family of initial conditions with another seed. File: the file's last
    trajectories. The same measurement noise as the training data (another draw).
    """
    data = config.data
    if isinstance(data, GrayScottData) and data.validation_trajectories:
        every = data.every or config.training.steps_between_frames
        held = dataclasses.replace(
            data,
            trajectories=data.validation_trajectories,
            seed=int(jax.random.randint(jax.random.key(data.seed), (), 0, 2**31 - 1)),
        )
        held_y = gray_scott_trajectories(
            held, every, config.model.conditions, config.model.dimensions
        )
        return _with_noise(config, held_y, 2)
    if isinstance(data, PdeData) and data.validation_trajectories:
        held_pde = dataclasses.replace(
            data,
            trajectories=data.validation_trajectories,
            seed=int(jax.random.randint(jax.random.key(data.seed), (), 0, 2**31 - 1)),
        )
        return _with_noise(config, pde_trajectories(held_pde, config.model.dimensions), 2)
    if isinstance(data, FileData):
        held_file = _file_trajectories(config)[1]
        return None if held_file is None else _with_noise(config, held_file, 2)
    return None


def training_data(config: Config) -> np.ndarray:
    """The base training data, float32 (R, M+1, H, W, C), measurement noise applied.

    For images, R = 1: the embedded sequence, from which ``TrainingData`` makes copies.
    """
    data = config.data
    if isinstance(data, GrayScottData):
        every = data.every or config.training.steps_between_frames
        y = gray_scott_trajectories(data, every, config.model.conditions, config.model.dimensions)
    elif isinstance(data, PdeData):
        y = pde_trajectories(data, config.model.dimensions)
    elif isinstance(data, FileData):
        y = _file_trajectories(config)[0]
    elif isinstance(data, ImageData):
        if config.model.dimensions != 2:
            raise ValueError(
                f"model.dimensions = {config.model.dimensions}: image data are 2-D; "
                f"set model.dimensions = 2"
            )
        sequence = image_sequence(data.images, data.size, data.final_repeats, config.base_dir)
        return np.asarray(embed(sequence, data.padding))[None]
    else:  # pragma: no cover - guarded by the config loader
        raise ValueError(f"unsupported data source {data.source!r}")
    return _with_noise(config, y, 1)


class TrainingData:
    """The trajectories to train on at each epoch, made from the base data.

    Args:
        config: the run's configuration.
        base: the base data from ``training_data`` (or a run's saved ``train_data.npy``).
    """

    def __init__(self, config: Config, base: np.ndarray):
        self.config, self.base = config, np.asarray(base, np.float32)
        self._cache: tuple[int, np.ndarray] | None = None

    @property
    def augment_noise(self) -> float:
        """Per-epoch noise augmentation ``a`` of the data (0 for PDE data)."""
        return getattr(self.config.data, "augment_noise", 0.0)

    def draw(self, epoch: int) -> int:
        """Which random draw of the copies epoch ``epoch`` (from 1) trains on."""
        data = self.config.data
        if not isinstance(data, ImageData) or not data.redraw_every:
            return 0
        return (max(epoch, 1) - 1) // data.redraw_every

    def trajectories(self, epoch: int) -> np.ndarray:
        """The trajectories ``y`` (R, M+1, H, W, C) of epoch ``epoch``."""
        data = self.config.data
        if not isinstance(data, ImageData):
            return self.base
        draw = self.draw(epoch)
        if self._cache is None or self._cache[0] != draw:
            key = jax.random.fold_in(jax.random.key(data.seed), draw)
            copies = augmented_copies(
                self.base[0],
                data.copies,
                key=key,
                max_shift=data.shift,
                rotation=data.rotate,
                flips=data.flip,
            )
            self._cache = (draw, np.asarray(copies))
        return self._cache[1]
