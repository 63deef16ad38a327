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

import numpy as np

from ..io import check_regular_file, load_array
from .arrays import _read_npz
from .hdf5 import _read_hdf5
from .images import _read_folder, _read_video
from .selection import FORMATS as FORMATS
from .selection import (
    HDF5_SUFFIXES,
    TIFF_SUFFIXES,
    VIDEO_SUFFIXES,
    _default_axes,
    _finish,
    _normalised,
)
from .selection import Imported as Imported
from .selection import Selection as Selection
from .selection import natural_key as natural_key
from .selection import resize_frames as resize_frames
from .tiff import _read_tiff


def split_spec(spec: str | Path) -> tuple[Path, str | None]:
    """``file.h5:/inside`` or ``file.npz:name`` -> (file, inside); other specs -> (path, None)."""
    text = str(spec)
    match = re.match(r"^(.*?\.(?:h5|hdf5|hdf|he5|npz)):(.*)$", text, re.IGNORECASE)
    if match and not Path(text).exists():
        return Path(match.group(1)), match.group(2) or None
    return Path(text), None


def read_source(
    spec: str | Path,
    selection: Selection = Selection(),  # noqa: B008 - frozen, so one shared default is safe
) -> Imported:
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


def read_sources(
    specs: Sequence[str | Path],
    selection: Selection = Selection(),  # noqa: B008 - frozen, so one shared default is safe
) -> Imported:
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
                f"{spec}: its frames' shape {part.trajectories.shape[1:]} differs from "
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
