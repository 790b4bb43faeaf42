"""The command line: ``pruneflow`` (the console script) and ``python -m pruneflow``.

- ``pruneflow [overrides]``, ``pruneflow -m ...``: a job, a sweep (:mod:`.main`, Hydra's);
- ``pruneflow report ...``: tables, CSV and plots of runs (:mod:`.report`);
- ``pruneflow compare ...``: a sweep's models against its dense baseline, timed interleaved
  (:mod:`.compare`);
- ``pruneflow ui ...``: MLflow's UI on this folder's store (:mod:`.ui`);
- ``pruneflow device check|setup ...``: a device's readiness, and its venv (:mod:`.device`).
"""

from __future__ import annotations

import signal
import sys

from pruneflow.process import Interrupted

INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C


def _terminate(signum, frame) -> None:
    raise Interrupted(f"terminated by {signal.Signals(signum).name}")


def cli() -> None:
    """The console script and ``python -m pruneflow``: Ctrl-C or SIGTERM prints one line and
    exits 130, with the interrupted run (and a sweep's parent run) marked KILLED; a sweep ends
    with its summary however it ends. ``pruneflow report ...``, ``pruneflow compare ...``,
    ``pruneflow ui ...`` and ``pruneflow device check|setup ...`` are subcommands; everything
    else is Hydra's command line."""
    command = sys.argv[1:2]
    if command == ["report"]:
        from pruneflow.cli.report import main as report

        raise SystemExit(report(sys.argv[2:]))
    if command == ["compare"]:
        from pruneflow.cli.compare import main as compare

        raise SystemExit(compare(sys.argv[2:]))
    if command == ["ui"]:
        from pruneflow.cli.ui import main as ui

        raise SystemExit(ui(sys.argv[2:]))
    if command == ["device"]:
        from pruneflow.cli.device import main as device

        raise SystemExit(device(sys.argv[2:]))
    from pruneflow.cli.main import check_swept_group_keys, config_errors_exit_2, main
    from pruneflow.study.sweep import end_open_sweeps

    check_swept_group_keys(sys.argv[1:])
    signal.signal(signal.SIGTERM, _terminate)  # jobs install their own while they run
    try:
        with config_errors_exit_2():
            main()
    except KeyboardInterrupt:
        _interrupted()
    finally:
        try:
            end_open_sweeps(interrupted=False)  # a failed sweep (Hydra exits); no-op otherwise
        except KeyboardInterrupt:  # a second signal as it ends
            _interrupted()


def _interrupted() -> None:
    from pruneflow.study.sweep import end_open_sweeps

    end_open_sweeps(interrupted=True)
    print("pruneflow: interrupted", file=sys.stderr)
    raise SystemExit(INTERRUPTED) from None
