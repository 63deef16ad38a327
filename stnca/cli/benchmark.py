"""``stnca benchmark``: the generalisation suite, peers beside the NCA."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import (
    app,
    user_errors,
)
from ._common import (
    OverwriteOption,
    _check_outputs_in,
)


@app.command("benchmark")
@user_errors
def benchmark_command(
    model_path: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL",
            help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper).",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: benchmark-MODEL here)."),
    ] = None,
    suite: Annotated[
        str, typer.Option("--suite", help="default (3 draws, 64x64 and 256x256) or quick.")
    ] = "default",
    families: Annotated[
        str | None, typer.Option("--families", help="Comma-separated families instead.")
    ] = None,
    draws: Annotated[int | None, typer.Option("--draws", help="Draws per family.")] = None,
    size: Annotated[int | None, typer.Option("--size", help="Lattice side (>= 8).")] = None,
    large_size: Annotated[
        int | None, typer.Option("--large-size", help="The large lattice's side (0: none).")
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="True trajectory .npy, for a model with no PDE behind it."),
    ] = None,
    steps_between_frames: Annotated[
        int | None,
        typer.Option("--steps-between-frames", help="NCA steps per frame of --truth."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the initial conditions.")] = 0,
    peers: Annotated[
        str,
        typer.Option("--peers", help="Peer emulators to train and score: convnet,resnet,unet,fno."),
    ] = "",
    peer_seconds: Annotated[
        float | None,
        typer.Option("--peer-seconds", help="Training budget per peer (default: the model's)."),
    ] = None,
    overwrite: OverwriteOption = False,
):
    """Generalisation: run the model from many families of initial conditions to 1x, 2x and
    4x its training horizon against the PDE (or --truth), beside persistence, the spatial
    mean and the PDE with its feed rate 1% off; write CSV, Markdown, JSON and figures."""
    from ..experiments.benchmark import benchmark_model

    out = Path(f"benchmark-{model_path.stem}") if out is None else out
    names = ("benchmark.csv", "benchmark.md", "benchmark.json")
    _check_outputs_in(out, names, "--out", {"--truth": truth}, overwrite)

    def done(case) -> None:
        typer.echo(f"  {case.family} {case.size[0]}x{case.size[1]} {case.condition}".rstrip())

    benchmark, paths = benchmark_model(
        model_path,
        out,
        suite=suite,
        families=families,
        draws=draws,
        size=size,
        large_size=large_size,
        truth=truth,
        steps_between_frames=steps_between_frames,
        seed=seed,
        peers=peers,
        peer_seconds=peer_seconds,
        progress=done,
        log=typer.echo,
    )
    for horizon in benchmark.horizons:
        means = ", ".join(
            f"{name} {benchmark.mean_vrmse(name, horizon):.3f}" for name in benchmark.predictors
        )
        typer.echo(f"mean VRMSE at {horizon}x the horizon: {means}")
    typer.echo(f"wrote {paths['markdown']}, {paths['csv']}, {paths['json']}, {paths['figures']}/")
