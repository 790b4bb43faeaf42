"""Lock files, opened one safe way: every ``flock`` pruneflow takes goes through :func:`locked`;
and cache entries written whole (:func:`written_whole`).

A lock file may sit in a folder others can write (the timing lock in the temporary folder, which
every user of the machine shares), so opening it follows no symbolic link (``O_NOFOLLOW``),
never truncates or changes a file pruneflow did not create, refuses anything but a plain file
(a FIFO planted there would block the open for ever), and is read-only: ``flock`` needs no
write access, so a lock that other users must be able to take is made readable by them, never
writable (mode 0644, set only on the file this call created, since a restrictive umask would
otherwise lock other users out).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pruneflow.errors import PruneflowError

log = logging.getLogger(__name__)

SHARED_MODE = 0o644  # other users open it read-only to take the lock; nobody else writes it


class LockFileError(PruneflowError):
    """A lock file's path holds something pruneflow will not open (a link, a folder, a FIFO)."""


def _open(path: Path, *, shared: bool) -> int:
    """A read-only descriptor of the plain file ``path``, created (exclusively) if missing."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, SHARED_MODE)
    except FileExistsError:
        created = False
        try:  # no O_CREAT: also what protected_regular allows on another user's file
            fd = os.open(path, flags)
        except OSError as exc:
            raise _refused(path, exc) from exc
    else:
        created = True
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LockFileError(f"the lock file {path} is not a plain file: remove it")
        if created and shared:
            os.fchmod(fd, SHARED_MODE)  # ours: past the umask, so other users can take it
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refused(path: Path, exc: OSError) -> LockFileError:
    if os.path.islink(path):
        return LockFileError(
            f"the lock file {path} is a symbolic link; pruneflow follows no link for its lock "
            "files (someone else's, or left over): remove it"
        )
    return LockFileError(f"cannot open the lock file {path}: {exc.strerror or exc}")


def check_lock(path: str | os.PathLike, *, shared: bool = False) -> None:
    """Raise :class:`LockFileError` now, before any work, where :func:`locked` would later."""
    os.close(_open(Path(path), shared=shared))


@contextlib.contextmanager
def locked(path: str | os.PathLike, *, shared: bool = False, wait_note: str = "") -> Iterator[bool]:
    """Hold an exclusive ``flock`` on the plain file ``path`` for the block (see the module's
    docstring for how it is opened). ``shared``: the folder is shared with other users, whose
    jobs must be able to take the same lock. Yields whether the lock had to be waited for;
    ``wait_note`` is logged when it does."""
    path = Path(path)
    fd = _open(path, shared=shared)
    try:
        waited = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            if wait_note:
                log.info("waiting for the lock %s (%s)", path, wait_note)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield waited
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def written_whole(entry: Path) -> Iterator[Path]:
    """A new temporary folder beside the folder ``entry`` for the block to write it in; when the
    block ends without an error it becomes ``entry`` at once (one there before is removed), and
    is removed either way: a crash leaves no half-written entry."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        yield tmp
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
