"""``stnca analyse``: perturbations, adversarial initial conditions and symmetry of a model
(regeneration: ``stnca.cli.regenerate``)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._app import (
    UserError,
    analyse_app,
    user_errors,
)
from ._common import (
    AnalysisOut,
    ConfigOption,
    ImageSizeOption,
    InitOption,
    ModelArgument,
    OverwriteOption,
    PaddingOption,
    SeedOption,
    StepsOption,
    _check_outputs_in,
    _key,
    _load_model,
    _unconditioned,
)

ANALYSIS_FILES = {
    "perturb": ("perturb.png", "perturb.json", "perturb_pde.png"),
    "adversarial": ("adversarial.png", "adversarial.json"),
    "symmetry": ("symmetry.png", "symmetry.json", "symmetry_finals.npz"),
}
"""The files each analysis writes in its --out folder."""


def _analysis_inputs(
    model_path, init, config_path, image_size, padding, steps, out, analysis, overwrite
):
    """Model, initial state (physical units), training config and steps for ``analyse``."""
    from .._validate import count
    from ..analysis.inputs import load_initial, run_config
    from ..train import load_config

    _check_outputs_in(out, ANALYSIS_FILES[analysis], "--out", None, overwrite)
    model = _unconditioned(_load_model(model_path), "analyse")
    config = load_config(config_path) if config_path is not None else run_config(model_path)
    initial = load_initial(init, model, config=config, image_size=image_size, padding=padding)
    if steps is None:
        steps = None if config is None else config.horizon()
        if steps is None:
            raise UserError("give --steps (no training config found to take the horizon from)")
    count(steps, "--steps", 1)
    return model, initial, config, steps


@analyse_app.command("perturb")
@user_errors
def perturb_command(
    model_path: ModelArgument,
    init: InitOption,
    out: AnalysisOut,
    steps: StepsOption = None,
    size: Annotated[int, typer.Option("--size", help="Side r of the perturbed patch.")] = 1,
    kind: Annotated[
        str, typer.Option("--kind", help="invert (x -> 1 - x), zero or noise.")
    ] = "invert",
    stride: Annotated[int, typer.Option("--stride", help="Distance between perturbations.")] = 1,
    threshold: Annotated[
        float, typer.Option("--threshold", help="A cell changes if a channel moves by more.")
    ] = 0.1,
    chunk: Annotated[int, typer.Option("--chunk", help="Perturbations run at once.")] = 64,
    config_path: ConfigOption = None,
    image_size: ImageSizeOption = None,
    padding: PaddingOption = None,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
):
    """Local perturbations (Fig 10): perturb each r x r patch, count changed cells at n."""
    from .._validate import count
    from ..analysis.inputs import gray_scott_partner
    from ..analysis.perturbation import check_settings
    from ..analysis.report import perturb_report

    model, initial, config, steps = _analysis_inputs(
        model_path, init, config_path, image_size, padding, steps, out, "perturb", overwrite
    )
    height, width = initial.shape[:2]
    check_settings(height, width, size, stride, threshold, kind)
    count(chunk, "--chunk", 1)
    report = perturb_report(
        model,
        initial,
        out,
        steps=steps,
        size=size,
        kind=kind,
        stride=stride,
        threshold=threshold,
        key=_key(seed),
        pde=gray_scott_partner(config, steps, log=lambda line: typer.echo(line, err=True)),
        chunk=chunk,
    )
    for who in ("nca", "pde"):
        if who in report:
            row = report[who]
            typer.echo(
                f"{who.upper():>4}: {row['positions']} perturbations, changed cells at n = "
                f"{steps}: mean {row['mean_changed_cells']:.1f}, max {row['max_changed_cells']} "
                f"(patch {row['patch_cells']} cells)"
            )
    written = ["perturb.png", *(["perturb_pde.png"] if "pde" in report else []), "perturb.json"]
    typer.echo("wrote " + ", ".join(str(out / name) for name in written))


@analyse_app.command("adversarial")
@user_errors
def adversarial_command(
    model_path: ModelArgument,
    init: InitOption,
    out: AnalysisOut,
    steps: StepsOption = None,
    mode: Annotated[str, typer.Option("--mode", help="destroy, preserve or both.")] = "both",
    iterations: Annotated[int, typer.Option("--iterations", help="Optimiser steps K.")] = 200,
    budget: Annotated[
        float | None, typer.Option("--budget", help="Largest norm of the perturbation.")
    ] = None,
    learning_rate: Annotated[
        float, typer.Option("--learning-rate", help="Adam step size (data units).")
    ] = 0.01,
    config_path: ConfigOption = None,
    image_size: ImageSizeOption = None,
    padding: PaddingOption = None,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
):
    """Adversarial initial conditions (Fig 11): optimise kappa^n, beside a random control."""
    from .._resources import MAX_STEPS
    from .._validate import count, real
    from ..analysis.adversarial import MODES
    from ..analysis.report import adversarial_report

    if mode not in (*MODES, "both"):
        raise UserError(f"--mode must be destroy, preserve or both, got {mode!r}")
    count(iterations, "--iterations", 1, MAX_STEPS)
    if budget is not None and real(budget, "--budget", 0.0) == 0:
        raise UserError("--budget must be > 0")
    if real(learning_rate, "--learning-rate", 0.0) == 0:
        raise UserError("--learning-rate must be > 0")
    model, initial, _, steps = _analysis_inputs(
        model_path, init, config_path, image_size, padding, steps, out, "adversarial", overwrite
    )
    report = adversarial_report(
        model,
        initial,
        out,
        steps=steps,
        modes=MODES if mode == "both" else (mode,),
        iterations=iterations,
        learning_rate=learning_rate,
        budget=budget,
        key=_key(seed),
    )
    typer.echo("mode       who        ||x~||   change at n   kappa   change at 2n")
    for name, numbers in report["modes"].items():
        for who in ("adversarial", "random_control"):
            row = numbers[who]
            typer.echo(
                f"{name:9s}  {who.split('_')[-1]:9s} {row['perturbation_norm']:7.3f}  "
                f"{row['final_change']:11.3f}  {row['kappa']:7.3f}  "
                f"{row['final_change_at_twice_n']:11.3f}"
            )
    typer.echo(f"wrote {out / 'adversarial.png'}, {out / 'adversarial.json'}")


@analyse_app.command("symmetry")
@user_errors
def symmetry_command(
    model_path: ModelArgument,
    init: InitOption,
    out: AnalysisOut,
    steps: StepsOption = None,
    config_path: ConfigOption = None,
    image_size: ImageSizeOption = None,
    padding: PaddingOption = None,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
):
    """Symmetry (Fig 12): run from rotated / flipped --init, compare with the rotated run."""
    from ..analysis.report import symmetry_report

    model, initial, _, steps = _analysis_inputs(
        model_path, init, config_path, image_size, padding, steps, out, "symmetry", overwrite
    )
    if initial.shape[0] != initial.shape[1]:
        raise UserError(
            f"symmetry needs a square lattice for rotations, got {initial.shape[0]}x"
            f"{initial.shape[1]}"
        )
    report = symmetry_report(model, initial, out, steps=steps, key=_key(seed))
    for name, error in report["relative_error"].items():
        typer.echo(f"  {name:16s} relative error {error:.4f}")
    typer.echo(f"  stochastic noise floor {report['stochastic_noise_floor']:.4f}")
    typer.echo(f"wrote {out / 'symmetry.png'}, {out / 'symmetry.json'}")
