"""The ``stnca`` command line: simulate, train, rollout, evaluate, demo.

Every command validates its input before it computes or writes anything. Bad input gives
one line on standard error and exit code 2; files are written atomically, so a failed
command leaves no partial output and never clobbers an earlier good file.
"""

from __future__ import annotations

import typer

# Each module registers its commands on the apps; the import order is the order of --help.
# isort: off
from . import train as _train  # noqa: F401  (train)
from . import running as _running  # noqa: F401  (rollout, evaluate)
from . import benchmark as _benchmark  # noqa: F401
from . import demo as _demo  # noqa: F401
from . import importing as _importing  # noqa: F401  (import)
from . import extract as _extract  # noqa: F401
from . import inspect as _inspect  # noqa: F401
from . import prune as _prune  # noqa: F401
from . import sweep as _sweep  # noqa: F401  (sweep, reproduce)
from . import simulate as _simulate  # noqa: F401  (the simulate group)
from . import analyse as _analyse  # noqa: F401  (the analyse group)
from . import regenerate as _regenerate  # noqa: F401  (analyse regenerate)
from . import symmetry_experiment as _symmetry_experiment  # noqa: F401
from . import zoo as _zoo  # noqa: F401  (analyse zoo-experiment)
from . import export as _export  # noqa: F401  (the export group)

# isort: on
from ._app import RERUN_TO_RESUME as RERUN_TO_RESUME
from ._app import UserError as UserError
from ._app import app as app


def run(argv: list[str] | None = None) -> int:
    """The console script: ``app``, with usage errors (unknown option, missing or unparsable
    value) reduced to one line on stderr and exit code 2."""
    from typer.exceptions import TyperException

    try:
        code = app(args=argv, prog_name="stnca", standalone_mode=False)
    except TyperException as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.format_message())
            return 0
        typer.echo(f"error: {error.format_message()}", err=True)
        return error.exit_code
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0
