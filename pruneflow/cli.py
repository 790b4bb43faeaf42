"""Command line: the ``pruneflow`` console script and ``python -m pruneflow``.

The only module that knows Hydra's runtime: it composes the packaged configs
(``pkg://pruneflow.conf``, so every kind of install finds them from any folder), hands the
job its output folder, and turns errors a user can act on into one line on standard error.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig

from pruneflow.config import exit_on_config_error, register
from pruneflow.errors import ConfigError

register()

INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C


class JobFailed(CompactHydraException):
    """A sweep job failed: Hydra prints this one line after the sweep (no traceback)."""


@hydra.main(version_base="1.3", config_path="pkg://pruneflow.conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    from pruneflow.pipeline import run

    hydra_cfg = HydraConfig.get()
    try:
        return run(cfg, output_dir=hydra_cfg.runtime.output_dir)
    except Exception as exc:  # noqa: BLE001 - one line for the user; the job log has the rest
        message = _describe(exc, hydra_cfg.runtime.output_dir)
        if hydra_cfg.mode == RunMode.MULTIRUN:  # the other jobs still run; Hydra reports after
            raise JobFailed(f"job {hydra_cfg.job.num}: {message}") from None
        if isinstance(exc, ConfigError):  # a bad value: status 2, like a bad argument
            exit_on_config_error(message)
        print(f"pruneflow: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None


def _describe(exc: Exception, output_dir: str) -> str:
    from pruneflow.errors import PruneflowError

    if isinstance(exc, PruneflowError):
        return str(exc)
    # Not a mistake the user made: say what and where the traceback is.
    return f"{type(exc).__name__}: {exc} (traceback in {output_dir}/pruneflow.log)"


def cli() -> None:
    """The console script and ``python -m pruneflow``: Ctrl-C or SIGTERM prints one line and
    exits 130, with the interrupted run marked KILLED."""
    try:
        main()
    except KeyboardInterrupt:
        print("pruneflow: interrupted", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
