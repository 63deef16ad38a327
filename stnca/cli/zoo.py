"""``stnca analyse zoo-experiment``: the minimal NCA on every system of the zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import RERUN_TO_RESUME, UserError, _fail, analyse_app, user_errors
from ._common import SeedOption, _check_folder, _key


@analyse_app.command("zoo-experiment")
@user_errors
def zoo_experiment_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for one run per system and the table.")
    ],
    systems: Annotated[
        str | None,
        typer.Option("--systems", help="Comma-separated system names (default: every one)."),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs per system.")] = 400,
    size: Annotated[int, typer.Option("--size", help="Lattice size S (S x S).")] = 32,
    extract: Annotated[
        bool, typer.Option("--extract/--no-extract", help="Extract each model's equation.")
    ] = True,
    seed: SeedOption = 0,
):
    """Train the paper's minimal NCA on each zoo system with one recipe, test it on unseen
    initial-condition families at 1x and 2x the horizon beside persistence and the spatial
    mean, and extract its equation; writes zoo.md/.json/.png in --out (a finished system is
    reused, an interrupted one resumed)."""
    from ..experiments.zoo import zoo_experiment
    from ..train import TrainingDiverged

    if epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
    if size < 8:
        raise UserError(f"--size must be at least 8, got {size}")
    _key(seed)
    _check_folder(out, "--out")
    names = None
    if systems is not None:
        names = [name.strip() for name in systems.split(",") if name.strip()]
        if not names:
            raise UserError("--systems names no system")
    try:
        zoo_experiment(
            out, names, size=size, epochs=epochs, seed=seed, extract=extract, log=typer.echo
        )
    except TrainingDiverged as error:
        _fail(str(error), 1)
    except KeyboardInterrupt:
        _fail(RERUN_TO_RESUME, 130)
    typer.echo(f"wrote {out / 'zoo.md'}, .json, .png")
