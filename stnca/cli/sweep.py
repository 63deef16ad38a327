"""``stnca sweep`` and ``stnca reproduce``: grids of trainings and the paper's figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import (
    RERUN_TO_RESUME,
    _fail,
    app,
    user_errors,
)
from ._common import (
    _check_folder,
)


def _run_sweep(base, vary, out: Path, seeds: int, shard, collect: bool, test_size) -> None:
    from ..experiments.sweep import run_sweep

    _check_folder(out, "--out")
    try:
        summary = run_sweep(
            base,
            vary,
            out,
            seeds=seeds,
            shard=shard,
            collect=collect,
            test_size=test_size,
            log=typer.echo,
        )
    except KeyboardInterrupt:
        _fail(RERUN_TO_RESUME, 130)
    if summary["missing"] and (collect or shard is None):
        raise typer.Exit(1)


@app.command("sweep")
@user_errors
def sweep_command(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG.toml", help="The base config.")],
    vary: Annotated[
        list[str],
        typer.Option(
            "--vary",
            help="KEY=V1,V2,... (repeatable; the grid is the product). KEY is section.key "
            "(e.g. data.noise, model.activation) or t, the paper's time sampling; a+b is a "
            "list value (kernels).",
        ),
    ],
    seeds: Annotated[int, typer.Option("--seeds", help="Random initialisations per cell.")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/sweep"),
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="Run only slice i/n of the grid (0 <= i < n), e.g. $SLURM_ARRAY_TASK_ID/n.",
        ),
    ] = None,
    collect: Annotated[
        bool,
        typer.Option(
            "--collect",
            help="Train nothing: merge the finished cells into "
            "results.csv and sweep.png, naming any missing cell.",
        ),
    ] = False,
    test_size: Annotated[
        int | None,
        typer.Option(
            "--test-size", help="Lattice of the unseen Gray-Scott test (default: the data's size)."
        ),
    ] = None,
):
    """A grid of trainings over varied config keys, each over several seeds (trained
    together); results.csv and sweep.png with the test errors on an unseen initial condition."""
    from ..experiments.sweep import parse_vary
    from ..train import load_config

    base = load_config(config_path)
    _run_sweep(base, [parse_vary(v) for v in vary], out, seeds, shard, collect, test_size)


@app.command("reproduce")
@user_errors
def reproduce_command(
    figure: Annotated[
        str, typer.Argument(help="fig4, fig6, fig8 or fig9 (or a sweep file .toml).")
    ],
    scale: Annotated[
        str, typer.Option("--scale", help="cpu (about 30 min on 2 cores) or paper (a GPU).")
    ] = "cpu",
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default runs/FIGURE_SCALE).")
    ] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="As for sweep.")] = None,
    collect: Annotated[bool, typer.Option("--collect", help="As for sweep.")] = False,
):
    """Run a paper figure's sweep (configs/sweeps/): Fig 4 (time sampling), Fig 6 (noise),
    Fig 8 (kernels, activations), Fig 9 (time sampling, channels)."""
    from ..experiments.reproduce import load_plan, sweep_file

    path = sweep_file(figure)
    plan = load_plan(path, scale)
    out = out if out is not None else Path("runs") / f"{Path(figure).stem}_{scale}"
    typer.echo(f"{plan.figure} ({scale} scale, {path})")
    _run_sweep(plan.base, plan.vary, out, plan.seeds, shard, collect, plan.test_size)
