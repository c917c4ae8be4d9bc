"""``python -m dca`` runs the command line."""

from dca.cli import main

main()
