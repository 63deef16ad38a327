"""Reading and writing trajectories and states as ``.npy`` files (never with pickle).

A trajectory file holds float32 ``(T, H, W, C)``, or ``(R, T, H, W, C)`` for ``R``
trajectories: channel-last, frames equally spaced in time, frame 0 the initial state.
A states file (initial conditions) holds ``(H, W, C)`` or ``(R, H, W, C)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._files import atomic_path


def load_array(path: str | os.PathLike, what: str = "array file") -> np.ndarray:
    """Load a ``.npy`` file without pickle, with one-line errors for the usual mistakes."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{what} not found: {path}")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not a .npy file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{what} {path} is not a readable .npy array ({reason})") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{what} {path} holds several arrays (.npz); give one .npy array")
    return array


def _check_values(array: np.ndarray, path, what: str) -> np.ndarray:
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{what} {path} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{what} {path} holds {int(bad.sum())} non-finite value(s) (NaN or inf)")
    return array


def _load_shaped(path, what: str, channels: int | None, ndims: tuple[int, int], axes: str):
    """Load an array of ``ndims`` dimensions laid out as ``([R,] axes)`` with ``channels``."""
    array = load_array(path, what)
    if array.ndim not in ndims or (channels is not None and array.shape[-1] != channels):
        wanted = axes.replace("C", "C" if channels is None else str(channels))
        raise ValueError(
            f"{what} {path} must have shape ({wanted}) or (R, {wanted}), got {array.shape}"
        )
    if min(array.shape[-3:-1]) < 3:
        raise ValueError(f"{what} {path}: the lattice must be at least 3x3, got {array.shape}")
    return array


def load_states(
    path: str | os.PathLike, channels: int | None = None, what: str = "initial-state file"
) -> np.ndarray:
    """Load ``(H, W, C)`` or ``(R, H, W, C)`` states as float32.

    Args:
        path: the ``.npy`` file.
        channels: the number of channels required, if any.
        what: how to call the file in error messages.
    """
    array = _load_shaped(path, what, channels, (3, 4), "H, W, C")
    return _check_values(array, path, what)


def load_trajectory(
    path: str | os.PathLike, channels: int | None = None, what: str = "trajectory file"
) -> np.ndarray:
    """Load a trajectory file as float32 ``(R, T, H, W, C)`` (a 4-D file gets ``R = 1``).

    Args:
        path: the ``.npy`` file.
        channels: the number of channels required, if any.
        what: how to call the file in error messages.
    """
    array = _load_shaped(path, what, channels, (4, 5), "T, H, W, C")
    if array.shape[-4] < 2:
        raise ValueError(f"{what} {path} must hold at least 2 frames, got {array.shape[-4]}")
    array = _check_values(array, path, what)
    return array if array.ndim == 5 else array[None]


def save_array(path: str | os.PathLike, array) -> Path:
    """Write ``array`` as float32 ``.npy`` atomically (no partial file on failure)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return path
