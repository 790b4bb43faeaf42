"""Timing is exclusive per device: parallel sweep jobs may train at once, but only one times
inference on a device at a time: a file lock on this machine (:func:`timing_lock`), ``flock``
on a file in the device's temporary folder for an SSH device, its wait reported by the
device's shell in a line marked :data:`LOCK_MARK` (:func:`lock_wait`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pruneflow.files import check_lock, locked

LOCK_FILE = "pruneflow-timing.lock"  # in this machine's (or the device's) temporary folder
LOCK_MARK = "pruneflow-lock-wait"  # the device's shell reports its wait for the lock with it


@dataclass
class LockWindow:
    """When a job held a device's timing lock (seconds since the epoch) and how long it
    waited for it."""

    wait_s: float = 0.0
    start: float = 0.0
    end: float = 0.0


def timing_lock_path(folder: str | os.PathLike | None = None) -> Path:
    """This machine's timing lock: :data:`LOCK_FILE` in ``folder`` (default: the temporary
    folder, ``$TMPDIR`` or /tmp)."""
    return Path(folder or tempfile.gettempdir()) / LOCK_FILE


def check_timing_lock(folder: str | os.PathLike | None = None) -> None:
    """Refuse now, before any work, a timing lock that :func:`timing_lock` would refuse."""
    check_lock(timing_lock_path(folder), shared=True)


@contextlib.contextmanager
def timing_lock(folder: str | os.PathLike | None = None) -> Iterator[LockWindow]:
    """Hold this machine's exclusive timing lock (``<tmp>/pruneflow-timing.lock``) for the
    block: jobs of any sweep, any launcher, any user of this machine take turns. The temporary
    folder is shared by every user, so the file is opened the safe way (:func:`pruneflow.files.
    locked`: no link followed, nothing changed that pruneflow did not create, readable by
    others and writable by nobody else)."""
    path = timing_lock_path(folder)
    window = LockWindow()
    t0 = time.time()
    with locked(path, shared=True, wait_note="another job is timing"):
        window.start = time.time()
        window.wait_s = window.start - t0
        try:
            yield window
        finally:
            window.end = time.time()


@contextlib.contextmanager
def held_on_the_device() -> Iterator[LockWindow]:
    """The window of a block whose timing lock the device takes itself (an SSH device's shell,
    :func:`device_lock_shell`, as its runner starts): nothing is held or waited for here."""
    window = LockWindow(start=time.time())
    try:
        yield window
    finally:
        window.end = time.time()


def device_lock_shell(fd: int = 9) -> str:
    """Shell words that open the device's timing lock (``${TMPDIR:-/tmp}/pruneflow-timing.lock``)
    read-only on descriptor ``fd``, for ``flock fd``: the rules of :mod:`pruneflow.files` in
    POSIX shell. A missing lock is made as a private temporary file, made readable by others
    (``flock`` needs no write access) and hard-linked into place, so no link is followed and
    no mode is changed but that of pruneflow's own new file; a path that is a link or not a
    plain file is refused (exit status 3, one line)."""
    return (
        f'L="${{TMPDIR:-/tmp}}/{LOCK_FILE}"; '
        'if [ ! -e "$L" ] && [ ! -L "$L" ]; then '
        't=$(mktemp "$L.XXXXXX") && chmod 644 "$t" && { ln "$t" "$L" 2>/dev/null; rm -f "$t"; }; '
        "fi; "
        'if [ -L "$L" ] || [ ! -f "$L" ]; then '
        'echo "the timing lock $L is a symbolic link or not a plain file; pruneflow follows '
        'no link for its lock files: remove it" >&2; exit 3; fi; '
        f'exec {fd}<"$L"'
    )


def lock_wait(stderr: str) -> float:
    """The device's wait for its timing lock, from the line its shell printed."""
    for line in stderr.splitlines():
        if line.startswith(LOCK_MARK):
            with contextlib.suppress(ValueError, IndexError):
                start, end = (float(v) for v in line.split()[1:3])
                return max(0.0, end - start)
    return 0.0
