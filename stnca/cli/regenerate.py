"""``stnca analyse regenerate``: erase discs from a model's pattern and measure its recovery."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import UserError, analyse_app, as_flags, user_errors
from ._common import (
    AnalysisOut,
    ConfigOption,
    ImageSizeOption,
    ModelArgument,
    OverwriteOption,
    PaddingOption,
    SeedOption,
    _check_outputs_in,
    _key,
)

FLAGS = {
    "damage_step": "--damage-step",
    "recovery_steps": "--recovery-steps",
    "sizes": "--size",
    "positions": "--position",
    "tolerance": "--tolerance",
    "fill": "--fill",
    "init": "--init",
    "image_size": "--image-size",
    "padding": "--padding",
}
"""The library's parameter names as this command's flags (for its messages)."""


def _position(text: str) -> tuple[float, float]:
    """``ROW,COLUMN`` -> two numbers."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise UserError(f"--position must be ROW,COLUMN (two numbers), got {text!r}") from None


@analyse_app.command("regenerate")
@user_errors
def regenerate_command(
    model_path: ModelArgument,
    out: AnalysisOut,
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            help="Initial condition: a .npy state (H, W, C) in physical units, an image file "
            "or emoji:NAME (default: an image model's first image).",
        ),
    ] = None,
    damage_step: Annotated[
        int | None,
        typer.Option("--damage-step", help="Step n_d of the damage (default: 2x the horizon)."),
    ] = None,
    recovery_steps: Annotated[
        int | None,
        typer.Option("--recovery-steps", help="Steps run after it (default: 2x the horizon)."),
    ] = None,
    size: Annotated[
        list[float] | None,
        typer.Option(
            "--size", help="Disc diameter, a fraction of the pattern's size; repeat (0.25, 0.5)."
        ),
    ] = None,
    position: Annotated[
        list[str] | None,
        typer.Option(
            "--position",
            help="Disc centre ROW,COLUMN as fractions of the pattern's box; repeat (default: "
            "its centre and its quarters' centres).",
        ),
    ] = None,
    fill: Annotated[
        str, typer.Option("--fill", help="What the disc holds: zero, initial or noise.")
    ] = "zero",
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", help="Distance to the undamaged run counted as recovered."),
    ] = 0.05,
    config_path: ConfigOption = None,
    image_size: ImageSizeOption = None,
    padding: PaddingOption = None,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
):
    """Regeneration: erase discs at n_d (2x the horizon), measure the recovery against the
    undamaged run."""
    from ..analysis.regeneration import POSITIONS, SIZES
    from ..analysis.regeneration_report import FILES, regenerate_to_folder, table

    _check_outputs_in(out, FILES, "--out", None, overwrite)
    positions = [_position(p) for p in position] if position else POSITIONS
    key = _key(seed)
    try:
        result, paths = regenerate_to_folder(
            model_path,
            out,
            init=init,
            damage_step=damage_step,
            recovery_steps=recovery_steps,
            sizes=tuple(size) if size else SIZES,
            positions=positions,
            fill=fill,
            tolerance=tolerance,
            config=config_path,
            image_size=image_size,
            padding=padding,
            key=key,
        )
    except ValueError as error:
        raise UserError(as_flags(str(error), FLAGS)) from None
    for line in table(result):
        typer.echo(line)
    typer.echo("wrote " + ", ".join(str(Path(p)) for p in paths))
