"""Errors a user can act on. Their messages say what to change; the command line prints them
without a traceback.

:class:`ArgumentError` is what a stage function raises for a bad argument, in its own terms
(``sparsity=1.5 is invalid ...``); `pruneflow.config.check` turns it into a :class:`ConfigError`
naming the config key (``prune.sparsity=1.5 ...``). It is defined in the device runner, which
must stay one self-contained file, and re-exported here.
"""

import sys
from typing import Any, NoReturn

from pruneflow.devices.runner import ArgumentError


class PruneflowError(Exception):
    """Base of the errors whose message tells the user what to do."""


class ConfigError(PruneflowError, ValueError):
    """A config value outside its valid values; the message names the key and those values."""


def require(ok: bool, name: str, value: Any, valid: str, *, required: bool = False) -> None:
    """Raise :class:`ArgumentError` for argument ``name`` unless ``ok``."""
    if not ok:
        raise ArgumentError(name, value, valid, required=required)


def exit_on_user_error(message: str, status: int = 2) -> NoReturn:
    """Print a mistake the user can fix the way a command-line tool does, ``pruneflow: error:
    ...`` in one line, and exit with ``status`` (2: a bad value or argument)."""
    print(f"pruneflow: error: {message}", file=sys.stderr)
    raise SystemExit(status)


__all__ = ["ArgumentError", "ConfigError", "PruneflowError", "exit_on_user_error", "require"]
