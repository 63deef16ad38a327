"""``stnca train``: a config (or images to morph through) to a training run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..train.presets import images_config
from ._app import (
    UserError,
    _fail,
    app,
    user_errors,
)
from ._common import (
    _check_folder,
)


@app.command("train")
@user_errors
def train_command(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="CONFIG.toml | IMAGES...",
            help="A TOML config (see configs/), or with --images the image files to morph "
            "through (or emoji:NAME for a packaged emoji).",
        ),
    ],
    images: Annotated[
        bool,
        typer.Option("--images", help="Morph through the given images with the paper's defaults."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: runs/NAME).")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Total number of epochs (overrides config).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run saved in --out.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an earlier run's files in --out (start afresh)."),
    ] = False,
    tensorboard: Annotated[
        bool,
        typer.Option(
            "--tensorboard",
            help="Write TensorBoard event files to OUT/tensorboard/ (sets training.tensorboard; "
            'needs pip install "stnca[tensorboard]").',
        ),
    ] = False,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Join a run of several processes first (jax.distributed.initialize(); "
            "SLURM, Open MPI and JAX_COORDINATOR_ADDRESS are detected; also "
            "STNCA_DISTRIBUTED=1): mini-batches split over every process's devices, only "
            "process 0 writes --out. See docs/concepts/scale.md.",
        ),
    ] = False,
):
    """Train an NCA with Algorithm 2; writes model.eqx, metrics.csv, loss.png, config.toml.

    For image sequences it also writes snapshots.png, morph.json and the videos
    trajectory.mp4 and hidden.mp4.
    """
    from ..train import distributed as multiprocess

    if multiprocess.requested(distributed):  # before anything uses JAX's devices
        multiprocess.initialise(log=typer.echo)
    from ..train import TrainingDiverged, load_config, train
    from ..train.config import ImageData

    settings, name = _settings(inputs, images, load_config)
    if epochs is not None and epochs < 0:
        raise UserError(f"--epochs must be >= 0, got {epochs}")
    if tensorboard:
        settings = settings.replace("training", tensorboard=True)
    out = _check_folder(Path("runs") / name if out is None else out, "--out")
    try:
        result = train(settings, out, epochs=epochs, resume=resume, overwrite=overwrite)
    except TrainingDiverged as error:
        _fail(str(error), 1)
    except KeyboardInterrupt:
        _fail("interrupted: the same command with --resume continues from the checkpoint", 130)
    _report(result, out)
    if isinstance(settings.data, ImageData) and multiprocess.is_primary():
        _report_morph(result, out)  # files: process 0 only


def _settings(inputs: list[Path], images: bool, load_config):
    """The training config and the run's default name: a TOML file, or images to morph."""
    if images:
        if len(inputs) < 2:
            raise UserError(
                f"--images needs at least two images to morph through (the first is where the "
                f"morph starts), got {len(inputs)}"
            )
        return images_config([str(p) for p in inputs]), (
            f"{Path(str(inputs[0])).stem.split(':')[-1]}-morph"
        )
    if len(inputs) != 1:
        raise UserError("give one CONFIG.toml (or --images with the image files)")
    return load_config(inputs[0]), inputs[0].stem


def _report(result, out: Path) -> None:
    if result.epochs == 0:  # nothing trained: no lowest loss, the untrained model is kept
        typer.echo(
            f"trained 0 epochs: model.eqx is the untrained model (training loss "
            f"{result.untrained['loss']:.5g}, free-rollout loss "
            f"{result.untrained['rollout_loss']:.5g}); model: {out / 'model.eqx'}"
        )
    else:
        typer.echo(
            f"trained {result.epochs} epochs: lowest training loss {result.lowest_loss:.5g} "
            f"(untrained {result.untrained['loss']:.5g}); model.eqx is epoch {result.best_epoch} "
            f"(chosen by {result.selected_by}: {result.best_loss:.5g}); model: {out / 'model.eqx'}"
        )


def _report_morph(result, out: Path) -> None:
    from ..analysis.morphing import morph_report

    t = result.config.training.steps_between_frames
    report = morph_report(result.model, result.data[0], t, out)
    for row in report["images"] + report["extrapolation"]:
        typer.echo(
            f"  n = {row['step']:>4}: image {row['target']}  "
            f"relative error {row['relative_error']:.3f}"
        )
    typer.echo(f"wrote {out / 'snapshots.png'}, {out / 'trajectory.mp4'}, {out / 'hidden.mp4'}")
