"""``python -m stnca`` runs the command line."""

from .console import main

main()
