"""Errors a user can act on. Their messages say what to change; the command line prints them
without a traceback.

:class:`ArgumentError` is what a stage function raises for a bad argument, in its own terms
(``sparsity=1.5 is invalid ...``); `pruneflow.config.check` turns it into a :class:`ConfigError`
naming the config key (``prune.sparsity=1.5 ...``). The device runner, which imports nothing of
pruneflow, raises its own (:class:`pruneflow.devices.runner.ArgumentError`, the same words);
:func:`pruneflow.devices.config.runner_arguments` turns it into this one.
"""

import math
import sys
from typing import Any, NoReturn


class PruneflowError(Exception):
    """Base of the errors whose message tells the user what to do."""


class ArgumentError(ValueError):
    """A bad argument, named with its valid values (``sparsity=1.5 is invalid: valid values are
    ...``), in the terms of the function that refused it."""

    def __init__(self, name: str, value: Any, valid: str, required: bool = False):
        self.name, self.value, self.valid, self.required = name, value, valid, required
        super().__init__(self.describe())

    def describe(self, prefix: str = "") -> str:
        """The message, with ``prefix`` (e.g. ``"delegate."``) before the argument's name."""
        if self.required:
            return f"{prefix}{self.name} is required: {self.valid}"
        return f"{prefix}{self.name}={self.value!r} is invalid: valid values are {self.valid}"


class DeviceError(PruneflowError, RuntimeError):
    """A device step failed; the message names the device and the step."""


class ConfigError(PruneflowError, ValueError):
    """A config value outside its valid values; the message names the key and those values."""


def require(ok: bool, name: str, value: Any, valid: str, *, required: bool = False) -> None:
    """Raise :class:`ArgumentError` for argument ``name`` unless ``ok``."""
    if not ok:
        raise ArgumentError(name, value, valid, required=required)


def positive(value: Any) -> bool:
    """Whether ``value`` is a finite number > 0: ``inf`` passes ``> 0`` (a learning rate of
    inf trains to NaN), ``nan`` fails every comparison; neither is a rate, a time or a size."""
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def one_line(exc: BaseException) -> str:
    """An error as one line: Hydra's composition errors span several (the override, then
    OmegaConf's reason with its key and types; an unknown option, then the group's options)."""
    override = getattr(exc, "override", None)  # hydra.errors.OverrideParseException
    if isinstance(override, str):
        return _unreadable(override, str(exc))
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    head = lines[0] if lines else type(exc).__name__
    causes = str(exc.__cause__).splitlines() if exc.__cause__ is not None else []
    why = next((line.strip() for line in causes if line.strip()), None)
    merging = "Error merging override "
    if head.startswith(merging) and why:  # a value of the wrong type: `train.epochs=abc`
        return f"{head[len(merging) :]} is invalid: {why}"
    options = getattr(exc, "options", None)  # hydra.errors.MissingConfigException
    if options:
        return f"{head}: valid options are {', '.join(options)}"
    text = " ".join(lines) or head
    return f"{text} ({why})" if why else text


_LEXER = "LexerNoViableAltException: "


def _unreadable(override: str, message: str) -> str:
    """An override Hydra's grammar cannot read, in one line that says how to write it: an
    unquoted value takes ASCII letters, digits and a few signs only (Hydra shows a caret
    under the first other character); a quoted one, anything."""
    key, eq, value = override.partition("=")
    if not eq:
        return f"cannot read the override {override!r}: it has no value; write {key}=<value>"
    quoted = f"\"{key}='{value}'\"" if "'" not in value else f"'{key}=\"{value}\"'"
    lines = message.splitlines()
    if lines[0].startswith(_LEXER) and len(lines) > 1 and lines[1].endswith("^"):
        at = len(lines[1]) - 1 - len(_LEXER)  # the caret's column in the override
        if 0 <= at < len(override):
            if at < len(key):
                return (
                    f"cannot read the override {override!r}: {override[at]!r} cannot be in a key "
                    "(keys are ASCII letters, digits, _ and .)"
                )
            return (
                f"cannot read the override {override!r}: {override[at]!r} cannot be in an "
                f"unquoted value; quote the value: {quoted}"
            )
    why = lines[0].removeprefix(f"Error parsing override '{override}'").strip() or lines[-1]
    return (
        f"cannot read the override {override!r} ({why}): mind its brackets, or quote the "
        f"value: {quoted}"
    )


def clip(text: str, limit: int) -> str:
    """``text``'s first line, at most ``limit`` characters: cut at the last space before the
    limit (``...`` marks the cut), never inside a word; a single word longer than the limit
    is cut at it."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if len(line) <= limit:
        return line
    head = line[: max(limit - 4, 1)]
    cut = head.rstrip().rfind(" ")
    return (head[:cut] if cut > 0 else head).rstrip(" ,;:(") + " ..."


def exit_on_user_error(message: str, status: int = 2) -> NoReturn:
    """Print a mistake the user can fix the way a command-line tool does, ``pruneflow: error:
    ...`` in one line, and exit with ``status`` (2: a bad value or argument)."""
    print(f"pruneflow: error: {message}", file=sys.stderr)
    raise SystemExit(status)


__all__ = [
    "ArgumentError",
    "ConfigError",
    "PruneflowError",
    "clip",
    "exit_on_user_error",
    "one_line",
    "positive",
    "require",
]
