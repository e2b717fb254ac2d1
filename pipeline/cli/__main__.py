"""`python -m pipeline.cli …` is the `smtp-auth` command."""

from pipeline.cli.main import main

main()
