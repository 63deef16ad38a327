"""NumPy archives: ``.npz`` members (their headers checked first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .selection import (
    Imported,
    Selection,
    _check_axes,
    _default_axes,
    _fields_picked,
    _finish,
    _pick_named,
)


def _check_npz_members(path: Path, names: list[str]) -> None:
    """Read each member's ``.npy`` header before its data: a member that claims more bytes
    than it holds, or more than memory, is refused before anything is allocated."""
    import zipfile

    from ..._resources import check_memory
    from ..io import read_npy_header

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
