"""What a job needs from the process it runs in, installed per job so that it works in any
Hydra launcher's worker: its log file (libraries' output captured into it) and SIGTERM handling.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from pruneflow.results import LOG_FILE

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


@contextlib.contextmanager
def job_log(out_dir: Path, name: str = LOG_FILE) -> Iterator[Path]:
    """The job's log file, with everything libraries print captured into it.

    It is the file Hydra's job logging writes (``<job folder>/pruneflow.log``) when there is
    one, else ``out_dir/name``. While the job runs, the process's standard error (file
    descriptor 2: TensorFlow's C++ start-up lines, the converter's output, Python warnings)
    goes into it too, and console handlers pass only pruneflow's own log records, so the
    console shows pruneflow's lines and the file has everything.
    """
    root = logging.getLogger()
    consoles = [
        h
        for h in root.handlers
        if type(h) is logging.StreamHandler and h.stream in (sys.stdout, sys.stderr)
    ]
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    added = None
    if files:
        path = Path(files[0].baseFilename)
    else:
        path = Path(out_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        added = logging.FileHandler(path)
        added.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(added)
    try:
        with open(path, "ab") as file, stderr_to(file.fileno()):
            for handler in consoles:
                handler.addFilter(_own_records)
            try:
                yield path
            finally:
                for handler in consoles:
                    handler.removeFilter(_own_records)
    finally:
        for handler in root.handlers:
            handler.flush()
        if added is not None:
            root.removeHandler(added)
            added.close()


@contextlib.contextmanager
def stderr_to(fd: int) -> Iterator[None]:
    """The process's standard error, file descriptor 2 (where C++ libraries such as TensorFlow
    write, beyond Python's reach), goes to ``fd`` while the block runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except OSError:  # a full disk: what it held is lost with that file, not sent elsewhere
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
            with contextlib.suppress(OSError):
                sys.stderr.flush()
        os.dup2(saved, 2)  # always: else the error line is written into the full file, and
        os.close(saved)  # the exit's flush of it fails (exit 120, nothing said)


@contextlib.contextmanager
def stderr_held() -> Iterator[None]:
    """Standard error (file descriptor 2) held back while the block runs, outside any job's log
    (TensorFlow's C++ start-up lines on a sweep's console, or on ``pruneflow compare``'s):
    written out only if the block fails, so that what went wrong is still said (not when it
    is interrupted: Ctrl-C says one line)."""
    with tempfile.TemporaryFile() as held:
        try:
            with stderr_to(held.fileno()):
                yield
        except KeyboardInterrupt:
            raise
        except BaseException:
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise


def _own_records(record: logging.LogRecord) -> bool:
    return record.name == "pruneflow" or record.name.startswith("pruneflow.")


class Interrupted(KeyboardInterrupt):
    """The job was interrupted (Ctrl-C, SIGTERM); its run ends KILLED."""


class Termination:
    """``with Termination() as term:`` makes SIGTERM end the job like Ctrl-C, and remembers it.

    The handler is installed for the job's duration in whatever process runs it (the main
    thread only: Python delivers signals there), and the previous one is restored after.
    ``term.guard()`` turns any error raised after a termination request into
    :class:`Interrupted`: a signal landing inside TensorFlow's C++ code can surface as a
    TensorFlow error instead of the KeyboardInterrupt the handler raised, and library code can
    swallow the KeyboardInterrupt altogether; so the job also calls ``term.check()`` between
    stages, and the guard checks once more when its block ends.
    """

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous = None

    def _handle(self, signum, frame) -> None:
        self.requested = signal.Signals(signum).name
        raise Interrupted(f"terminated by {self.requested}")

    def __enter__(self) -> Termination:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def check(self) -> None:
        """Raise :class:`Interrupted` if a termination was requested."""
        if self.requested:
            raise Interrupted(f"terminated by {self.requested}")

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            if self.requested:
                raise Interrupted(f"terminated by {self.requested}") from exc
            raise
        self.check()


def process_alive(pid: int, since_ms: int | None = None) -> bool:
    """Whether process ``pid`` of this host exists and (where /proc says) started no later
    than ``since_ms`` (a run's start, ms since the epoch): a newer process reusing the pid is
    not the run's."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if since_ms is None:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: start time since boot
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return True
    return started <= since_ms / 1000 + 2  # /proc's start time has a one-second grain
