"""Timing is exclusive per device: parallel sweep jobs may train at once, but only one times
inference on a device at a time: a file lock on this machine (:func:`timing_lock`), ``flock``
on a file in the device's temporary folder for an SSH device, its wait reported by the
device's shell in a line marked :data:`LOCK_MARK` (:func:`lock_wait`)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_FILE = "pruneflow-timing.lock"  # in this machine's (or the device's) temporary folder
LOCK_MARK = "pruneflow-lock-wait"  # the device's shell reports its wait for the lock with it


@dataclass
class LockWindow:
    """When a job held a device's timing lock (seconds since the epoch) and how long it
    waited for it."""

    wait_s: float = 0.0
    start: float = 0.0
    end: float = 0.0


@contextlib.contextmanager
def timing_lock(folder: str | os.PathLike | None = None) -> Iterator[LockWindow]:
    """Hold this machine's exclusive timing lock (``<tmp>/pruneflow-timing.lock``) for the
    block: jobs of any sweep, any launcher, any user of this machine take turns."""
    path = Path(folder or tempfile.gettempdir()) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)  # other users' jobs must be able to take it too
    window = LockWindow()
    t0 = time.time()
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for the timing lock %s (another job is timing)", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        window.start = time.time()
        window.wait_s = window.start - t0
        try:
            yield window
        finally:
            window.end = time.time()
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_wait(stderr: str) -> float:
    """The device's wait for its timing lock, from the line its shell printed."""
    for line in stderr.splitlines():
        if line.startswith(LOCK_MARK):
            with contextlib.suppress(ValueError, IndexError):
                start, end = (float(v) for v in line.split()[1:3])
                return max(0.0, end - start)
    return 0.0
