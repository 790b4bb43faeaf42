"""Command line: ``python -m pruneflow [overrides]`` or the ``pruneflow`` console script."""

import hydra
from omegaconf import DictConfig

from pruneflow.config import ConfigError, exit_on_config_error, register

register()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    from pruneflow.pipeline import run

    try:
        return run(cfg)
    except ConfigError as exc:  # a bad value: a one-line message, not a traceback
        exit_on_config_error(str(exc))


if __name__ == "__main__":
    main()
