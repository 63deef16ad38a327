"""``stnca prune``: the smallest rule within a tolerance of the original's error."""

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


@app.command("prune")
@user_errors
def prune_command(
    model: RuleModelArgument,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("pruned"),
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", help="Keep the error within 1 + this of the original's."),
    ] = 0.1,
    truth: RuleTruthOption = None,
    steps_between_frames: RuleStepsOption = None,
    fine_tune_epochs: Annotated[
        int,
        typer.Option(
            "--fine-tune-epochs",
            help="Retrain this many epochs after each round of removals, then remove more "
            "(0: no retraining).",
        ),
    ] = 0,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Training trajectories (.npy, R x (M+1) x H x W x C) to fine-tune on "
            "(default: the run's train_data.npy, or rebuilt from its config).",
        ),
    ] = None,
    fine_tune_learning_rate: Annotated[
        float | None,
        typer.Option(
            "--fine-tune-learning-rate",
            help="Constant learning rate of the fine-tuning (default: the training's initial one).",
        ),
    ] = None,
    overwrite: OverwriteOption = False,
):
    """The smallest model within --tolerance of the original's error on a test trajectory:
    hidden channels dropped, then kernel-channel blocks of the first layer zeroed, each
    while the error allows; with --fine-tune-epochs N, retrained N epochs after each round
    and pruned again (prune, retrain, repeat); writes model.eqx, config.toml and prune.json."""
    from ..analysis.prune_folder import FILES, prune_to_folder

    inputs = {"model": model, "truth": truth, "data": data}
    _check_outputs_in(out, FILES, "--out", inputs, overwrite)
    result, files = prune_to_folder(
        model,
        out,
        tolerance=tolerance,
        truth=truth,
        steps_between_frames=steps_between_frames,
        fine_tune_epochs=fine_tune_epochs,
        data=data,
        fine_tune_learning_rate=fine_tune_learning_rate,
        log=typer.echo,
    )
    typer.echo(
        f"error {result.error:.4g} -> {result.pruned_error:.4g}; hidden channels "
        f"{result.model.hidden_channels + len(result.removed_hidden)} -> "
        f"{result.model.hidden_channels}; kernel-channel blocks zeroed: "
        f"{len(result.removed_blocks)}; weights {result.parameters} -> {result.pruned_parameters}"
    )
    typer.echo("wrote " + ", ".join(str(path) for path in files))
