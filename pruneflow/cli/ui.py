"""``pruneflow ui``: MLflow's UI on the store this folder's runs write to."""

from __future__ import annotations

import argparse
import os
import sys

from pruneflow.tracking.runs import resolve_uri
from pruneflow.tracking.store import TrackingError, check_store, sqlite_file


def main(argv: list[str]) -> int:
    """``pruneflow ui``: MLflow's UI on the store runs write here (or ``--tracking-uri``)."""
    parser = argparse.ArgumentParser(
        prog="pruneflow ui", description="MLflow's UI on this folder's runs."
    )
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tracking-uri", help="default: ./mlruns, or $MLFLOW_TRACKING_URI")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        print(
            f"pruneflow ui: error: --port {args.port} is invalid: valid values are 1 to 65535",
            file=sys.stderr,
        )
        return 2
    uri = resolve_uri(args.tracking_uri, "mlruns")
    db = sqlite_file(uri)
    if db is not None and not db.exists():
        print(
            f"pruneflow ui: error: no MLflow store at {db}: run pruneflow "
            "in this folder first, or pass --tracking-uri",
            file=sys.stderr,
        )
        return 1
    try:
        check_store(uri, fix="pass --tracking-uri")
    except TrackingError as exc:
        print(f"pruneflow ui: error: {exc}", file=sys.stderr)
        return 1
    busy = _cannot_listen(args.host, args.port)
    if busy:  # MLflow would print an ERROR line and still exit 0
        print(f"pruneflow ui: error: {busy}", file=sys.stderr)
        return 1
    if not _loopback(args.host):
        print(
            f"pruneflow ui: warning: --host {args.host} lets other machines reach MLflow's UI, "
            "which has no authentication: whoever reaches port "
            f"{args.port} can read, change and delete every run (127.0.0.1, the default, "
            "keeps it to this machine)",
            file=sys.stderr,
            flush=True,
        )
    print(f"MLflow UI for {uri} at http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    # the UI needs no job runner (MLflow's GenAI evaluation jobs: seven worker processes)
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    os.execve(sys.executable, [*command, "--host", args.host, "--port", str(args.port)], env)
    return 0  # not reached


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the UI's server could not listen on ``host``:``port`` (bound and released here, the
    way the server binds it), or None if it can."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} is in use on {host}: pass another --port, or stop what uses it"
        return f"cannot listen on --host {host} --port {port}: {exc.strerror or exc}"
    return None


def _loopback(host: str) -> bool:
    """Whether every address ``host`` names is this machine's loopback (127.0.0.1, ::1,
    ``localhost``): only then is the UI out of other machines' reach."""
    import ipaddress
    import socket

    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return all(ipaddress.ip_address(a[4][0].split("%")[0]).is_loopback for a in found)
