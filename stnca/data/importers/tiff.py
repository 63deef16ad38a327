"""TIFF and OME-TIFF: axes from the file's metadata (tifffile); a plain stack's first
axis is time."""

from __future__ import annotations

from pathlib import Path

from .selection import (
    Imported,
    Selection,
    _check_axes,
    _check_size,
    _finish,
    _kept_axes,
    _large,
    _optional,
    _region,
)


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
