"""What a job needs from the process it runs in, installed per job so that it works in any
Hydra launcher's worker: its log file (libraries' output captured into it) and SIGTERM handling;
and the command line's own handling of SIGTERM and Ctrl-C (:func:`interrupts_kept`).
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


# the interrupt the command line's handler last raised, as (type, message), until the command
# handles it (interrupt_handled) or interrupt_point raises it again
_kept: list[tuple[type[KeyboardInterrupt], str]] = []


def _interrupt(signum, frame) -> None:
    kind, message = (
        (KeyboardInterrupt, "")
        if signum == signal.SIGINT
        else (Interrupted, f"terminated by {signal.Signals(signum).name}")
    )
    _kept[:] = [(kind, message)]
    raise kind(message)


@contextlib.contextmanager
def interrupts_kept() -> Iterator[None]:
    """The command line's handling of SIGTERM and Ctrl-C (SIGINT, unless the shell ignores it:
    ``nohup``, ``&``): each raises in the main thread as usual, and is also kept until the
    command handles it (:func:`interrupt_handled`). Python swallows an exception raised where
    a signal lands inside a weakref callback or a ``__del__`` (a garbage collection while a
    report's plots are drawn: it prints "Exception ignored" and goes on), and some C code
    swallows it without a word; a kept one is raised again at the next
    :func:`interrupt_point`, and not printed as ignored."""
    signals = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signals.append(signal.SIGINT)
    previous = {s: signal.signal(s, _interrupt) for s in signals}
    hook = sys.unraisablehook

    def quiet(unraisable) -> None:
        if not (_kept and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            hook(unraisable)

    sys.unraisablehook = quiet
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for s, handler in previous.items():
            signal.signal(s, handler)
        _kept.clear()


def interrupt_handled() -> None:
    """The command caught the interrupt and ends as interrupted: nothing more to raise."""
    _kept.clear()


def interrupt_point() -> None:
    """Raise again, once, an interrupt that :func:`interrupts_kept` kept and that has not
    reached the command: before something is published or ended as whole (a report, a
    sweep's parent run, a job's next stage)."""
    if _kept:
        kind, message = _kept.pop()
        raise kind(message)


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
        """Raise :class:`Interrupted` if a termination was requested (or the command line's
        kept interrupt: :func:`interrupt_point`)."""
        if self.requested:
            raise Interrupted(f"terminated by {self.requested}")
        interrupt_point()

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
