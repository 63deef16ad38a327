"""What the command shells share: output and folder checks (the one output policy), seeds,
progress and streamed writes, model loading, condition flags, the shared options."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from ._app import UserError


def _check_folder(path: Path, option: str) -> Path:
    """Fail early if ``path`` cannot be (or become) a writable folder: it or an ancestor is a
    file, or the nearest existing one is not writable."""
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                raise UserError(f"{option} {path}: {folder} is a file, not a folder")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise UserError(f"{option} {path}: cannot write in {folder} (permission denied)")
            break
    return path


def _check_output(
    path: Path,
    suffixes: tuple[str, ...],
    option: str,
    inputs: Mapping[str, Path | None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Fail early if ``path`` cannot be written: wrong suffix, a folder, an unwritable place,
    one of the command's ``inputs`` (``{option: path}``), which it would overwrite, or a
    file that exists already and ``overwrite`` (the command's --overwrite) was not given:
    the one output policy of every command."""
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{option} must end in {' or '.join(suffixes)}, got {path.name!r}")
    if path.exists() and path.is_dir():
        raise UserError(f"{option} {path} is a folder")
    _check_folder(path.parent, option)
    _check_not_input(path, option, inputs or {})
    if path.exists() and not overwrite:
        raise UserError(f"{option}: {path} already exists; pass --overwrite to replace it")
    return path


def _check_outputs_in(
    folder: Path, names, option: str, inputs=None, overwrite: bool = False
) -> None:
    """``_check_output`` for each of a command's files ``names`` in ``folder``."""
    _check_folder(folder, option)
    for name in names:
        _check_output(folder / name, (Path(name).suffix,), option, inputs, overwrite)


OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace output files that already exist.")
]

# the model and test trajectory of the commands that read a rule (inspect, prune)
RuleModelArgument = Annotated[
    Path,
    typer.Argument(help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper)."),
]
RuleTruthOption = Annotated[
    Path | None,
    typer.Option(
        "--truth",
        help="Test trajectory .npy (default: a Gray-Scott model's unseen test, an image "
        "model's image sequence).",
    ),
]
RuleStepsOption = Annotated[
    int | None,
    typer.Option("--steps-between-frames", help="NCA steps per frame of --truth."),
]


def _check_not_input(path: Path, option: str, inputs: Mapping[str, Path | None]) -> None:
    """Refuse an output that is one of the inputs (it would be destroyed)."""
    for name, source in inputs.items():
        if source is not None and path.exists() and Path(source).exists():
            if os.path.samefile(path, source):
                raise UserError(
                    f"{option} {path} is the {name} file: refusing to overwrite an input"
                )


def _key(seed: int):
    """A PRNG key from a user's --seed (0 <= seed < 2**32)."""
    import jax

    from .._validate import seed as check_seed

    return jax.random.key(check_seed(seed, "--seed"))


def _step_progress(total: int):
    """A ``progress(steps_done)`` callback printing a line at most every 10 s."""
    import time

    start = last = time.perf_counter()

    def report(done: int) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last > 10 or done == total:
            last = now
            eta = (total - done) * (now - start) / max(done, 1)
            typer.echo(f"  step {done}/{total}, {now - start:.0f} s, eta {eta:.0f} s", err=True)

    return report


def _load_model(path: Path):
    from ..serialization import load_model

    return load_model(path)


CONDITION_HELP = (
    "A conditioned model's parameter: NAME=VALUE, or NAME=FIELD.npy for an (H, W) field "
    "varying in space; repeat for each condition (e.g. --condition alpha=0.061)."
)


def _condition_values(flags: list[str] | None) -> dict:
    """``--condition NAME=VALUE|FIELD.npy`` flags -> values by name (each name once)."""
    from ..conditions import parse_condition

    values: dict = {}
    for text in flags or []:
        name, value = parse_condition(text)
        if name in values:
            raise UserError(f"--condition {name} is given twice")
        values[name] = value
    return values


def _unconditioned(model, command: str):
    """Refuse a conditioned model in a command that cannot give it its conditions yet, and a
    model on a line or in a volume (these commands take 2-D models)."""
    from ..model import require_plane

    require_plane(model, f"`stnca {command}`")
    if model.conditions is not None:
        raise UserError(
            f"the model is conditioned on {', '.join(model.condition_names)}; `stnca {command}` "
            f"does not take conditions yet (use rollout or evaluate with --condition)"
        )
    return model


ModelArgument = Annotated[
    Path,
    typer.Argument(
        metavar="MODEL",
        help="Trained model.eqx, or a shipped model's name (e.g. gray_scott_paper).",
    ),
]
InitOption = Annotated[
    str,
    typer.Option(
        "--init",
        help="Initial condition: a .npy state (H, W, C) in physical units, an image file or "
        "emoji:NAME.",
    ),
]
AnalysisOut = Annotated[Path, typer.Option("--out", help="Output folder for the figure and JSON.")]
StepsOption = Annotated[
    int | None,
    typer.Option("--steps", help="NCA steps n (default: the training horizon of the model's run)."),
]
ImageSizeOption = Annotated[
    int | None,
    typer.Option("--image-size", help="Resize an image --init to this (default: as in training)."),
]
PaddingOption = Annotated[
    int | None,
    typer.Option("--padding", help="Empty cells around an image --init (default: as in training)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The model's training config (default: config.toml beside the model file).",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for stochastic updates and noise.")]
