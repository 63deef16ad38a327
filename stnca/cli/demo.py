"""``stnca demo``: Gray-Scott learned end to end in a few CPU minutes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ._app import (
    app,
    user_errors,
)


@app.command("demo")
@user_errors
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("stnca-demo"),
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Override the number of training epochs.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier demo in --out.")
    ] = False,
):
    """Learn Gray-Scott dynamics end to end in a few CPU minutes; write figures, video, metrics."""

    from ..demo import run_demo

    start = time.perf_counter()
    summary = run_demo(out, epochs=epochs, overwrite=overwrite, log=typer.echo)
    minutes = (time.perf_counter() - start) / 60
    horizon = summary["test_at_training_horizon"]
    twice = summary["test_at_twice_the_horizon"]
    typer.echo("")
    typer.echo(f"done in {minutes:.1f} min. Relative error on the unseen initial condition:")
    typer.echo("  step    NCA    persistence  spatial-mean   NCA/persistence")
    for row in (horizon, twice):
        typer.echo(
            f"  {row['step']:>4}  {row['nca_relative_error']:6.3f}  "
            f"{row['persistence_relative_error']:11.3f}  {row['spatial_mean_relative_error']:12.3f}"
            f"   {row['nca_over_persistence']:15.3f}"
        )
    typer.echo("files:")
    for name, path in summary["files"].items():
        typer.echo(f"  {name:22s} {path}")
