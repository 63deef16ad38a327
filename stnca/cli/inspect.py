"""``stnca inspect``: read a trained rule (importance, layer spectra, linearisation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, user_errors
from ._common import OverwriteOption, _check_outputs_in


@app.command("inspect")
@user_errors
def inspect_command(
    model: Annotated[
        Path,
        typer.Argument(
            help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper)."
        ),
    ],
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
        int, typer.Option("--size", help="Lattice side of the linearisation (>= 4).")
    ] = 32,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            help="Test trajectory .npy to take the rule apart on (default for Gray-Scott "
            "models: the unseen test).",
        ),
    ] = None,
    steps_between_frames: Annotated[
        int | None,
        typer.Option("--steps-between-frames", help="NCA steps per frame of --truth."),
    ] = None,
    overwrite: OverwriteOption = False,
):
    """Read the rule: which kernel of which channel the first layer uses, the layers'
    singular values, and each Fourier mode's growth factor per step around the resting
    state, beside the PDE's for a Gray-Scott model; on a test trajectory, the error with
    each kernel of each channel removed, each hidden channel off, hidden channels off one
    by one (how many the rule needs), and under weight noise and dropout; writes
    inspect.json, inspect.png and function.png."""
    from ..analysis.inspect_report import FILES, inspect_to_folder

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
    ranks = inspection.ranks()
    typer.echo(
        "effective rank (99% energy): "
        + ", ".join(
            f"{name} {rank} of {len(inspection.spectra[name])}" for name, rank in ranks.items()
        )
    )
    typer.echo(f"increment at rest: {inspection.rest_increment:.3g} (0 = a fixed point)")
    for c in range(inspection.observable):
        name = inspection.channels[c]
        growth, pde = inspection.growth[:, c], inspection.pde_growth
        line = f"growth at rest, {name}: q = 0 {growth[0]:.4f}, q = pi {growth[-1]:.4f}"
        if pde is not None:
            line += f" (PDE {pde[0, c]:.4f}, {pde[-1, c]:.4f})"
        typer.echo(line)
    if function is not None:
        typer.echo(
            f"test error {function.error:.4g}; channels needed (error within "
            f"{1 + function.tolerance:g}x): {function.effective_channels} of "
            f"{len(inspection.channels)}"
        )
        for level, noise, dropout in zip(
            function.levels, function.noise.mean(1), function.dropout.mean(1), strict=True
        ):
            typer.echo(f"  weights shaken {level:g}: noise {noise:.4g}, dropout {dropout:.4g}")
    typer.echo("wrote " + ", ".join(str(path) for path in files))
