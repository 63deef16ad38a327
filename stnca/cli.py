"""The ``stnca`` command line: simulate, train, rollout, evaluate, demo.

Every command validates its input before it computes or writes anything. Bad input gives
one line on standard error and exit code 2; files are written atomically, so a failed
command leaves no partial output and never clobbers an earlier good file.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="stnca",
    help="Learn the local rule of a Neural Cellular Automaton from PDE or image time series.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
simulate_app = typer.Typer(help="Simulate PDEs to make training data.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")


class UserError(ValueError):
    """A problem with the user's input, reported in one line with exit code 2."""


def _fail(message: str, code: int = 2):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(command):
    """Turn ``ValueError`` (bad arguments, bad files) into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ValueError as error:
            _fail(str(error).splitlines()[0] if str(error) else type(error).__name__)

    return wrapper


def _version(value: bool):
    if value:
        from importlib.metadata import version

        typer.echo(f"stnca {version('stnca')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
):
    """Learn the local update rule of a Neural Cellular Automaton from PDE or image time series."""


def _check_output(path: Path, suffixes: tuple[str, ...], option: str) -> Path:
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{option} must end in {' or '.join(suffixes)}, got {path.name!r}")
    if path.exists() and path.is_dir():
        raise UserError(f"{option} {path} is a folder")
    return path


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
    dt: Annotated[float, typer.Option("--dt", help="Euler time step.")] = 1.0,
    diffusion_a: Annotated[float, typer.Option("--DA", help="Diffusion constant of A.")] = 0.1,
    diffusion_b: Annotated[float, typer.Option("--DB", help="Diffusion constant of B.")] = 0.05,
    alpha: Annotated[float, typer.Option("--alpha", help="Feed rate alpha.")] = 0.06230,
    gamma: Annotated[float, typer.Option("--gamma", help="Decay rate gamma.")] = 0.06268,
    png: Annotated[
        bool, typer.Option("--png", help="Also write a PNG of frames next to the .npy.")
    ] = False,
):
    """Simulate the Gray-Scott equations; write T = N/K + 1 frames as float32 (T, S, S, 2)."""
    import jax
    import numpy as np

    from . import viz
    from .data import gray_scott, io
    from .data.initial_conditions import INITIAL_CONDITIONS, initial_condition

    _check_output(out, (".npy",), "--out")
    if init is not None and init_file is not None:
        raise UserError("give either --init or --init-file, not both")
    params = gray_scott.GrayScottParams(diffusion_a, diffusion_b, alpha, gamma, dt)
    gray_scott._trajectory.check_steps(steps, every)
    if init_file is not None:
        if batch is not None:
            raise UserError("--batch cannot be used with --init-file (its shape sets R)")
        initial = io.load_states(init_file, channels=2, what="--init-file")
    else:
        init = "smooth" if init is None else init
        if init not in INITIAL_CONDITIONS:
            raise UserError(
                f"unknown --init {init!r}; choose from {', '.join(sorted(INITIAL_CONDITIONS))}"
            )
        if size < 3:
            raise UserError(f"--size must be at least 3, got {size}")
        if batch is not None and batch < 1:
            raise UserError(f"--batch must be at least 1, got {batch}")
        initial = initial_condition(init, size, key=jax.random.key(seed), batch=batch)
    trajectory = np.asarray(gray_scott.simulate(initial, steps, every=every, params=params))
    if not np.all(np.isfinite(trajectory)):
        _fail(
            "the simulation diverged (non-finite values); lower --dt or the diffusion constants", 1
        )
    io.save_array(out, trajectory)
    typer.echo(f"wrote {out} with shape {trajectory.shape}")
    if png:
        picture = viz.trajectory_figure(
            trajectory, out.with_suffix(".png"), every=every, title="Gray-Scott, species B"
        )
        typer.echo(f"wrote {picture}")


def run() -> None:  # pragma: no cover - console-script convenience
    sys.exit(app())
