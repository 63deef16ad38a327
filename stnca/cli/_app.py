"""The ``stnca`` Typer apps (the command groups register on them), the one-line error
convention (``UserError``, ``user_errors``) and ``--version``."""

from __future__ import annotations

import functools
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
analyse_app = typer.Typer(
    help="Analyse a trained model: local perturbations, adversarial initial conditions, "
    "symmetry (the paper's section 3.2.2), regeneration after damage.",
    no_args_is_help=True,
)
app.add_typer(analyse_app, name="analyse")
export_app = typer.Typer(
    help="Export a trained model (a web page to play with).", no_args_is_help=True
)
app.add_typer(export_app, name="export")


class UserError(ValueError):
    """A problem with the user's input, reported in one line with exit code 2."""


RERUN_TO_RESUME = "interrupted: run the same command again to continue where it stopped"
"""What an interrupted command that trains many models (sweep, reproduce, the symmetry
experiment) says: it has no --resume; a rerun reuses finished runs and resumes the others."""


def _fail(message: str, code: int = 2):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


FLAGS = {"resume=True": "--resume", "overwrite=True": "--overwrite"}
"""The library's words for a switch a command has as a flag: its message names the flag."""


def as_flags(message: str, parameters: dict[str, str] | None = None) -> str:
    """A library message in a command's words: ``overwrite=True`` becomes ``--overwrite``
    (the library speaks in parameter names; other names read the same as their options),
    and a message that starts with one of ``parameters`` (name -> the command's flag, for
    names that differ from their flags) starts with its flag."""
    for words, flag in FLAGS.items():
        message = message.replace(words, flag)
    for name, flag in (parameters or {}).items():
        if message.startswith(name):
            return flag + message[len(name) :]
    return message


def user_errors(command):
    """Turn ``ValueError`` (bad arguments, bad files) into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ValueError as error:
            _fail(as_flags(str(error).splitlines()[0]) if str(error) else type(error).__name__)
        except OSError as error:  # unwritable or unreadable paths
            where = f": {error.filename}" if error.filename else ""
            _fail(f"{error.strerror or error}{where}")

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
