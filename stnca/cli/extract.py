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

# the flag or argument that gives each of ``input_files``'s inputs, for the output checks
_FLAGS = {
    "data": "--data",
    "init": "--init",
    "test_init": "--test-init",
    "pde": "--pde",
    "model": "MODEL",
}


_ModelArgument = Annotated[
    Path | None,
    typer.Argument(
        metavar="MODEL",
        help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper); "
        "or give --data.",
    ),
]
_DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Fit a trajectory .npy (T, H, W, C) or (R, T, H, W, C) instead."),
]
_DtOption = Annotated[
    float | None,
    typer.Option(
        "--dt",
        help="Time per NCA step, or between --data frames; coefficients are per unit time "
        "(default: one PDE step by the model's Gray-Scott config, else 1).",
    ),
]
_PdeOption = Annotated[
    str | None,
    typer.Option(
        "--pde",
        help="The true PDE to compare with: gray-scott (the paper's parameters), a config "
        ".toml with Gray-Scott [data], or none (default: the model's training config).",
    ),
]
_InitOption = Annotated[
    str | None,
    typer.Option(
        "--init",
        help="Initial conditions of the rollouts: a .npy (R, H, W, C) or a Gray-Scott "
        "family (default: the training family, drawn with another seed).",
    ),
]
_RolloutsOption = Annotated[
    int | None, typer.Option("--rollouts", help="Rollouts from a family --init (default 4).")
]
_StepsOption = Annotated[
    int | None,
    typer.Option("--steps", help="NCA steps per rollout (default: the training horizon)."),
]
_BurnInOption = Annotated[
    int | None,
    typer.Option(
        "--burn-in",
        help="Steps at the start of each rollout not fitted (default: the training's t, "
        "one frame interval, else 0).",
    ),
]
_DegreeOption = Annotated[
    int | None, typer.Option("--degree", help="Highest degree of the polynomials (default 3).")
]
_TermsOption = Annotated[
    str,
    typer.Option(
        "--terms",
        help="Derivatives in the library: any of lap, dx, dy, or none; or the whole "
        "library as a list of terms, e.g. '1,A,A*B^2,lap(A)'.",
    ),
]
_DerivativeOption = Annotated[
    str | None,
    typer.Option("--derivative", help="--data: forward (default) or central differences."),
]
_BoundaryOption = Annotated[
    str | None,
    typer.Option("--boundary", help="--data: periodic (default), fixed or reflect."),
]
_SamplesOption = Annotated[
    int, typer.Option("--samples", help="(Cell, time) samples regressed, 20% held out.")
]
_ToleranceOption = Annotated[
    float,
    typer.Option(
        "--tolerance",
        help="Keep the sparsest model within 1 + this of the best held-out error.",
    ),
]
_TestInitOption = Annotated[
    str | None,
    typer.Option(
        "--test-init",
        help="Initial condition of the simulated comparison: a .npy state or a Gray-Scott "
        "family drawn with --seed (default: high_frequency for Gray-Scott).",
    ),
]
_TestStepsOption = Annotated[
    int | None,
    typer.Option(
        "--test-steps",
        help="Length of the comparison in steps of --dt (default: --steps, or the data's).",
    ),
]
_OutOption = Annotated[Path, typer.Option("--out", help="Output folder.")]
_SeedOption = Annotated[
    int, typer.Option("--seed", help="Seed for initial conditions, samples, updates.")
]


@app.command("extract")
@user_errors
def extract_command(
    model_path: _ModelArgument = None,
    data: _DataOption = None,
    dt: _DtOption = None,
    pde: _PdeOption = None,
    init: _InitOption = None,
    rollouts: _RolloutsOption = None,
    steps: _StepsOption = None,
    burn_in: _BurnInOption = None,
    degree: _DegreeOption = None,
    terms: _TermsOption = "lap,dx,dy",
    derivative: _DerivativeOption = None,
    boundary: _BoundaryOption = None,
    samples: _SamplesOption = 200_000,
    tolerance: _ToleranceOption = 0.1,
    test_init: _TestInitOption = None,
    test_steps: _TestStepsOption = None,
    out: _OutOption = Path("extract"),
    seed: _SeedOption = 2024,
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
    from ..analysis.extraction import extract_equation, input_files

    inputs = input_files(model_path, data=data, init=init, test_init=test_init, pde=pde)
    flags = {_FLAGS[name]: path for name, path in inputs.items()}
    _check_outputs_in(out, FILES, "--out", flags, overwrite)
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
    for line in result.summary():
        typer.echo(line)
    typer.echo("wrote " + ", ".join(str(path) for path in result.report["files"]))
