"""What to keep of a source (``Selection``), what was read (``Imported``), and the pipeline
every reader ends in: axes checked, the region read, channels picked, frames resized, values
normalised, to float32 ``(R, T, H, W, C)`` (``(R, T, Z, H, W, C)`` for a Z-stack read as a
volume)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..._resources import check_memory

TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
VIDEO_SUFFIXES = (".mp4", ".gif", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
FORMATS = "TIFF, HDF5 (.h5), video (.mp4, .gif, .avi, ...), .npz, .npy or a folder of images"
GREY = ("grey", "gray")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""ITU-R BT.601 weights of R, G, B in the grey value of a colour frame."""


@dataclasses.dataclass(frozen=True)
class Selection:
    """What to keep of a source, applied in this order.

    Args:
        trajectories: ``(start, stop)`` of the trajectory axis (``None``: all).
        frames: ``(start, stop)`` of the time axis, before the stride (``None``: all).
        every: keep every ``every``-th frame of those.
        z: the depth slice of a source with a ``Z`` axis (required there, unless ``volume``).
        volume: keep a ``Z`` axis whole, as the depth of a volume: ``(R, T, Z, H, W, C)``
            (TZCYX -> (T, Z, Y, X, C)), the data of an NCA with ``dimensions = 3``.
        crop: ``(y0, y1, x0, x1)`` rows and columns kept (``None``: all).
        channels: channel names (HDF5 group datasets, .npz arrays), indices (``"0"``,
            ``"2"``) or ``grey`` (the luminance of RGB frames); ``None``: all.
        resize: ``(height, width)`` of the output lattice (``None``: unchanged).
        normalise: ``"none"`` (values as read) or ``"minmax"`` (each channel to ``[0, 1]``
            by its minimum and maximum over all trajectories and frames).
        axes: the axes letters of an array source, overriding the default for its rank.
    """

    trajectories: tuple[int | None, int | None] | None = None
    frames: tuple[int | None, int | None] | None = None
    every: int = 1
    z: int | None = None
    volume: bool = False
    crop: tuple[int, int, int, int] | None = None
    channels: tuple[str, ...] | None = None
    resize: tuple[int, int] | None = None
    normalise: str = "none"
    axes: str | None = None

    def __post_init__(self):
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.normalise not in ("none", "minmax"):
            raise ValueError(f"normalise must be none or minmax, got {self.normalise!r}")
        if self.volume and self.z is not None:
            raise ValueError("give either z (one slice) or volume (every slice), not both")
        if self.volume and self.resize is not None:
            raise ValueError("resize applies to 2-D frames; it cannot resize volumes")
        if self.resize is not None and min(self.resize) < 3:
            raise ValueError(f"resize must be at least 3x3, got {self.resize}")
        if self.crop is not None:
            y0, y1, x0, x1 = self.crop
            if min(self.crop) < 0 or y1 - y0 < 3 or x1 - x0 < 3:
                raise ValueError(f"crop must keep at least 3x3 cells, got {self.crop}")
        if self.axes is not None:
            axes = self.axes.upper()
            if sorted(set(axes)) != sorted(axes) or not set(axes) <= set("RTZYXC"):
                raise ValueError(f"axes must be distinct letters of RTZYXC, got {self.axes!r}")
            if not {"T", "Y", "X"} <= set(axes):
                raise ValueError(f"axes must include T, Y and X, got {self.axes!r}")


@dataclasses.dataclass(frozen=True)
class Imported:
    """A source read as a trajectory set, and what it was."""

    trajectories: np.ndarray
    """Float32 ``(R, T, H, W, C)``, or ``(R, T, Z, H, W, C)`` for a volume."""
    source: str
    """The format and the axes as found, e.g. ``TIFF, axes TCYX, shape (12, 2, 64, 64)``."""
    channel_names: tuple[str, ...]
    raw_dtype: str

    def describe(self) -> str:
        """One line: what was read and what it became."""
        y = self.trajectories
        low, high = float(y.min()), float(y.max())
        layout = "(R, T, Z, H, W, C)" if y.ndim == 6 else "(R, T, H, W, C)"
        return (
            f"{self.source}, {self.raw_dtype} -> {layout} = {y.shape}, "
            f"channels {', '.join(self.channel_names)}, values in [{low:.4g}, {high:.4g}]"
        )


def _normalised(imported: Imported, normalise: str) -> Imported:
    """``minmax``: each channel to [0, 1] by its minimum and maximum over everything read."""
    if normalise != "minmax":
        return imported
    array = imported.trajectories
    every_cell = tuple(range(array.ndim - 1))
    low = array.min(axis=every_cell, keepdims=True)
    high = array.max(axis=every_cell, keepdims=True)
    scaled = ((array - low) / np.where(high > low, high - low, 1.0)).astype(np.float32)
    return dataclasses.replace(imported, trajectories=scaled)


def _fields_picked(selection: Selection) -> Selection:
    """Channel names have picked the fields (datasets, arrays): none are left to pick."""
    channels = selection.channels
    if channels is not None and not all(c.isdigit() or c in GREY for c in channels):
        return dataclasses.replace(selection, channels=None)
    return selection


# --- selection -----------------------------------------------------------------------


def natural_key(path: Path) -> list:
    """Sort key putting ``frame_2`` before ``frame_10`` (numbers compared as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _default_axes(ndim: int, path: Path, table: dict[int, str]) -> str:
    if ndim not in table:
        raise ValueError(
            f"{path}: a {ndim}-D array; give its axes (e.g. axes TYXC) as letters of RTZYXC"
        )
    return table[ndim]


def _check_axes(axes: str, shape: tuple[int, ...], path: Path) -> str:
    axes = axes.upper()
    if len(axes) != len(shape):
        raise ValueError(f"{path}: axes {axes} do not match the shape {shape}")
    unknown = sorted(set(axes) - set("RTZYXC"))
    if unknown:
        raise ValueError(
            f"{path}: axes {axes} include {''.join(unknown)}, which stnca cannot place; "
            "give axes with letters of RTZYXC (R trajectories, T time, Z depth, C channels)"
        )
    if len(set(axes)) != len(axes):
        raise ValueError(f"{path}: axes {axes} repeat a letter (merge them first)")
    for needed in "TYX":
        if needed not in axes:
            what = "time" if needed == "T" else "lattice"
            hint = f"; if its first axis is time, give axes T{axes[1:]}" if needed == "T" else ""
            raise ValueError(f"{path}: axes {axes} have no {needed} ({what}) axis{hint}")
    return axes


def _region(axes: str, shape: tuple[int, ...], selection: Selection, path: Path) -> tuple:
    """The index (one entry per axis) selecting trajectories, frames, depth and crop."""
    index: list[Any] = []
    for axis, size in zip(axes, shape, strict=True):
        if axis == "R":
            index.append(slice(*(selection.trajectories or (None, None))))
        elif axis == "T":
            index.append(slice(*(selection.frames or (None, None)), selection.every))
        elif axis == "Z" and selection.volume:
            index.append(slice(None))
        elif axis == "Z":
            if selection.z is None:
                raise ValueError(
                    f"{path} is a Z-stack ({size} slices, axes {axes}): choose one slice with "
                    "z = K, or read it as a volume (volume = true)"
                )
            if not 0 <= selection.z < size:  # no negative index: -1 is not "the last"
                raise ValueError(
                    f"{path}: z = {selection.z} is outside its {size} Z slices (0 to {size - 1})"
                )
            index.append(selection.z)
        elif axis in "YX" and selection.crop is not None:
            low, high = selection.crop[:2] if axis == "Y" else selection.crop[2:]
            if high > size:
                raise ValueError(f"{path}: crop {low}:{high} goes beyond its {size} {axis} cells")
            index.append(slice(low, high))
        else:
            index.append(slice(None))
    if selection.z is not None and "Z" not in axes:
        raise ValueError(f"{path} has no Z axis (axes {axes}); leave out z")
    if selection.volume and "Z" not in axes:
        raise ValueError(f"{path} has no Z axis (axes {axes}) to read as a volume")
    return tuple(index)


def _kept_axes(axes: str, region: tuple) -> str:
    return "".join(a for a, i in zip(axes, region, strict=True) if isinstance(i, slice))


def _check_size(region: tuple, shape: tuple[int, ...], axes: str, path: Path, factor=1) -> None:
    kept = 1
    for index, size in zip(region, shape, strict=True):
        kept *= len(range(size)[index]) if isinstance(index, slice) else 1
    check_memory(kept * factor, f"reading {path} (axes {axes}, shape {shape})", copies=3)


def _large(shape: tuple[int, ...]) -> bool:
    return int(np.prod(shape, dtype=np.int64)) > 2**27


def _read_region(dataset, region: tuple) -> np.ndarray:
    """``dataset[region]`` for h5py, which takes no negative steps or starts: made explicit."""
    explicit = tuple(
        slice(*index.indices(size)) if isinstance(index, slice) else index
        for index, size in zip(region, dataset.shape, strict=True)
    )
    return np.asarray(dataset[explicit])


def _pick_named(names: list[str], channels: tuple[str, ...] | None, where: str) -> list[str]:
    """The datasets / arrays named by ``channels`` (in that order), else all of them."""
    if not names:
        raise ValueError(f"{where}: no datasets in it")
    if channels is None or all(c.isdigit() or c in GREY for c in channels):
        return names
    missing = [c for c in channels if c not in names]
    if missing:
        raise ValueError(f"{where}: no field {', '.join(missing)}; it holds {', '.join(names)}")
    return list(channels)


def _pixels(image) -> tuple[np.ndarray, str]:
    """One image file's pixels ``(H, W, C)``: grey 1 channel, RGB 3, RGBA 4; 8- and 16-bit
    values scaled to ``[0, 1]``, 32-bit integer and float images as stored."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(image, np.float32)[..., None] / 65535.0, mode
    if mode in ("I", "F"):
        return np.asarray(image, np.float32)[..., None], mode
    if mode == "L":
        return np.asarray(image, np.float32)[..., None] / 255.0, mode
    transparent = mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    converted = image.convert("RGBA" if transparent else "RGB")
    return np.asarray(converted, np.float32) / 255.0, converted.mode


def _unit_range(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    return array.astype(np.float32)


def _finish(
    path: Path,
    source: str,
    array: np.ndarray,
    axes: str,
    selection: Selection,
    *,
    selected: bool = False,
    names: tuple[str, ...] | None = None,
    dtype: str | None = None,
) -> Imported:
    """Select (unless already done), move the axes to (R, T, Y, X, C), pick channels,
    resize and check the result."""
    dtype = dtype or str(array.dtype)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{path} holds {array.dtype}, not real numbers")
    if not selected:
        axes = _check_axes(axes, array.shape, path) if "F" not in axes else axes
        region = _region(
            axes.replace("F", ""), array.shape[: len(axes.replace("F", ""))], selection, path
        )
        if "F" in axes:
            region = region + (slice(None),)
        array, axes = array[region], _kept_axes(axes, region)
    # fields (F) and channels (C): one channel axis, fields outermost
    if "F" in axes and "C" in axes:
        array = np.moveaxis(array, [axes.index("F"), axes.index("C")], [-2, -1])
        array = array.reshape(*array.shape[:-2], -1)
        axes = axes.replace("F", "").replace("C", "") + "C"
    axes = axes.replace("F", "C")
    single = "R" not in axes
    for missing in "RC":
        if missing not in axes:
            array, axes = array[None], missing + axes
    if single and selection.trajectories is not None:
        array = array[slice(*selection.trajectories)]  # it is one trajectory
        if not array.shape[0]:
            raise ValueError(f"{path} holds one trajectory: trajectories keeps none of it")
    layout = "RTZYXC" if "Z" in axes else "RTYXC"
    array = np.transpose(array, [axes.index(a) for a in layout])
    array = np.asarray(array, np.float32)
    array, channel_names = _pick_channels(array, selection.channels, names, path)
    if array.shape[1] < 2:
        raise ValueError(f"{path}: {array.shape[1]} frame kept; a trajectory needs at least 2")
    if array.shape[0] < 1 or array.shape[-1] < 1:
        raise ValueError(f"{path}: nothing kept (shape {array.shape}); check the selection")
    if selection.resize is not None and selection.resize != array.shape[2:4]:
        array = resize_frames(array, selection.resize)
    lattice = array.shape[2:-1]
    if min(lattice) < 3:
        smallest = "x".join(["3"] * len(lattice))
        raise ValueError(f"{path}: the lattice must be at least {smallest}, got {lattice}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{path} holds {int(bad.sum())} non-finite value(s) (NaN or inf)")
    return Imported(np.ascontiguousarray(array, np.float32), source, channel_names, dtype)


def _pick_channels(
    array: np.ndarray, channels: tuple[str, ...] | None, names: tuple[str, ...] | None, path
) -> tuple[np.ndarray, tuple[str, ...]]:
    count = array.shape[-1]
    if names is not None and len(names) != count and count % len(names) == 0:
        # fields with a channel axis of their own: velocity[0], velocity[1], ...
        per = count // len(names)
        names = tuple(f"{name}[{i}]" for name in names for i in range(per))
    names = names if names is not None and len(names) == count else tuple(map(str, range(count)))
    if channels is None:
        return array, names
    if len(channels) == 1 and channels[0] in GREY:
        if count not in (3, 4):
            raise ValueError(f"{path}: grey needs RGB frames, got {count} channel(s)")
        return (array[..., :3] @ LUMA)[..., None], ("grey",)
    if all(c.isdigit() for c in channels):
        picked = [int(c) for c in channels]
        if max(picked) >= count:
            raise ValueError(f"{path}: channel {max(picked)} requested, it has {count}")
        return array[..., picked], tuple(names[i] for i in picked)
    if all(c in names for c in channels):
        order = [names.index(c) for c in channels]
        return array[..., order], tuple(channels)
    raise ValueError(
        f"{path}: channels {','.join(channels)} does not match its channels "
        f"({', '.join(names)}); give names, indices or grey"
    )


def resize_frames(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize every frame of ``(..., H, W, C)`` to ``size``: area averaging when shrinking
    (as for images), bilinear when enlarging."""
    from PIL import Image

    height, width = size
    frames = int(np.prod(array.shape[:-3], dtype=np.int64)) * array.shape[-1]
    check_memory(frames * height * width, f"resizing to {height}x{width}")
    shrink = height <= array.shape[-3] and width <= array.shape[-2]
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    flat = array.reshape(-1, *array.shape[-3:])
    out = np.empty((flat.shape[0], height, width, flat.shape[-1]), np.float32)
    for i, frame in enumerate(flat):
        for c in range(frame.shape[-1]):
            image = Image.fromarray(np.ascontiguousarray(frame[..., c]), mode="F")
            out[i, ..., c] = np.asarray(image.resize((width, height), method))
    return out.reshape(*array.shape[:-3], height, width, array.shape[-1])


def _optional(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"reading {what} needs {module}: pip install 'stnca[io]'") from None
