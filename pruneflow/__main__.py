"""``python -m pruneflow [overrides]``: the same as the ``pruneflow`` console script."""

from pruneflow.cli import cli

if __name__ == "__main__":
    cli()
