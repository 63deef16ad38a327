"""What an analysis starts from: a trained model's initial condition and its data range.

An initial condition is a ``.npy`` state ``(H, W, C)`` in physical units, an image file or
``emoji:NAME``. Images are resized to ``image_size`` and embedded with ``padding`` empty
cells, by default as in the run the model came from (its folder's ``config.toml``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._validate import count
from ..data.augment import embed
from ..data.images import EMOJI_PREFIX, load_image, resolve_image
from ..data.io import load_states, load_trajectory
from ..model import NCA
from ..serialization import resolve_model


def run_config(model: str | os.PathLike):
    """The training config of a model: ``config.toml`` beside a model file (a training run's
    folder), or ``NAME.toml`` beside a shipped model; ``None`` if there is none."""
    from ..train import load_config
    from ..train.run_folder import CONFIG_FILE

    path = resolve_model(model)
    for candidate in (path.parent / CONFIG_FILE, path.with_suffix(".toml")):
        if candidate.is_file():
            return load_config(candidate)
    return None


def image_data(config):
    """The ``[data]`` section of an image-morphing config (``ImageData``), else ``None``."""
    from ..train.config import ImageData

    data = getattr(config, "data", None)
    return data if isinstance(data, ImageData) else None


def load_initial(
    spec: str | os.PathLike,
    model: NCA,
    *,
    config=None,
    image_size: int | None = None,
    padding: int | None = None,
) -> np.ndarray:
    """The observable initial state ``(H, W, C)`` in physical units.

    Args:
        spec: a ``.npy`` file (one state; for ``(R, H, W, C)`` the first), an image file or
            ``emoji:NAME``.
        model: the model it is for (its observable channels are checked).
        config: the model's training config, for the image size and padding of image runs.
        image_size: resize images to this (default: the config's ``data.size``, else the
            image's own size).
        padding: empty cells around an image (default: the config's ``data.padding``, else 0).
    """
    text = str(spec)
    if image_size is not None:  # 0 would mean an image's native size: a silent, slow surprise
        count(image_size, "image_size", 1)
    if padding is not None:
        count(padding, "padding", 0)
    if text.lower().endswith(".npy"):
        states = load_states(
            text, channels=model.observable_channels, what="init", dims=model.dimensions
        )
        return states if states.ndim == model.dimensions + 1 else states[0]
    if model.observable_channels != 4:
        raise ValueError(
            f"init {text} is an image (RGBA) but the model has "
            f"{model.observable_channels} observable channels; give a .npy state"
        )
    images = image_data(config)
    if image_size is None and images is not None:
        image_size = images.size
    if padding is None:
        padding = images.padding if images is not None else 0
    if not text.startswith(EMOJI_PREFIX) and not Path(text).is_file():
        raise ValueError(f"init {text}: no such file (give a .npy, an image or emoji:NAME)")
    image = load_image(resolve_image(text), image_size or 0)
    return np.asarray(embed(image, padding))


def data_bounds(model: NCA, initial: np.ndarray) -> tuple[float, float]:
    """The data range in model units that perturbations keep to.

    ``[0, 1]`` for a model with a scaling (min-max scaled data) and for RGB(A) models (image
    colours); otherwise the range of the (encoded) initial condition, widened to ``[0, 1]``
    when it lies inside it. Used by the analyses and by the web page's noise tool.
    """
    if model.scaling is not None or model.observable_channels in (3, 4):
        return (0.0, 1.0)
    low, high = float(np.min(initial)), float(np.max(initial))
    return (min(low, 0.0), max(high, 1.0)) if 0.0 <= low and high <= 1.0 else (low, high)


def gray_scott_partner(config, steps: int, log=print):
    """``(step, pde_steps, name)``: the Gray-Scott PDE a model's data came from, to analyse
    beside it for ``steps`` NCA steps; ``None`` for other data, or when ``steps`` NCA steps
    are not a whole number of PDE steps (said through ``log``)."""
    import functools

    from ..data import gray_scott

    if config is None or config.data.source != "gray_scott":
        return None
    data, t = config.data, config.training.steps_between_frames
    every = data.every or t
    if (steps * every) % t:
        log(
            f"note: {steps} NCA steps are not a whole number of PDE steps ({every} per {t}); "
            "the PDE is not perturbed"
        )
        return None
    step = functools.partial(gray_scott.step, params=data.params())
    return (step, steps * every // t, "Gray-Scott")


def image_sequence_of(config) -> np.ndarray | None:
    """The embedded image sequence ``(images, H, W, 4)`` (each image once, physical units) of
    an image-morphing config, else ``None``."""
    images = image_data(config)
    if images is None:
        return None
    from ..data.images import image_sequence

    sequence = image_sequence(images.images, images.size, 1, base_dir=config.base_dir)
    return np.asarray(embed(sequence, images.padding))


def parts_trajectory(model: NCA, config, truth, steps_between_frames):
    """The trajectory a model's parts are measured on (``stnca inspect``, ``stnca prune``):
    ``(truth (T, H, W, observable), NCA steps per frame, description)`` from the ``truth``
    file (``steps_between_frames`` NCA steps per frame), else for a Gray-Scott config the
    unseen test (``high_frequency``, seed 2024) on its lattice to its horizon, for an image
    config its image sequence, else ``None``."""
    if truth is not None:
        if steps_between_frames is None or steps_between_frames < 1:
            raise ValueError("steps_between_frames must be given (>= 1) with truth")
        frames = load_trajectory(
            truth, channels=model.observable_channels, what="truth", dims=model.dimensions
        )[0]
        return frames, steps_between_frames, str(truth)
    frames = image_sequence_of(config)
    if frames is not None:  # the image sequence the model morphs through
        t = config.training.steps_between_frames
        return frames, t, f"its image sequence ({', '.join(config.data.images)})"
    if config is None or config.data.source != "gray_scott":
        return None
    from ..data import gray_scott
    from ..data.initial_conditions import unseen_initial_condition

    data, t = config.data, config.training.steps_between_frames
    initial = unseen_initial_condition(data.size)
    frames = gray_scott.simulate(initial, data.steps, every=data.every or t, params=data.params())
    return np.asarray(frames), t, f"the unseen test (high_frequency, {data.size}x{data.size})"
