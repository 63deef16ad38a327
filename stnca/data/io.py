"""Reading and writing trajectories and states as ``.npy`` files (never with pickle).

A trajectory file holds float32 ``(T, H, W, C)``, or ``(R, T, H, W, C)`` for ``R``
trajectories: channel-last, frames equally spaced in time, frame 0 the initial state.
A states file (initial conditions) holds ``(H, W, C)`` or ``(R, H, W, C)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from .._files import atomic_path


def check_regular_file(path: Path, what: str, kind: str) -> Path:
    """Refuse a missing path, a folder, or anything that is not a regular file (a FIFO or a
    device would block or never end), naming ``what`` and the path."""
    if not path.exists():
        raise ValueError(f"{what} not found: {path}")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not {kind}")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a regular file (a pipe or a device?)")
    return path


def read_npy_header(handle, what: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, offset of the data)`` from the ``.npy`` header at ``handle``'s start,
    read without touching the data (``what`` names the array in the error)."""
    try:
        version = np.lib.format.read_magic(handle)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(handle)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{what} has a damaged .npy header ({error})") from None
    return shape, dtype, handle.tell()


def load_array(
    path: str | os.PathLike, what: str = "array file", mmap_mode: Literal["r"] | None = None
) -> np.ndarray:
    """Load a ``.npy`` file without pickle, with one-line errors for the usual mistakes.

    The header is read first: a file that is not ``.npy``, holds objects, or claims more
    data than it contains is refused before anything is allocated. ``mmap_mode="r"`` maps
    the file instead of reading it (only what is indexed is read).
    """
    path = check_regular_file(Path(path), what, "a .npy file")
    with open(path, "rb") as handle:
        start = handle.read(6)
        if start[:2] == b"PK":
            raise ValueError(f"{what} {path} holds several arrays (.npz); give one .npy array")
        if start != b"\x93NUMPY":
            raise ValueError(f"{what} {path} is not a .npy array file")
        handle.seek(0)
        shape, dtype, offset = read_npy_header(handle, f"{what} {path}")
    if dtype.hasobject:
        raise ValueError(f"{what} {path} holds Python objects, not numbers; give a numeric array")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if path.stat().st_size - offset < expected:
        raise ValueError(
            f"{what} {path} is truncated: its header claims shape {shape} ({expected:_} bytes) "
            f"but the file holds {path.stat().st_size - offset:_}"
        )
    try:
        return np.load(path, allow_pickle=False, mmap_mode=mmap_mode)
    except (ValueError, OSError, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{what} {path} is not a readable .npy array ({reason})") from None


def _check_values(array: np.ndarray, path, what: str) -> np.ndarray:
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{what} {path} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{what} {path} holds {int(bad.sum())} non-finite value(s) (NaN or inf)")
    return array


_LATTICE_AXES = {1: "X", 2: "H, W", 3: "D, H, W"}


def _load_shaped(
    path, what: str, channels: int | None, ndims: tuple[int, int], axes: str, dims: int = 2
):
    """Load an array of ``ndims`` dimensions laid out as ``([R,] axes)`` with ``channels``
    (``dims`` lattice axes just before the channels)."""
    array = load_array(path, what)
    if array.ndim not in ndims or (channels is not None and array.shape[-1] != channels):
        wanted = axes.replace("C", "C" if channels is None else str(channels))
        raise ValueError(
            f"{what} {path} must have shape ({wanted}) or (R, {wanted}), got {array.shape}"
        )
    if array.ndim in ndims and array.shape[-1] == 0:
        raise ValueError(f"{what} {path} has no channels (shape {array.shape})")
    if min(array.shape[-1 - dims : -1]) < 3:
        smallest = "x".join(["3"] * dims)
        raise ValueError(
            f"{what} {path}: the lattice must be at least {smallest}, got {array.shape}"
        )
    return array


def load_states(
    path: str | os.PathLike,
    channels: int | None = None,
    what: str = "initial-state file",
    dims: int = 2,
) -> np.ndarray:
    """Load ``(H, W, C)`` or ``(R, H, W, C)`` states as float32.

    Args:
        path: the ``.npy`` file.
        channels: the number of channels required, if any.
        what: how to call the file in error messages.
        dims: the lattice's dimension (default 2; 1: ``(X, C)``, 3: ``(D, H, W, C)``).
    """
    axes = f"{_LATTICE_AXES[dims]}, C"
    array = _load_shaped(path, what, channels, (dims + 1, dims + 2), axes, dims)
    return _check_values(array, path, what)


def load_trajectory(
    path: str | os.PathLike,
    channels: int | None = None,
    what: str = "trajectory file",
    dims: int = 2,
) -> np.ndarray:
    """Load a trajectory file as float32 ``(R, T, H, W, C)`` (a 4-D file gets ``R = 1``).

    Args:
        path: the ``.npy`` file.
        channels: the number of channels required, if any.
        what: how to call the file in error messages.
        dims: the lattice's dimension (default 2): a 1-D file is ``([R,] T, X, C)``, a 3-D
            one ``([R,] T, D, H, W, C)``.
    """
    axes = f"T, {_LATTICE_AXES[dims]}, C"
    array = _load_shaped(path, what, channels, (dims + 2, dims + 3), axes, dims)
    if array.shape[-2 - dims] < 2:
        raise ValueError(f"{what} {path} must hold at least 2 frames, got {array.shape[-2 - dims]}")
    array = _check_values(array, path, what)
    return array if array.ndim == dims + 3 else array[None]


def save_array(path: str | os.PathLike, array) -> Path:
    """Write ``array`` as float32 ``.npy`` atomically (no partial file on failure)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return path
