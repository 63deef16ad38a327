"""``stnca extract``: the PDE behind a trained model or data, by sparse regression."""

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


def _print_extraction(equation, report, end: float) -> None:
    """The equation, each channel's fit, the coefficient table and the simulation errors."""
    from ..analysis.equations import format_equation

    typer.echo("")
    for line in format_equation(equation):
        typer.echo(line)
    for name, fit in equation["fit"].items():
        if not fit.get("static"):
            r2 = fit["held_out_r2"]
            typer.echo(
                f"  {name}: {len(equation['channels'][name])} of {len(equation['library'])} terms, "
                f"threshold {fit['threshold']:.3g}, held-out R^2 "
                + ("-" if r2 is None else f"{r2:.4f}")
            )
    if report["table"] is not None:
        typer.echo("")
        typer.echo(
            f"{'channel':7s}  {'term':28s} {'parameter':17s} {'true':>10s} "
            f"{'recovered':>10s} {'rel. error':>10s}  status"
        )
        for row in report["table"]:
            error = "" if row["relative_error"] is None else f"{100 * row['relative_error']:.3g}%"
            got = "" if row["recovered"] is None else f"{row['recovered']:.5g}"
            typer.echo(
                f"{row['channel']:7s}  {row['term']:28s} {row['parameter']:17s} "
                f"{row['true']:10.5g} {got:>10s} {error:>10s}  {row['status']}"
            )
    errors = report["simulation"]
    typer.echo("")
    typer.echo(
        f"simulated from {errors['initial_condition']} to t = {end:g}, relative "
        f"error against the {errors['reference']}:"
    )
    for name, values in errors["relative_error"].items():
        final = "diverged" if values[-1] is None else f"{values[-1]:.4f}"
        typer.echo(f"  {name:20s} {final}")


@app.command("extract")
@user_errors
def extract_command(
    model_path: Annotated[
        Path | None,
        typer.Argument(
            metavar="MODEL",
            help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper); "
            "or give --data.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Fit a trajectory .npy (T, H, W, C) or (R, T, H, W, C) instead."
        ),
    ] = None,
    dt: Annotated[
        float | None,
        typer.Option(
            "--dt",
            help="Time per NCA step, or between --data frames; coefficients are per unit time "
            "(default: one PDE step by the model's Gray-Scott config, else 1).",
        ),
    ] = None,
    pde: Annotated[
        str | None,
        typer.Option(
            "--pde",
            help="The true PDE to compare with: gray-scott (the paper's parameters), a config "
            ".toml with Gray-Scott [data], or none (default: the model's training config).",
        ),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            help="Initial conditions of the rollouts: a .npy (R, H, W, C) or a Gray-Scott "
            "family (default: the training family, drawn with another seed).",
        ),
    ] = None,
    rollouts: Annotated[
        int | None, typer.Option("--rollouts", help="Rollouts from a family --init (default 4).")
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option("--steps", help="NCA steps per rollout (default: the training horizon)."),
    ] = None,
    burn_in: Annotated[
        int | None,
        typer.Option(
            "--burn-in",
            help="Steps at the start of each rollout not fitted (default: the training's t, "
            "one frame interval, else 0).",
        ),
    ] = None,
    degree: Annotated[
        int | None, typer.Option("--degree", help="Highest degree of the polynomials (default 3).")
    ] = None,
    terms: Annotated[
        str,
        typer.Option(
            "--terms",
            help="Derivatives in the library: any of lap, dx, dy, or none; or the whole "
            "library as a list of terms, e.g. '1,A,A*B^2,lap(A)'.",
        ),
    ] = "lap,dx,dy",
    derivative: Annotated[
        str | None,
        typer.Option("--derivative", help="--data: forward (default) or central differences."),
    ] = None,
    boundary: Annotated[
        str | None,
        typer.Option("--boundary", help="--data: periodic (default), fixed or reflect."),
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", help="(Cell, time) samples regressed, 20% held out.")
    ] = 200_000,
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance",
            help="Keep the sparsest model within 1 + this of the best held-out error.",
        ),
    ] = 0.1,
    test_init: Annotated[
        str | None,
        typer.Option(
            "--test-init",
            help="Initial condition of the simulated comparison: a .npy state or a Gray-Scott "
            "family drawn with --seed (default: high_frequency for Gray-Scott).",
        ),
    ] = None,
    test_steps: Annotated[
        int | None,
        typer.Option(
            "--test-steps",
            help="Length of the comparison in steps of --dt (default: --steps, or the data's).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("extract"),
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for initial conditions, samples, updates.")
    ] = 2024,
    overwrite: OverwriteOption = False,
):
    """The PDE behind a trained NCA (or data), by sparse regression with PySINDy.

    Rolls the model out densely, fits each observable channel's per-step change on
    polynomials and stencil derivatives of the channels (STLSQ, threshold by
    cross-validation), prints the equation and writes equation.json/.txt; against a known
    Gray-Scott truth, coefficients.csv; and the equation simulated beside the truth and the
    NCA from an unseen initial condition, simulation.png/.json.
    """
    from ..analysis.extract_report import FILES
    from ..analysis.extraction import extract_equation
    from ..serialization import resolve_model

    inputs: dict[str, Path | None] = {"--data": data}
    for name, spec in (("--init", init), ("--test-init", test_init), ("--pde", pde)):
        if spec is not None and spec.lower().endswith((".npy", ".toml")):
            inputs[name] = Path(spec)
    if model_path is not None:
        inputs["MODEL"] = resolve_model(model_path)
    _check_outputs_in(out, FILES, "--out", inputs, overwrite)
    result = extract_equation(
        model_path,
        data=data,
        out=out,
        dt=dt,
        pde=pde,
        init=init,
        rollouts=rollouts,
        steps=steps,
        burn_in=burn_in,
        degree=degree,
        terms=terms,
        derivative=derivative,
        boundary=boundary,
        samples=samples,
        tolerance=tolerance,
        test_init=test_init,
        test_steps=test_steps,
        seed=seed,
        log=typer.echo,
    )
    _print_extraction(result.equation, result.report, result.comparison.times[-1])
    typer.echo("wrote " + ", ".join(str(path) for path in result.report["files"]))
