"""``stnca analyse symmetry-experiment``: Fig 12's 2 x 2 (four trainings, then the table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import RERUN_TO_RESUME, UserError, _fail, analyse_app, user_errors
from ._common import SeedOption, StepsOption, _check_folder, _key


@analyse_app.command("symmetry-experiment")
@user_errors
def symmetry_experiment_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the four runs and the table.")],
    config_path: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The image-morphing config the four variants share (default: the clone's "
            "configs/symmetry_cpu.toml).",
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Override the number of training epochs.")
    ] = None,
    steps: StepsOption = None,
    seed: SeedOption = 0,
):
    """Fig 12's 2 x 2: asymmetric vs symmetric kernels, normal vs rotation-augmented data.

    Trains the four (a finished run is reused, an interrupted one resumed), tests each on
    rotated and flipped inputs; writes symmetry_experiment.md/.json/.png in --out.
    """
    from ..experiments.symmetry_experiment import default_config, symmetry_experiment
    from ..train import TrainingDiverged, load_config

    if epochs is not None and epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
    if steps is not None and steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    _key(seed)
    _check_folder(out, "--out")
    config = load_config(default_config() if config_path is None else config_path)
    try:
        symmetry_experiment(config, out, epochs=epochs, steps=steps, seed=seed, log=typer.echo)
    except TrainingDiverged as error:
        _fail(str(error), 1)
    except KeyboardInterrupt:
        _fail(RERUN_TO_RESUME, 130)
    typer.echo(f"wrote {out / 'symmetry_experiment.md'}, .json, .png")
