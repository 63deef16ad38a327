"""``stnca import``: users' data (TIFF, HDF5, video, images, .npz, .npy) to trajectory files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import (
    UserError,
    app,
    user_errors,
)
from ._common import (
    OverwriteOption,
    _check_output,
)


def _span(text: str | None, option: str) -> tuple[int | None, int | None] | None:
    """``"a:b"`` (either side may be empty) -> ``(a, b)``; ``None`` stays ``None``."""
    if text is None:
        return None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return tuple(int(p) if p.strip() else None for p in parts)  # type: ignore[return-value]
    except ValueError:
        raise UserError(
            f"{option} must look like a:b (integers, either may be empty), got {text!r}"
        ) from None


def _selection(trajectories, frames, every, z, crop, channels, resize, normalise, axes, volume):
    from ..data.importers import Selection

    box = None
    if crop is not None:
        spans = [_span(part, "--crop") for part in crop.split(",")]
        if len(spans) != 2 or any(v is None for s in spans for v in s or (None,)):
            raise UserError(f"--crop must look like y0:y1,x0:x1 (all four given), got {crop!r}")
        box = (*spans[0], *spans[1])
    size = None
    if resize is not None:
        try:
            values = [int(v) for v in resize.lower().split("x")]
        except ValueError:
            values = []
        if len(values) not in (1, 2):
            raise UserError(f"--resize must be S or HxW (integers), got {resize!r}")
        size = (values[0], values[-1])
    picked = None
    if channels is not None:
        picked = tuple(c.strip() for c in channels.split(",") if c.strip())
        if not picked:
            raise UserError("--channels names no channel")
    return Selection(
        trajectories=_span(trajectories, "--trajectories"),
        frames=_span(frames, "--frames"),
        every=every,
        z=z,
        volume=volume,
        crop=box,
        channels=picked,
        resize=size,
        normalise=normalise,
        axes=axes,
    )


@app.command("import")
@user_errors
def import_command(
    sources: Annotated[
        list[str],
        typer.Argument(
            metavar="SRC...",
            help="TIFF/OME-TIFF, HDF5 (file.h5:/path), video (.mp4, .gif, .avi, ...), a folder "
            "of images, .npz (file.npz:name) or .npy; several make several trajectories.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output trajectory file (.npy).")],
    channels: Annotated[
        str | None,
        typer.Option(
            "--channels",
            help="Comma-separated channel names (HDF5 fields, .npz arrays) or indices, or "
            "grey (luminance of RGB).",
        ),
    ] = None,
    every: Annotated[int, typer.Option("--every", help="Keep every k-th frame.")] = 1,
    frames: Annotated[
        str | None, typer.Option("--frames", help="Frames a:b (before --every).")
    ] = None,
    crop: Annotated[
        str | None, typer.Option("--crop", help="Rows and columns y0:y1,x0:x1.")
    ] = None,
    resize: Annotated[
        str | None, typer.Option("--resize", help="Lattice size S (S x S) or HxW.")
    ] = None,
    normalise: Annotated[
        str,
        typer.Option("--normalise", help="none (values as read) or minmax (channels to [0, 1])."),
    ] = "none",
    z: Annotated[
        int | None,
        typer.Option("--z", help="The Z slice of a Z-stack, 0 to Z-1 (required for one)."),
    ] = None,
    volume: Annotated[
        bool,
        typer.Option(
            "--volume",
            help="Read a Z-stack whole, as volumes (T, Z, Y, X, C): data for model.dimensions = 3.",
        ),
    ] = False,
    trajectories: Annotated[
        str | None,
        typer.Option("--trajectories", help="Trajectories a:b of a file holding several."),
    ] = None,
    axes: Annotated[
        str | None,
        typer.Option("--axes", help="Axes of an array source, letters of RTZYXC (e.g. TYXC)."),
    ] = None,
    png: Annotated[
        bool, typer.Option("--png", help="Also write a picture of the frames next to --out.")
    ] = False,
    overwrite: OverwriteOption = False,
):
    """Turn users' data into a trajectory file (float32 (T, H, W, C) or (R, T, H, W, C))."""
    from .. import viz
    from .._resources import check_disk
    from ..data import io
    from ..data.importers import read_sources, split_spec
    from ..viz_volumes import volume_figure

    inputs = {f"SRC {s}": split_spec(s)[0] for s in sources}
    _check_output(
        out, (".npy",), "--out", {k: p for k, p in inputs.items() if p.is_file()}, overwrite
    )
    if png:
        _check_output(out.with_suffix(".png"), (".png",), "--png (next to --out)", None, overwrite)
    selection = _selection(
        trajectories, frames, every, z, crop, channels, resize, normalise, axes, volume
    )
    imported = read_sources(sources, selection)
    typer.echo(f"read {imported.describe()}")
    trajectory = imported.trajectories
    if trajectory.shape[0] == 1:
        trajectory = trajectory[0]
    check_disk(trajectory.size, out.parent, f"{out}")
    io.save_array(out, trajectory)
    typer.echo(f"wrote {out} with shape {trajectory.shape}")
    if png:
        title = f"imported: {out.name}"
        if volume:
            picture = volume_figure(
                imported.trajectories[0], out.with_suffix(".png"), channel=0, title=title
            )
        else:
            picture = viz.trajectory_figure(trajectory, out.with_suffix(".png"), title=title)
        typer.echo(f"wrote {picture}")
