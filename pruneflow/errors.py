"""Errors a user can act on. Their messages say what to change; the command line prints them
without a traceback.

:class:`ArgumentError` is what a stage function raises for a bad argument, in its own terms
(``sparsity=1.5 is invalid ...``); :mod:`pruneflow.config` turns it into a :class:`ConfigError`
naming the config key (``prune.sparsity=1.5 ...``). It is defined in the device runner, which
must stay one self-contained file, and re-exported here.
"""

from typing import Any

from pruneflow.device_runner import ArgumentError


class PruneflowError(Exception):
    """Base of the errors whose message tells the user what to do."""


class ConfigError(PruneflowError, ValueError):
    """A config value outside its valid values; the message names the key and those values."""


def require(ok: bool, name: str, value: Any, valid: str, *, required: bool = False) -> None:
    """Raise :class:`ArgumentError` for argument ``name`` unless ``ok``."""
    if not ok:
        raise ArgumentError(name, value, valid, required=required)


__all__ = ["ArgumentError", "ConfigError", "PruneflowError", "require"]
