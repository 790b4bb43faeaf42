"""The command line: ``pruneflow`` (the console script) and ``python -m pruneflow``.

- ``pruneflow [overrides]``, ``pruneflow -m ...``: a job, a sweep (:mod:`.main`, Hydra's);
- ``pruneflow report ...``: tables, CSV and plots of runs (:mod:`.report`);
- ``pruneflow compare ...``: a sweep's models against its dense baseline, timed interleaved
  (:mod:`.compare`);
- ``pruneflow ui ...``: MLflow's UI on this folder's store (:mod:`.ui`);
- ``pruneflow device check|setup ...``: a device's readiness, and its venv (:mod:`.device`);
- ``pruneflow inspect ...``: what each technique can do with a model, per layer (:mod:`.inspect`).
"""

from __future__ import annotations

import difflib
import importlib
import re
import sys
from typing import NoReturn

from pruneflow.process import interrupt_handled, interrupt_point, interrupts_kept

INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C
# each pruneflow.cli.<command>.main(argv)
COMMANDS = ("report", "compare", "ui", "device", "inspect")


def unknown_command(word: str) -> str:
    """``unknown command 'reprot'; did you mean 'report'?``: a first argument that is neither a
    command nor a ``key=value`` override (Hydra says ``missing EQUAL at '<EOF>'``)."""
    near = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    if near:
        return f"unknown command '{word}'; did you mean '{near[0]}'?"
    return (
        f"unknown command '{word}': the commands are {', '.join(COMMANDS)}; a run takes "
        "key=value overrides (pruneflow --help)"
    )


def _interrupted() -> NoReturn:
    """Ctrl-C (or SIGTERM where it is turned into one): one line, the shell's status 130."""
    print("pruneflow: interrupted", file=sys.stderr)
    raise SystemExit(INTERRUPTED) from None


def _subcommand(name: str, argv: list[str]) -> NoReturn:
    """``pruneflow NAME ARGV``: its ``main``'s status; Ctrl-C at any point (its imports
    included) is :func:`_interrupted`'s line, not a traceback."""
    try:
        with interrupts_kept():
            status = importlib.import_module(f"{__name__}.{name}").main(argv)
            interrupt_point()  # one that landed where it was swallowed
    except KeyboardInterrupt:
        _interrupted()
    raise SystemExit(status)


def cli() -> None:
    """The console script and ``python -m pruneflow``: Ctrl-C or SIGTERM prints one line and
    exits 130, with the interrupted run (and a sweep's parent run) marked KILLED; a sweep ends
    with its summary however it ends. ``pruneflow report ...``, ``pruneflow compare ...``,
    ``pruneflow ui ...``, ``pruneflow device check|setup ...`` and ``pruneflow inspect ...`` are
    subcommands; everything
    else is Hydra's command line."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in COMMANDS:
        _subcommand(command, sys.argv[2:])
    if re.fullmatch(r"[A-Za-z][\w-]*", command):  # a word, not key=value: no override
        from pruneflow.errors import exit_on_user_error

        exit_on_user_error(unknown_command(command))
    from pruneflow.cli.main import check_swept_group_keys, config_errors_exit_2, main
    from pruneflow.study.sweep import end_open_sweeps

    check_swept_group_keys(sys.argv[1:])
    with interrupts_kept():  # jobs install their own SIGTERM handler while they run
        try:
            with config_errors_exit_2():
                main()
            interrupt_point()  # one that landed where it was swallowed, after the last point
        except KeyboardInterrupt:
            _sweep_interrupted()
        finally:
            try:
                end_open_sweeps(interrupted=False)  # a failed sweep (Hydra exits); else no-op
            except KeyboardInterrupt:  # a second signal as it ends
                _sweep_interrupted()


def _sweep_interrupted() -> NoReturn:
    """:func:`_interrupted`, with a sweep's parent run (an open sweep's) ended KILLED first."""
    from pruneflow.study.sweep import end_open_sweeps

    interrupt_handled()
    end_open_sweeps(interrupted=True)
    _interrupted()
