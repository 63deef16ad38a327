"""``stnca simulate gray-scott``: PDE trajectories to train on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.gray_scott import GrayScottParams
from ._app import (
    UserError,
    simulate_app,
    user_errors,
)
from ._common import OverwriteOption, _check_output, _key, _step_progress


@simulate_app.command("gray-scott")
@user_errors
def simulate_gray_scott(
    out: Annotated[Path, typer.Option("--out", help="Output trajectory file (.npy).")],
    size: Annotated[int, typer.Option("--size", help="Lattice size S (S x S cells).")] = 64,
    steps: Annotated[int, typer.Option("--steps", help="Number of Euler steps N.")] = 1024,
    every: Annotated[int, typer.Option("--every", help="Keep every K-th frame.")] = 32,
    batch: Annotated[
        int | None, typer.Option("--batch", help="Number of trajectories R (adds a leading axis).")
    ] = None,
    init: Annotated[
        str | None,
        typer.Option("--init", help="Initial condition: smooth, high_frequency, noise, uniform."),
    ] = None,
    init_file: Annotated[
        Path | None, typer.Option("--init-file", help="(H, W, 2) or (R, H, W, 2) .npy of (A, B).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the initial conditions.")] = 0,
    dims: Annotated[
        int, typer.Option("--dims", help="Lattice dimension: 1 (a line), 2 or 3 (a volume).")
    ] = 2,
    dt: Annotated[float, typer.Option("--dt", help="Euler time step.")] = GrayScottParams.dt,
    diffusion_a: Annotated[
        float, typer.Option("--DA", help="Diffusion constant of A.")
    ] = GrayScottParams.diffusion_a,
    diffusion_b: Annotated[
        float, typer.Option("--DB", help="Diffusion constant of B.")
    ] = GrayScottParams.diffusion_b,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Feed rate alpha.")
    ] = GrayScottParams.alpha,
    gamma: Annotated[
        float, typer.Option("--gamma", help="Decay rate gamma (B dies at gamma + alpha).")
    ] = GrayScottParams.gamma,
    png: Annotated[
        bool, typer.Option("--png", help="Also write a PNG of frames next to the .npy.")
    ] = False,
    overwrite: OverwriteOption = False,
):
    """Simulate the Gray-Scott equations; write T = N/K + 1 frames as float32 (T, S, S, 2)."""
    import numpy as np

    from .. import viz_volumes
    from ..data import io
    from ..data.initial_conditions import INITIAL_CONDITIONS
    from ..data.initial_volumes import FAMILIES
    from ..data.simulation import simulate_to_file

    _check_output(out, (".npy",), "--out", {"--init-file": init_file}, overwrite)
    if png:
        _check_output(out.with_suffix(".png"), (".png",), "--png (next to --out)", None, overwrite)
    if init is not None and init_file is not None:
        raise UserError("give either --init or --init-file, not both")
    if dims not in (1, 2, 3):
        raise UserError(f"--dims must be 1, 2 or 3, got {dims}")
    initial: np.ndarray | str
    if init_file is not None:
        if batch is not None:
            raise UserError("--batch cannot be used with --init-file (its shape sets R)")
        initial = io.load_states(init_file, channels=2, what="--init-file", dims=dims)
    else:
        initial = "smooth" if init is None else init
        families = INITIAL_CONDITIONS if dims == 2 else FAMILIES
        if initial not in families:
            where = "" if dims == 2 else f" on a {dims}-D lattice"
            raise UserError(
                f"unknown --init {init!r}{where}; choose from {', '.join(sorted(families))}"
            )
        if size < 3:
            raise UserError(f"--size must be at least 3, got {size}")
        if batch is not None and batch < 1:
            raise UserError(f"--batch must be at least 1, got {batch}")
    trajectory = simulate_to_file(
        out,
        initial,
        steps,
        every=every,
        size=size,
        batch=batch,
        key=_key(seed),
        params=GrayScottParams(diffusion_a, diffusion_b, alpha, gamma, dt),
        log=typer.echo,
        progress=_step_progress(steps),
        dims=dims,
    )
    typer.echo(f"wrote {out} with shape {trajectory.shape}")
    if png:
        picture = viz_volumes.lattice_figure(
            trajectory,
            out.with_suffix(".png"),
            dims=dims,
            every=every,
            channel_names=("A", "B"),
            title="Gray-Scott, species B" if dims != 1 else "Gray-Scott",
        )
        typer.echo(f"wrote {picture}")


def _parameters(values: list[str] | None) -> dict[str, float]:
    """``--param NAME=VALUE`` options as a dict of numbers."""
    parameters: dict[str, float] = {}
    for text in values or []:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise UserError(f"--param must be NAME=VALUE, got {text!r}")
        try:
            parameters[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--param {name.strip()} must be a number, got {value!r}") from None
    return parameters


@simulate_app.command("pde")
@user_errors
def simulate_pde(
    system: Annotated[
        str,
        typer.Argument(
            help="The system: gray_scott, brusselator, fitzhugh_nagumo, swift_hohenberg, "
            "allen_cahn, cahn_hilliard, fisher_kpp."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output trajectory file (.npy).")],
    dims: Annotated[int, typer.Option("--dims", help="Spatial dimensions: 1, 2 or 3.")] = 2,
    size: Annotated[int, typer.Option("--size", help="Cells per side S (S^dims cells).")] = 64,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Steps N of the system's dt (default: its own).")
    ] = None,
    every: Annotated[
        int | None, typer.Option("--every", help="Keep every K-th frame (default: its own).")
    ] = None,
    batch: Annotated[
        int | None, typer.Option("--batch", help="Number of trajectories R (adds a leading axis).")
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            help="Initial condition: noise, blobs, seeds, uniform (default: the system's own).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the initial conditions.")] = 0,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A parameter NAME=VALUE (repeatable), e.g. --param b=9."),
    ] = None,
    png: Annotated[
        bool,
        typer.Option(
            "--png",
            help="Also write a PNG next to the .npy (1-D: space-time image; 3-D: middle "
            "slices and maximum projections).",
        ),
    ] = False,
    overwrite: OverwriteOption = False,
):
    """Simulate a system of the zoo (stnca.data.systems) in 1-D, 2-D or 3-D; write
    T = N/K + 1 frames as float32 (T, *space, C), channel-last."""
    from .. import viz_volumes
    from ..data import systems

    _check_output(out, (".npy",), "--out", None, overwrite)
    if png:
        _check_output(out.with_suffix(".png"), (".png",), "--png (next to --out)", None, overwrite)
    chosen = systems.system(system, _parameters(param))
    trajectory = systems.simulate_system_to_file(
        out,
        chosen,
        init,
        steps,
        every=every,
        dims=dims,
        size=size,
        batch=batch,
        key=_key(seed),
    )
    typer.echo(f"wrote {out} with shape {trajectory.shape}")
    if png:
        picture = viz_volumes.lattice_figure(
            trajectory,
            out.with_suffix(".png"),
            dims=dims,
            every=chosen.every if every is None else every,
            channel_names=chosen.channels,
            title=f"{chosen.title}, {dims}-D",
        )
        typer.echo(f"wrote {picture}")


def _system_command(name: str) -> None:
    """``stnca simulate NAME ...``: ``stnca simulate pde NAME ...`` under the system's own
    name (hyphens for underscores), with the same options."""
    import inspect

    from ..data.systems import SYSTEMS

    def command(**options):
        return simulate_pde(name, **options)

    signature = inspect.signature(simulate_pde, eval_str=True)
    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:]
    )
    cls = SYSTEMS[name]
    command.__doc__ = (
        f"Simulate {cls.title} (the zoo's {name}) in 1-D, 2-D or 3-D: the same as "
        f"`stnca simulate pde {name}`."
    )
    simulate_app.command(name.replace("_", "-"))(command)


# named here, not read from stnca.data.systems.SYSTEMS, so that starting the CLI does not
# import exponax; gray_scott's own name is the finite-difference reference's command
OWN_COMMANDS = (
    "brusselator",
    "fitzhugh_nagumo",
    "swift_hohenberg",
    "allen_cahn",
    "cahn_hilliard",
    "fisher_kpp",
)
for _name in OWN_COMMANDS:
    _system_command(_name)
