"""Command line: ``python -m pruneflow [overrides]`` or the ``pruneflow`` console script."""

import signal
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from pruneflow.config import exit_on_config_error, register
from pruneflow.errors import ConfigError, PruneflowError

register()


def _terminated(signum, frame):
    # `kill` (SIGTERM) ends a run like Ctrl-C: its MLflow run is marked KILLED, not left RUNNING.
    from pruneflow.tracking import TERMINATION_REQUESTED

    TERMINATION_REQUESTED.set()
    raise KeyboardInterrupt(f"terminated by signal {signum}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    from pruneflow.pipeline import run

    try:
        return run(cfg)
    except PruneflowError as exc:
        # Errors the user can act on read better without a traceback. In a sweep the other
        # jobs must still run, so there Hydra reports the error after them.
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        if isinstance(exc, ConfigError):  # a bad value: status 2, like a bad argument
            exit_on_config_error(str(exc))
        print(f"pruneflow: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def cli() -> None:
    """The console script and `python -m pruneflow`."""
    signal.signal(signal.SIGTERM, _terminated)
    main()


if __name__ == "__main__":
    cli()
