"""Real servers for tests of the remote tracking backends (not part of the installed package): an
MLflow tracking server over HTTP and a private PostgreSQL database server, both on 127.0.0.1.

``with MlflowServer(folder) as server:`` runs ``mlflow server`` (this Python's mlflow) with a
sqlite store and proxied artifacts, all in ``folder``; ``server.uri`` is its ``http://`` address.
``with PostgresServer(folder) as server:`` runs Debian's PostgreSQL (``make system-deps`` installs
it) from a fresh data folder; ``server.uri`` is an SQLAlchemy URI of its ``mlflow`` database.
Both stop, and leave nothing running, when the block ends. Nothing touches the system's services.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from helpers.machine import system_tool
from helpers.sshd import free_port

POSTGRES_BINS = "/usr/lib/postgresql/*/bin"
POSTGRES_USER = "postgres"  # the system user that runs the server when the tests run as root


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log at {path}: {e})"


class MlflowServer:
    """``with MlflowServer(folder) as server:`` serves MLflow tracking on ``server.uri``.

    The store is ``folder/server.db`` (or ``backend_store_uri``), artifacts are uploaded through
    the server into ``folder/artifacts`` (``--serve-artifacts``), its output goes to
    ``folder/server.log``.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        port: int | None = None,
        backend_store_uri: str | None = None,
        timeout_s: float = 180,
    ):
        self.dir = Path(folder).absolute()
        self.port = port or free_port()
        self.backend_store_uri = backend_store_uri or f"sqlite:///{self.dir / 'server.db'}"
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def artifacts(self) -> Path:
        return self.dir / "artifacts"

    @property
    def log(self) -> Path:
        return self.dir / "server.log"

    def __enter__(self) -> MlflowServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            self.backend_store_uri,
            "--serve-artifacts",
            "--artifacts-destination",
            str(self.artifacts),
        ]
        # Its background job runner (seven Huey consumer processes, for GenAI evaluation jobs)
        # serves nothing pruneflow logs and crowds small test machines: leave it off.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.log, "ab") as log:
            # Own process group: the server starts worker processes that must stop with it.
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_healthy(self) -> None:
        # No proxy: an inherited http_proxy must not intercept 127.0.0.1.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"mlflow server exited ({code}):\n{log_tail(self.log)}")
            try:
                with opener.open(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:  # URLError and refused or reset connections
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"mlflow server did not answer /health within {self.timeout_s:.0f} s:\n"
            f"{log_tail(self.log)}"
        )

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        # The leader may be gone while workers of its group linger: make sure none survive.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None


def postgres_bin() -> Path:
    """Debian's PostgreSQL binaries folder (the newest version installed)."""
    found = [Path(p) for p in glob.glob(POSTGRES_BINS) if os.path.exists(os.path.join(p, "pg_ctl"))]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        raise RuntimeError(
            f"PostgreSQL not found ({POSTGRES_BINS}): install Debian's postgresql "
            "(`make system-deps` does)"
        )
    return found[-1]


class PostgresServer:
    """``with PostgresServer(folder) as server:`` runs PostgreSQL on ``server.port``.

    ``server.uri`` is ``postgresql+psycopg2://postgres@127.0.0.1:<port>/mlflow`` (trust auth, no
    password). The cluster lives in a fresh temporary folder (short, so the Unix socket path fits;
    owned by the ``postgres`` user when the tests run as root, since PostgreSQL refuses to run as
    root) and is deleted afterwards; the server log is copied to ``folder/postgres.log``.
    """

    database = "mlflow"

    def __init__(self, folder: str | os.PathLike, port: int | None = None, timeout_s: float = 180):
        self.dir = Path(folder).absolute()
        self.port = port or free_port()
        self.timeout_s = timeout_s
        self.bin: Path | None = None
        self.tmp: Path | None = None
        self.home: Path | None = None
        self.started = False

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def log(self) -> Path:
        return self.home / "postgres.log"

    def _run(self, *args: str, server: bool = True) -> None:
        """Runs a PostgreSQL program; server programs as ``postgres`` when we are root."""
        cmd = [str(self.bin / args[0]), *args[1:]]
        if server and self.as_root:
            cmd = [system_tool("runuser") or "runuser", "-u", POSTGRES_USER, "--", *cmd]
        result = subprocess.run(
            cmd, cwd=self.home, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}\n"
                f"{log_tail(self.log)}"
            )

    def __enter__(self) -> PostgresServer:
        self.bin = postgres_bin()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="pruneflow-pg-"))
        self.home = self.tmp / "pg"
        self.home.mkdir()
        if self.as_root:
            os.chmod(self.tmp, 0o755)  # mkdtemp makes it 0700: let postgres reach its folder
            shutil.chown(self.home, POSTGRES_USER, POSTGRES_USER)
        try:
            data, sockets = self.home / "data", self.home / "sockets"
            self._run(
                "initdb",
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
            os.makedirs(sockets, exist_ok=True)
            if self.as_root:
                shutil.chown(sockets, POSTGRES_USER, POSTGRES_USER)
            options = " ".join(
                [
                    f"-p {self.port}",
                    f"-k {sockets}",
                    "-c listen_addresses=127.0.0.1",
                    # A throw-away test server: durability only costs time here.
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                ]
            )
            self.started = True
            self._run(
                "pg_ctl",
                "-D",
                str(data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(self.timeout_s)),
                "start",
            )
            self._run(
                "createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                self.database,
                server=False,
            )
        except BaseException:
            self._stop(check=False)  # keep the error that matters
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stop(check=True)

    def _stop(self, check: bool) -> None:
        if self.tmp is None:
            return
        try:
            if self.started:
                self.started = False
                try:
                    self._run("pg_ctl", "-D", str(self.home / "data"), "-m", "immediate", "stop")
                except RuntimeError:
                    if check:
                        raise
        finally:
            if self.log.exists():
                shutil.copyfile(self.log, self.dir / "postgres.log")
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


# Headless Chromium on a page of such a server (the tests' browser checks, bench/report_speed.py)
CHROMIUM_FLAGS = [  # ../shared/STACK.md: what Debian's chromium needs here, headless
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=30000",
    "--window-size=2400,1400",  # wide enough for the Models tab's first metric columns
]
