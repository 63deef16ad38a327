"""``stnca inspect``: read a trained rule (importance, layer spectra, linearisation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, user_errors
from ._common import (
    OverwriteOption,
    RuleModelArgument,
    RuleStepsOption,
    RuleTruthOption,
    _check_outputs_in,
)


@app.command("inspect")
@user_errors
def inspect_command(
    model: RuleModelArgument,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("inspect"),
    rest: Annotated[
        str | None,
        typer.Option(
            "--rest",
            help="The observable channels' values at rest, comma-separated, physical units "
            "(default for Gray-Scott models: 1,0).",
        ),
    ] = None,
    size: Annotated[
        int, typer.Option("--size", help="Lattice side of the linearisation (4 to 1024).")
    ] = 32,
    truth: RuleTruthOption = None,
    steps_between_frames: RuleStepsOption = None,
    overwrite: OverwriteOption = False,
):
    """Read the rule: which kernel of which channel the first layer uses, the layers'
    singular values, and each Fourier mode's growth factor per step around the resting
    state, beside the PDE's for a Gray-Scott model; on a test trajectory, the error with
    each kernel of each channel removed, each hidden channel off, hidden channels off one
    by one (how many the rule needs), and under weight noise and dropout; writes
    inspect.json, inspect.png and function.png."""
    from ..analysis.inspect_report import FILES, inspect_to_folder, summary

    values = None
    if rest is not None:
        try:
            values = [float(v) for v in rest.split(",")]
        except ValueError:
            raise ValueError(f"rest must be comma-separated numbers, got {rest!r}") from None
    _check_outputs_in(out, FILES, "--out", {"model": model, "truth": truth}, overwrite)
    inspection, function, files = inspect_to_folder(
        model,
        out,
        rest=values,
        size=size,
        truth=truth,
        steps_between_frames=steps_between_frames,
        log=typer.echo,
    )
    for line in summary(inspection, function):
        typer.echo(line)
    typer.echo("wrote " + ", ".join(str(path) for path in files))
