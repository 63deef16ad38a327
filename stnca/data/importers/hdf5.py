"""HDF5: a dataset, or a group whose datasets of one shape become the channels
(The Well's layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .selection import (
    Imported,
    Selection,
    _check_axes,
    _check_size,
    _default_axes,
    _fields_picked,
    _finish,
    _kept_axes,
    _optional,
    _pick_named,
    _read_region,
    _region,
)


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
