"""Users' data as trajectories: TIFF / OME-TIFF, HDF5, videos, folders of images, .npz, .npy.

Every reader yields a lazily sliceable array and the letters of its axes: ``R``
trajectories, ``T`` time, ``Z`` depth, ``Y`` rows, ``X`` columns, ``C`` channels. The
selection (trajectories, frames, stride, depth slice, crop) is applied before reading
where the format allows it (HDF5, uncompressed TIFF, .npy), so a large file costs only what
is kept. Then channels are picked, frames resized and values normalised, giving our
trajectory layout: float32 ``(R, T, H, W, C)``.

Source specifications (``spec``):

- ``movie.tif`` / ``cells.ome.tif``: axes from the file's metadata (tifffile); a ``Z`` axis
  needs ``z`` (one slice), never merged silently. A plain stack without axes metadata
  (``IYX`` / ``QYX``) reads its first axis as time.
- ``run.h5:/t0_fields`` or ``run.h5:/t0_fields/A``: an HDF5 dataset, or a group whose
  datasets of equal shape become the channels (sorted by name, or picked by ``channels``).
  Axes by rank: 3 ``TYX``, 4 ``RTYX`` (The Well's scalar fields, ``(trajectories, time,
  x, y)``), 5 ``RTYXC``. Without a path: the file's only dataset, else ``t0_fields``.
- ``video.mp4`` (``.gif``, ``.avi``, ``.mov``, ``.mkv``, ``.webm``): frames via imageio,
  RGB(A) in ``[0, 1]``.
- a folder of images (PNG, JPEG, TIFF, BMP): one frame per file in natural numeric order
  (``frame_2`` before ``frame_10``); 8-bit values in ``[0, 1]``, 16-bit too.
- ``fields.npz`` or ``fields.npz:name``: one named array, or all arrays of equal shape as
  channels; ``.npy``: one array. Axes by rank: 3 ``TYX``, 4 ``TYXC``, 5 ``RTYXC``.

``axes`` overrides the axes of any array source (e.g. ``"TYXC"`` for a 4-D HDF5 dataset).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._resources import check_memory
from .io import check_regular_file, load_array

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
        z: the depth slice of a source with a ``Z`` axis (required there).
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
    """Float32 ``(R, T, H, W, C)``."""
    source: str
    """The format and the axes as found, e.g. ``TIFF, axes TCYX, shape (12, 2, 64, 64)``."""
    channel_names: tuple[str, ...]
    raw_dtype: str

    def describe(self) -> str:
        """One line: what was read and what it became."""
        y = self.trajectories
        low, high = float(y.min()), float(y.max())
        return (
            f"{self.source}, {self.raw_dtype} -> (R, T, H, W, C) = {y.shape}, "
            f"channels {', '.join(self.channel_names)}, values in [{low:.4g}, {high:.4g}]"
        )


def split_spec(spec: str | Path) -> tuple[Path, str | None]:
    """``file.h5:/inside`` or ``file.npz:name`` -> (file, inside); other specs -> (path, None)."""
    text = str(spec)
    match = re.match(r"^(.*?\.(?:h5|hdf5|hdf|he5|npz)):(.*)$", text, re.IGNORECASE)
    if match and not Path(text).exists():
        return Path(match.group(1)), match.group(2) or None
    return Path(text), None


def read_source(spec: str | Path, selection: Selection = Selection()) -> Imported:
    """Read one source (see the module's docstring) as float32 ``(R, T, H, W, C)``."""
    imported = _read_one(spec, dataclasses.replace(selection, normalise="none"))
    return _normalised(imported, selection.normalise)


def _read_one(spec: str | Path, selection: Selection) -> Imported:
    path, inside = split_spec(spec)
    if not path.exists():
        raise ValueError(f"{path}: not found")
    name = path.name.lower()
    if path.is_dir():
        return _read_folder(path, selection)
    check_regular_file(path, "data file", "a data file")
    if inside is not None and not name.endswith((".npz", *HDF5_SUFFIXES)):
        raise ValueError(f"{spec}: only HDF5 and .npz files take a ':path' inside them")
    if name.endswith(TIFF_SUFFIXES):
        return _read_tiff(path, selection)
    if name.endswith(HDF5_SUFFIXES):
        return _read_hdf5(path, inside, selection)
    if name.endswith(VIDEO_SUFFIXES):
        return _read_video(path, selection)
    if name.endswith(".npz"):
        return _read_npz(path, inside, selection)
    if name.endswith(".npy"):
        array = load_array(path, "data file", mmap_mode="r")  # only the selection is read
        axes = selection.axes or _default_axes(array.ndim, path, {3: "TYX", 4: "TYXC", 5: "RTYXC"})
        return _finish(path, f".npy, axes {axes}, shape {array.shape}", array, axes, selection)
    raise ValueError(f"{path}: unknown format (give {FORMATS})")


def read_sources(specs: Sequence[str | Path], selection: Selection = Selection()) -> Imported:
    """Several sources as one trajectory set: their trajectories one after another (they must
    agree in frames, lattice and channels after the selection)."""
    if not specs:
        raise ValueError("give at least one source")
    if len(specs) == 1:
        return read_source(specs[0], selection)
    # trajectories are picked, and values normalised, over all the sources together
    each = dataclasses.replace(selection, trajectories=None, normalise="none")
    parts = [_read_one(spec, each) for spec in specs]
    first = parts[0]
    for spec, part in zip(specs, parts, strict=True):
        if part.trajectories.shape[1:] != first.trajectories.shape[1:]:
            raise ValueError(
                f"{spec}: (T, H, W, C) = {part.trajectories.shape[1:]} differs from "
                f"{specs[0]}'s {first.trajectories.shape[1:]}; crop, resize or pick frames "
                "so they agree"
            )
    trajectories = np.concatenate([p.trajectories for p in parts])
    if selection.trajectories is not None:
        trajectories = trajectories[slice(*selection.trajectories)]
        if not len(trajectories):
            raise ValueError(
                f"trajectories {selection.trajectories} keeps none of the "
                f"{sum(len(p.trajectories) for p in parts)} trajectories of the sources"
            )
    combined = dataclasses.replace(
        first, trajectories=trajectories, source=f"{len(parts)} sources; the first: {first.source}"
    )
    return _normalised(combined, selection.normalise)


def _normalised(imported: Imported, normalise: str) -> Imported:
    """``minmax``: each channel to [0, 1] by its minimum and maximum over everything read."""
    if normalise != "minmax":
        return imported
    array = imported.trajectories
    low = array.min(axis=(0, 1, 2, 3), keepdims=True)
    high = array.max(axis=(0, 1, 2, 3), keepdims=True)
    scaled = ((array - low) / np.where(high > low, high - low, 1.0)).astype(np.float32)
    return dataclasses.replace(imported, trajectories=scaled)


# --- formats -------------------------------------------------------------------------


def _read_tiff(path: Path, selection: Selection) -> Imported:
    import logging

    tifffile = _optional("tifffile", "TIFF files")
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # its warnings: our one line
    try:
        tif = tifffile.TiffFile(path)
        series = tif.series[0]
    except Exception as error:  # tifffile raises many kinds on damaged files  # noqa: BLE001
        raise ValueError(f"{path}: not a readable TIFF file ({error})") from None
    with tif:
        found, shape = series.axes.upper(), tuple(series.shape)
        axes = selection.axes or _tiff_axes(found, path)
        if selection.axes is None and "C" in axes and "S" in axes:
            # channels and samples (e.g. RGB per channel): one axis, channel-major
            axes = axes.replace("C", "F").replace("S", "C")
        if len(axes) != len(shape):
            raise ValueError(f"{path}: axes {axes.upper()} do not match the shape {shape}")
        plain = axes.replace("F", "")
        _check_axes(plain, tuple(n for a, n in zip(axes, shape, strict=True) if a != "F"), path)
        region = _region(
            plain, tuple(n for a, n in zip(axes, shape, strict=True) if a != "F"), selection, path
        )
        if "F" in axes:
            at = axes.index("F")
            region = region[:at] + (slice(None),) + region[at:]
        _check_size(region, shape, axes, path)
        try:
            try:
                array = series.asarray(out="memmap") if _large(shape) else series.asarray()
            except ValueError:
                array = series.asarray()
            array = array.reshape(shape)[region]
        except Exception as error:  # noqa: BLE001
            raise ValueError(f"{path}: cannot decode its images ({error})") from None
    source = f"TIFF{' (OME)' if '.ome.' in path.name.lower() else ''}, axes {found}, shape {shape}"
    return _finish(path, source, array, _kept_axes(axes, region), selection, selected=True)


def _tiff_axes(found: str, path: Path) -> str:
    """tifffile's axes letters as ours: S (samples, e.g. RGB) are channels; a first axis I
    (image sequence) or Q (unknown) of a stack without metadata is time."""
    if "R" in found:
        raise ValueError(f"{path}: a tiled TIFF (axes {found}, R = tiles); give axes to place them")
    axes = found
    if "T" not in axes and axes[0] in "IQ":
        axes = "T" + axes[1:]
    return axes if "C" in axes else axes.replace("S", "C")


def _read_hdf5(path: Path, inside: str | None, selection: Selection) -> Imported:
    h5py = _optional("h5py", "HDF5 files")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not a readable HDF5 file ({error})") from None
    with handle:
        datasets = _hdf5_datasets(handle)
        if inside is None:
            if len(datasets) == 1:
                inside = datasets[0]
            elif "t0_fields" in handle:
                inside = "t0_fields"
            elif not datasets:
                raise ValueError(f"{path}: an HDF5 file with no datasets")
            else:
                raise ValueError(
                    f"{path} holds several datasets; pick one as {path}:/PATH from "
                    f"{', '.join('/' + d for d in datasets[:12])}"
                )
        inside = inside.strip("/")
        if inside not in handle:
            raise ValueError(
                f"{path}: no dataset or group /{inside}; it holds "
                f"{', '.join('/' + d for d in datasets[:12]) or 'no datasets'}"
            )
        try:
            node = handle[inside]
        except KeyError:  # a link whose target is missing (a soft link, or another file's)
            raise ValueError(
                f"{path}:/{inside} is a broken link (its target does not exist)"
            ) from None
        if isinstance(node, h5py.Group):
            fields = sorted(k for k, v in node.items() if isinstance(v, h5py.Dataset))
            fields = _pick_named(fields, selection.channels, f"{path}:/{inside}")
            members = [node[f] for f in fields]
        else:
            fields, members = [inside.rsplit("/", 1)[-1]], [node]
        shape = tuple(members[0].shape)
        for field, member in zip(fields, members, strict=True):
            if tuple(member.shape) != shape:
                raise ValueError(
                    f"{path}:/{inside}: dataset {field} has shape {member.shape}, "
                    f"{fields[0]} {shape}; pick fields of one shape with channels"
                )
            if not np.issubdtype(member.dtype, np.number):
                raise ValueError(f"{path}:/{inside}/{field} holds {member.dtype}, not numbers")
        default = {3: "TYX", 4: "RTYX", 5: "RTYXC"}
        axes = _check_axes(selection.axes or _default_axes(len(shape), path, default), shape, path)
        region = _region(axes, shape, selection, path)
        _check_size(region, shape, axes, path, factor=len(members))
        arrays = [_read_region(member, region) for member in members]
        dtype = str(members[0].dtype)
    if len(arrays) > 1 or "C" not in axes:
        # the fields become the channel axis (a C axis of each is kept ahead of it)
        array = np.stack(arrays, axis=-1)
        out_axes = _kept_axes(axes, region) + "F"
        names = tuple(fields)
    else:
        array, out_axes, names = arrays[0], _kept_axes(axes, region), (fields[0],)
    source = f"HDF5 {path.name}:/{inside}, axes {axes}, shape {shape}"
    return _finish(
        path,
        source,
        array,
        out_axes,
        _fields_picked(selection),
        selected=True,
        names=names,
        dtype=dtype,
    )


def _hdf5_datasets(handle) -> list[str]:
    """The paths of every dataset in an open HDF5 file."""
    import h5py

    found: list[str] = []
    handle.visititems(
        lambda name, node: found.append(name) if isinstance(node, h5py.Dataset) else None
    )
    return found


def _read_video(path: Path, selection: Selection) -> Imported:
    import imageio.v3 as iio

    start, stop = selection.frames or (None, None)
    wanted = slice(start, stop, selection.every)
    # negative bounds count from the end, which a stream does not know: keep all, then slice
    from_end = any(v is not None and v < 0 for v in (start, stop))
    keep = range(2**62)[wanted] if not from_end else range(2**62)
    frames: list[np.ndarray] = []
    try:
        for index, frame in enumerate(iio.imiter(path)):
            if index >= keep.stop:
                break
            if index in keep:
                frames.append(np.asarray(frame))
                if len(frames) % 256 == 0:  # a stream of unknown length: stop before it
                    # fills the memory (the frames read so far, and their float copy)
                    check_memory(len(frames) * frames[0].size, f"reading {path}", copies=3)
    except Exception as error:  # the decoders raise many kinds  # noqa: BLE001
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path}: cannot decode this video ({reason})") from None
    if from_end:
        frames = frames[wanted]
    if not frames and selection.frames is not None:
        raise ValueError(f"{path}: frames {start}:{stop} keeps none of its frames")
    if not frames:
        raise ValueError(f"{path}: no frames decoded (an empty or damaged video?)")
    array = np.stack(frames)
    if array.ndim == 3:
        array = array[..., None]
    dtype = str(array.dtype)
    array = _unit_range(array)
    source = f"video, {len(frames)} frames kept, frame shape {frames[0].shape}"
    plain = dataclasses.replace(selection, frames=None, every=1)
    return _finish(path, source, array, "TYXC", plain, dtype=dtype)


def _read_folder(path: Path, selection: Selection) -> Imported:
    from PIL import Image, UnidentifiedImageError

    files = sorted(
        (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=natural_key,
    )
    if not files:
        raise ValueError(f"{path}: an empty folder (no {', '.join(IMAGE_SUFFIXES)} images in it)")
    start, stop = selection.frames or (None, None)
    files = files[slice(start, stop, selection.every)]
    if not files:
        raise ValueError(f"{path}: frames {start}:{stop} keeps none of its images")
    frames: list[np.ndarray] = []
    modes: list[str] = []
    for file in files:
        try:
            with Image.open(file) as image:
                image.load()
                frame, mode = _pixels(image)
        except Image.DecompressionBombError:
            raise ValueError(f"{file} is too large an image to read safely") from None
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise ValueError(f"{file}: not a readable image ({error})") from None
        if frames and (frame.shape != frames[0].shape or mode != modes[0]):
            raise ValueError(
                f"{file}: frame of shape {frame.shape} (H, W, C), mode {mode}, but "
                f"{files[0].name} is {frames[0].shape}, mode {modes[0]}; all frames must have "
                "one size and colour mode (bit depth)"
            )
        frames.append(frame)
        modes.append(mode)
    array = np.stack(frames)
    source = f"folder of {len(files)} images ({files[0].name} ... {files[-1].name})"
    plain = dataclasses.replace(selection, frames=None, every=1)
    return _finish(path, source, array, "TYXC", plain, dtype=modes[0])


def _check_npz_members(path: Path, names: list[str]) -> None:
    """Read each member's ``.npy`` header before its data: a member that claims more bytes
    than it holds, or more than memory, is refused before anything is allocated."""
    import zipfile

    from .._resources import check_memory
    from .io import read_npy_header

    with zipfile.ZipFile(path) as archive:
        for name in names:
            info = archive.getinfo(f"{name}.npy")
            with archive.open(info) as member:
                shape, dtype, offset = read_npy_header(member, f"{path}: array {name}")
            expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if info.file_size - offset < expected:
                raise ValueError(
                    f"{path}: array {name} claims shape {shape} ({expected:_} bytes) but holds "
                    f"{info.file_size - offset:_}"
                )
            check_memory(expected // 4 * 2, f"reading array {name} of {path}")


def _read_npz(path: Path, inside: str | None, selection: Selection) -> Imported:
    import zipfile
    import zlib

    damaged = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
    try:
        archive = np.load(path, allow_pickle=False)
    except damaged as error:
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None
    with archive:
        names = sorted(archive.files)
        if inside is not None:
            if inside not in names:
                raise ValueError(f"{path}: no array {inside!r}; it holds {', '.join(names)}")
            names = [inside]
        else:
            names = _pick_named(names, selection.channels, str(path))
        _check_npz_members(path, names)
        try:
            arrays = [archive[name] for name in names]
        except damaged as error:  # damaged members; object arrays need pickle: refused
            raise ValueError(f"{path}: an unreadable array ({error})".splitlines()[0]) from None
    shape = arrays[0].shape
    for name, array in zip(names, arrays, strict=True):
        if array.shape != shape:
            raise ValueError(
                f"{path}: array {name} has shape {array.shape}, {names[0]} {shape}; pick one "
                f"as {path}:NAME"
            )
    axes = selection.axes or _default_axes(len(shape), path, {3: "TYX", 4: "TYXC", 5: "RTYXC"})
    axes = _check_axes(axes, shape, path)
    if len(arrays) == 1:
        source = f".npz {names[0]}, axes {axes}, shape {shape}"
        return _finish(path, source, arrays[0], axes, _fields_picked(selection), names=(names[0],))
    source = f".npz arrays {', '.join(names)}, axes {axes}, shape {shape}"
    stacked = np.stack(arrays, -1)
    return _finish(path, source, stacked, axes + "F", _fields_picked(selection), names=tuple(names))


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
        elif axis == "Z":
            if selection.z is None:
                raise ValueError(
                    f"{path} is a Z-stack ({size} slices, axes {axes}): choose one slice with "
                    "z = K (stnca does not merge depth)"
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
    array = np.transpose(array, [axes.index(a) for a in "RTYXC"])
    array = np.asarray(array, np.float32)
    array, channel_names = _pick_channels(array, selection.channels, names, path)
    if array.shape[1] < 2:
        raise ValueError(f"{path}: {array.shape[1]} frame kept; a trajectory needs at least 2")
    if array.shape[0] < 1 or array.shape[-1] < 1:
        raise ValueError(f"{path}: nothing kept (shape {array.shape}); check the selection")
    if selection.resize is not None and selection.resize != array.shape[2:4]:
        array = resize_frames(array, selection.resize)
    if min(array.shape[2:4]) < 3:
        raise ValueError(f"{path}: the lattice must be at least 3x3, got {array.shape[2:4]}")
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
