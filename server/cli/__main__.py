"""`python -m server.cli`: the capgate command without the console script."""

from server.cli.main import main

main()
