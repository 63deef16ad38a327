"""``stnca extract``: the PDE behind a trained model or data, by sparse regression."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.gray_scott import GrayScottParams
from ._app import (
    UserError,
    app,
    user_errors,
)
from ._common import (
    OverwriteOption,
    _check_outputs_in,
    _key,
    _load_model,
    _unconditioned,
)


def _extract_truth(pde: str | None, config):
    """``(Gray-Scott parameters or None, the config they came from)`` for ``--pde``."""
    from ..train import load_config

    if pde is None:
        if config is not None and config.data.source == "gray_scott":
            return config.data.params(), config
        return None, config
    if pde == "none":
        return None, config
    if pde == "gray-scott":
        return GrayScottParams(), config
    if not pde.lower().endswith(".toml"):
        raise UserError(f"--pde must be gray-scott, none or a config .toml, got {pde!r}")
    loaded = load_config(Path(pde))
    if loaded.data.source != "gray_scott":
        raise UserError(f"--pde {pde}: its [data] is {loaded.data.source!r}, not Gray-Scott")
    return loaded.data.params(), loaded


def _extract_states(spec: str, what: str, channels: int, size: tuple, key, batch, drawn: str):
    """``(states (R, H, W, C), description)``: a .npy file's states, or ``batch`` (or one)
    of a Gray-Scott family's, drawn with ``key`` (``drawn`` says how, for the report)."""
    import numpy as np

    from ..data.initial_conditions import INITIAL_CONDITIONS, initial_condition
    from ..data.io import load_states

    if spec.lower().endswith(".npy"):
        states = load_states(Path(spec), channels=channels, what=what)
        return (states[None] if states.ndim == 3 else states), spec
    if spec not in INITIAL_CONDITIONS:
        raise UserError(
            f"{what} must be a .npy file or a Gray-Scott initial condition "
            f"({', '.join(sorted(INITIAL_CONDITIONS))}), got {spec!r}"
        )
    if channels != 2:
        raise UserError(
            f"{what} {spec} is a Gray-Scott initial condition, but there are {channels} channels"
        )
    states = np.asarray(initial_condition(spec, size, key=key, batch=batch))
    return (states[None] if batch is None else states), f"{spec} ({size[0]}x{size[1]}, {drawn})"


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
    import jax

    from .._validate import choice, count, real
    from ..analysis.equations import channel_names, gray_scott_equation
    from ..analysis.extract import DERIVATIVES, Library, extract_from_model, fit_equation
    from ..analysis.extract_report import FILES, compare, write_report
    from ..boundaries import BOUNDARIES
    from ..data.io import load_trajectory

    if (model_path is None) == (data is None):
        raise UserError("give a MODEL or --data TRAJ.npy (exactly one)")
    if data is not None:
        for name, value in (
            ("--init", init),
            ("--rollouts", rollouts),
            ("--steps", steps),
            ("--burn-in", burn_in),
        ):
            if value is not None:
                raise UserError(f"{name} applies to a model's rollouts, not to --data")
    elif derivative is not None or boundary is not None:
        raise UserError("--derivative and --boundary apply to --data (a model has its own)")
    derivative = choice(derivative or "forward", "--derivative", DERIVATIVES)
    boundary = choice(boundary or "periodic", "--boundary", BOUNDARIES)
    if dt is not None and real(dt, "--dt", 0.0) == 0:
        raise UserError("--dt must be > 0")
    count(samples, "--samples", 10)
    real(tolerance, "--tolerance", 0.0)
    key = _key(seed)
    inputs: dict[str, Path | None] = {"--data": data}
    for name, spec in (("--init", init), ("--test-init", test_init), ("--pde", pde)):
        if spec is not None and spec.lower().endswith((".npy", ".toml")):
            inputs[name] = Path(spec)
    config = None
    if model_path is not None:
        from ..analysis.inputs import run_config
        from ..serialization import resolve_model

        inputs["MODEL"] = resolve_model(model_path)
        config = run_config(model_path)
    _check_outputs_in(out, FILES, "--out", inputs, overwrite)
    params, config = _extract_truth(pde, config)
    gray = params is not None
    gray_config = config is not None and config.data.source == "gray_scott"
    size = (config.data.size,) * 2 if gray_config else (64, 64)
    operators = [t.strip() for t in terms.split(",") if t.strip()]
    if model_path is not None:
        model = _unconditioned(_load_model(model_path), "extract")
        names = channel_names(model.observable_channels, gray)
        if init is None and not gray_config:
            raise UserError("give --init (a .npy of initial states): no Gray-Scott training config")
        family = init or config.data.families[0]
        initial, described = _extract_states(
            family,
            "--init",
            model.observable_channels,
            size,
            jax.random.fold_in(key, 2),
            count(4 if rollouts is None else rollouts, "--rollouts", 1),
            f"key fold_in(key({seed}), 2)",
        )
        horizon = config.horizon() if config is not None else None
        rollout_steps = count(steps if steps is not None else horizon or 1024, "--steps", 1)
        if burn_in is None:  # the hidden channels start at zero: skip one frame interval t
            t = config.training.steps_between_frames if config is not None else 0
            burn_in = t if t < rollout_steps else 0
        burn = count(burn_in, "--burn-in", 0)
        time_step = 1.0 if dt is None else dt
        if dt is None and gray_config:  # one NCA step: every / t PDE steps of the data
            t = config.training.steps_between_frames
            time_step = (config.data.every or t) / t * config.data.dt
    if data is not None:
        trajectories = load_trajectory(data, what="--data")
        names = channel_names(trajectories.shape[-1], gray)
        size = trajectories.shape[-3:-1]
        time_step = 1.0 if dt is None else dt
    derivatives = {"lap", "dx", "dy", "none"}
    others = [op for op in operators if op not in derivatives]
    if others and len(others) < len(operators):  # derivatives mixed with something else
        raise UserError(
            f"--terms: {others[0]!r} is not a derivative (lap, dx, dy or none); give "
            "derivatives, or the whole library as a list of terms (e.g. '1,A,lap(A)')"
        )
    if operators and set(operators) <= derivatives:
        wanted = [op for op in operators if op != "none"]
        library = Library.build(names, 3 if degree is None else degree, wanted)
    else:
        if degree is not None:
            raise UserError("give --degree or a list of --terms, not both")
        library = Library.build(names, terms=operators)
    typer.echo(f"library: {len(library.terms)} terms: {', '.join(library.terms)}")
    if model_path is not None:
        typer.echo(f"rolling out {len(initial)} x {rollout_steps} steps from {described}")
        equation = extract_from_model(
            model,
            initial,
            rollout_steps,
            library,
            dt=time_step,
            burn_in=burn,
            samples=samples,
            tolerance=tolerance,
            key=jax.random.fold_in(key, 1),
        )
        source = {
            "model": str(model_path),
            "rollouts": len(initial),
            "steps": rollout_steps,
            "burn_in": burn,
            "initial_conditions": described,
            "seed": seed,
        }
    else:
        equation = fit_equation(
            trajectories,
            library,
            dt=time_step,
            boundary=boundary,
            derivative=derivative,
            samples=samples,
            tolerance=tolerance,
            what=f"--data {data}",
            key=jax.random.fold_in(key, 1),
        )
        source = {
            "data": str(data),
            "trajectories": trajectories.shape[0],
            "frames": trajectories.shape[1],
        }
    equation = {**equation, "source": source}
    channels = len(names)
    truth_frames = None
    if test_init is not None and model_path is None and not gray:
        raise UserError(
            "--test-init with --data needs a truth to compare with: give --pde gray-scott or "
            "a Gray-Scott config (or leave --test-init out to use the data's first trajectory)"
        )
    if test_init is not None or gray:
        tests, test_described = _extract_states(
            test_init or "high_frequency", "--test-init", channels, size, key, None, f"seed {seed}"
        )
        test_initial = tests[0]
    elif model_path is not None:
        test_initial, test_described = initial[0], f"{described}, the first (fitted)"
    else:
        test_initial, truth_frames = trajectories[0, 0], trajectories[0]
        test_described = f"frame 0 of {data} (fitted)"
    if test_steps is None:
        test_steps = rollout_steps if model_path is not None else trajectories.shape[1] - 1
    comparison = compare(
        equation,
        test_initial,
        count(test_steps, "--test-steps", 1),
        description=test_described,
        model=model if model_path is not None else None,
        pde=params,
        truth=truth_frames,
        key=jax.random.fold_in(key, 3),
    )
    report = write_report(
        out,
        equation,
        truth=gray_scott_equation(params) if gray else None,
        comparison=comparison,
        title=f"equation extracted from {model_path or data}, run from {test_described}",
    )
    _print_extraction(equation, report, comparison.times[-1])
    typer.echo("wrote " + ", ".join(str(path) for path in report["files"]))
