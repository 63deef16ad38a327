"""``python -m stnca`` runs the command line."""

from .cli import app

app(prog_name="stnca")
