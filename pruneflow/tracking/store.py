"""What pruneflow asks of an MLflow store before it uses one, each failure one line naming it:
a tracking server that answers, a sqlite file that is a database, folders it can write in; and
how long MLflow may wait on a server (:data:`HTTP_LIMITS`)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pruneflow.errors import ConfigError, PruneflowError


class TrackingError(PruneflowError, RuntimeError):
    """The MLflow store cannot be used; the message names it."""


class StoreGone(TrackingError):
    """The tracking server stopped answering during a run; the message names it."""


class DiskFull(TrackingError):
    """A folder pruneflow writes in (the store's, the cache, a job's) is full; the message
    names it."""


# MLflow retries a tracking server that stopped answering for about four minutes per call
# (urllib3's backoff) and waits 120 s for an answer: set in this process (and so its jobs)
# before the first client, unless the environment sets them. Two quick retries (about 3 s) ride
# out a dropped connection; 30 s is per socket read, so a slow artifact upload is not cut.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


SERVER_TIMEOUT_S = 5.0  # how long a tracking server may take to answer the first request


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def without_password(uri: str) -> str:
    """``uri`` with the password of its ``user:password@`` left out (``user@``), for anything
    pruneflow prints or writes into a report: PostgreSQL then takes it from PGPASSWORD or
    ~/.pgpass, an MLflow server from MLFLOW_TRACKING_PASSWORD."""
    import urllib.parse

    parts = urllib.parse.urlsplit(uri)
    user, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in user:
        return uri
    return parts._replace(netloc=f"{user.partition(':')[0]}@{host}").geturl()


def server_down(uri: str, timeout: float = SERVER_TIMEOUT_S) -> tuple[str, str] | None:
    """(the server's address without a password, why) when the tracking server ``uri`` does
    not answer an HTTP request within ``timeout`` seconds (any status is an answer: a server
    that refuses us says so itself); None when it answers, and for other stores."""
    import urllib.error
    import urllib.parse
    import urllib.request

    if not is_server(uri):
        return None
    parts = urllib.parse.urlsplit(uri)
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # /health needs none
    try:
        with urllib.request.urlopen(f"{shown.rstrip('/')}/health", timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answers
    except Exception as exc:  # noqa: BLE001 - URLError, timeouts, bad hosts alike
        reason = getattr(exc, "reason", exc)
        why = getattr(reason, "strerror", None) or str(reason) or type(exc).__name__
        if isinstance(reason, TimeoutError) or "timed out" in why:
            why = f"no answer within {timeout:g} s"
        return shown, why


def check_server(uri: str, fix: str = "set tracking.uri", timeout: float = SERVER_TIMEOUT_S):
    """Raise :class:`TrackingError` in one line unless the tracking server ``uri`` answers
    (:func:`server_down`). MLflow's own client retries a dead server, silently; this is asked
    once, before any work. Nothing to do for other stores."""
    down = server_down(uri, timeout)
    if down:
        raise TrackingError(
            f"the MLflow tracking server {down[0]} does not answer ({down[1]}): start it, or {fix}"
        )


def lost(uri: str, during: str = "") -> str | None:
    """One line saying that the tracking server ``uri`` stopped answering (``during``: e.g.
    ``" during run <id>"``), or None when it answers (or is no server): asked when work fails,
    so that a store that died is named instead of MLflow's retry error."""
    down = server_down(uri)
    if down is None:
        return None
    return (
        f"the MLflow tracking server {down[0]} stopped answering{during} ({down[1]}): the next "
        "pruneflow run that reaches it ends the runs left RUNNING there"
    )


def check_store(uri: str, fix: str = "set tracking.uri") -> None:
    """Raise :class:`TrackingError` in one line unless store ``uri`` can be opened: a server
    answers (:func:`check_server`), a sqlite file is a database. Every command checks this
    before MLflow opens the store (which answers a damaged file with a long SQLAlchemy
    traceback). The file is only read: a user's store is never changed by a check."""
    check_server(uri, fix)
    db = sqlite_file(uri)
    if db is None or not db.is_file():
        return  # a new store; or a folder, which MLflow names itself
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as con:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        if "locked" in str(exc):  # busy beyond sqlite's 5 s wait: MLflow waits on it too
            return
        raise TrackingError(
            f"the MLflow store {db} cannot be read ({exc}): restore it or move it away, or {fix}"
        ) from None


def check_folder(key: str, path: str | os.PathLike) -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``path`` is a folder this process can
    write in, or can be made one: a probe file is created and removed in it, or in its nearest
    existing parent when it does not exist yet (nothing is left behind, not even the folder:
    a run refused by a later check leaves no trace)."""
    import tempfile

    path = Path(path)
    where = next((p for p in (path, *path.parents) if p.exists()), Path("."))  # as given
    why = None
    if not where.is_dir():
        why = "it is a file" if where == path else f"{where} is a file"
    else:
        try:
            with tempfile.TemporaryFile(dir=where, prefix=".pruneflow-probe-"):
                pass
        except OSError as exc:
            why = exc.strerror or str(exc)
    if why is not None:
        raise ConfigError(f"{key}={path} is not a writable folder ({why})") from None


def sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite store's ``uri``; None for any other store."""
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def uses_dir(uri: str, store_dir: str | os.PathLike) -> bool:
    """Whether store ``uri`` keeps files in ``store_dir`` (tracking.dir): the default sqlite
    store does, and so does a database store (its artifacts); a server keeps its own."""
    db = sqlite_file(uri)
    if db is not None:
        return db.parent == Path(store_dir).resolve()
    return "://" in uri and not is_server(uri)


def check_before_work(uri: str, store_dir: str | os.PathLike, cache_dir: str | os.PathLike):
    """What a job needs of the machine before any work, each failure one line naming its
    key: writable ``tracking.dir`` (where the store keeps files there) and ``paths.cache_dir``
    (:class:`ConfigError`), a store that can be opened (:func:`check_store`,
    :class:`TrackingError`)."""
    if uses_dir(uri, store_dir):
        check_folder("tracking.dir", store_dir)
    check_folder("paths.cache_dir", cache_dir)
    check_store(uri)


# a new sqlite store's schema takes about 1 MiB: a store that cannot be made with less than
# this free beside it is said to lack space (its maker's error may be a half-made schema's)
NEW_STORE_BYTES = 4 * 2**20


def no_space(exc: BaseException, uri: str | None = None, new: bool = False) -> str | None:
    """One line naming the folder that is full and what was being written there, when ``exc``
    or an error that led to it is a full disk (``[Errno 28] No space left on device``, or
    SQLite's ``database or disk is full`` in store ``uri``), or when ``new`` (the store was
    being made) and its folder has less than :data:`NEW_STORE_BYTES` free; None otherwise."""
    import errno
    import shutil

    db = sqlite_file(uri) if uri else None
    if new and db is not None and db.parent.is_dir():
        if shutil.disk_usage(db.parent).free < NEW_STORE_BYTES:
            return _full(db, "making")
    seen, path, full = set(), None, False
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            full = True  # the first cause that names its file: a copy's target is filename2
            path = exc.filename2 or exc.filename or path
        elif "database or disk is full" in str(exc):
            full, path = True, path or db
        exc = exc.__cause__ or exc.__context__
    if not full:
        return None
    return _full(Path(os.fsdecode(path)).absolute() if path else Path.cwd(), "writing")


def _full(what: Path, doing: str) -> str:
    import shutil

    folder = next((p for p in (what, *what.parents) if p.is_dir()), Path("/"))
    free = shutil.disk_usage(folder).free / 2**20
    writing = f"{doing} {what.name}, " if what != folder else ""
    return (
        f"no space left on device in {folder} ({writing}{free:.1f} MiB free there): free some "
        "space, or point tracking.dir, paths.cache_dir and the output folders at a disk with room"
    )
