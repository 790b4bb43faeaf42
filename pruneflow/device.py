"""Device stage: run the self-contained device runner where the config says, fetch its result.

Both kinds run the same file, ``device_runner.py``, with the same command line, so local and
remote numbers come from one code path:

- ``kind: local`` runs it in a subprocess on this machine;
- ``kind: ssh`` ships it with the models and the benchmark images to a device over SSH (Fabric),
  checks every file by sha256 on the device, runs it, fetches the JSON result and removes its
  remote work folder. One Connection serves the whole run.

Every failure is a :class:`DeviceError` naming the device and the step.

Timing is exclusive per device: parallel sweep jobs may train at once, but only one times
inference on a device at a time (a file lock on this machine, :func:`timing_lock`; ``flock`` on
a file in the device's temporary folder for an SSH device), and the wait is recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pruneflow.errors import PruneflowError, require

log = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("device_runner.py")
KINDS = ("local", "ssh")
LOCK_FILE = "pruneflow-timing.lock"  # in this machine's (or the device's) temporary folder
_LOCK_MARK = "pruneflow-lock-wait"  # the device's shell reports its wait for the lock with it


class DeviceError(PruneflowError, RuntimeError):
    """A device step failed; the message names the device and the step."""


def check_device(kind: str, name: str, timeout_s: float, expected_kind: str) -> None:
    """Arguments every device has."""
    require(
        kind == expected_kind,
        "kind",
        kind,
        f"{expected_kind!r} for this device (pick the device option of the other kind instead)",
    )
    require(bool(name), "name", name, "a non-empty label")
    require(timeout_s > 0, "timeout_s", timeout_s, "seconds > 0")


def check_ssh(host: str | None, port: int, connect_timeout_s: float) -> None:
    require(
        bool(host),
        "host",
        host,
        "an SSH device needs a host name or address, e.g. device.host=raspberrypi.local",
        required=True,
    )
    require(1 <= port <= 65535, "port", port, "integers in [1, 65535]")
    require(connect_timeout_s > 0, "connect_timeout_s", connect_timeout_s, "seconds > 0")


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


def _runner_args(images: str, out: str, delegate: dict, models: list[str]) -> list[str]:
    return ["--images", images, "--out", out, "--delegate", json.dumps(delegate), *models]


class LocalDevice:
    """This machine: the runner runs in a subprocess of ``python`` (default: this Python)."""

    def __init__(self, name: str = "local", python: str | None = None, timeout_s: float = 600.0):
        check_device("local", name, timeout_s, "local")
        self.name, self.python, self.timeout_s = name, python, timeout_s
        self.timings: dict[str, float] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def benchmark(
        self, models: list[Path], images_dir: Path, out_json: Path, delegate: dict
    ) -> dict:
        """Time ``models`` on this machine; returns the runner's JSON document.

        Writes the runner's result to ``out_json``.
        """
        python = shlex.split(self.python) if self.python else [sys.executable]
        cmd = [
            *python,
            str(RUNNER),
            *_runner_args(str(images_dir), str(out_json), delegate, [str(m) for m in models]),
        ]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise DeviceError(
                f"device {self.name}: run failed: runner timed out after {self.timeout_s} s"
            ) from exc
        except OSError as exc:
            raise DeviceError(
                f"device {self.name}: run failed: cannot start the runner with {cmd[0]!r}: {exc}"
            ) from exc
        self.timings["run_s"] = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip()[-2000:]
            raise DeviceError(
                f"device {self.name}: run failed: runner exited {proc.returncode}:\n{tail}"
            )
        return json.loads(Path(out_json).read_text())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class SSHDevice:
    """A device reached over SSH with Fabric; see the ``device`` config group for the keys.

    Host keys are checked against ``known_hosts``: an unknown host is refused unless
    ``accept_new_host`` (then its key is added to ``known_hosts``), a changed key always is.
    Only key (or agent) authentication is used; no secret is ever logged.
    """

    def __init__(
        self,
        name: str = "ssh",
        host: str | None = None,
        port: int = 22,
        user: str | None = None,
        key_file: str | None = None,
        known_hosts: str = "~/.ssh/known_hosts",
        accept_new_host: bool = False,
        use_ssh_config: bool = False,
        python: str = "python3",
        workdir: str | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
    ):
        check_device("ssh", name, timeout_s, "ssh")
        check_ssh(host, port, connect_timeout_s)
        self.name, self.host, self.port = name, host, int(port)
        self.user = user
        self.key_file = os.path.expanduser(key_file) if key_file else None
        self.known_hosts = os.path.expanduser(known_hosts) if known_hosts else None
        self.accept_new_host = accept_new_host
        self.use_ssh_config = use_ssh_config
        self.python = python
        self.workdir = workdir
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.conn = None
        self.timings: dict[str, float] = {}

    @property
    def address(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.port}"

    def _fail(self, step: str, why: str) -> DeviceError:
        return DeviceError(f"device {self.name} ({self.address}): {step} failed: {why}")

    # -- connection ---------------------------------------------------------------------
    def __enter__(self):
        import paramiko
        from fabric import Config, Connection

        config = Config(overrides={"load_ssh_configs": self.use_ssh_config})
        connect_kwargs = {}
        if self.key_file:
            if not os.path.exists(self.key_file):
                raise self._fail("connect", f"device.key_file {self.key_file} does not exist")
            connect_kwargs = {
                "key_filename": self.key_file,
                "look_for_keys": False,
                "allow_agent": False,
            }
        conn = Connection(
            self.host,
            user=self.user,
            port=self.port,
            config=config,
            connect_timeout=max(1, int(self.connect_timeout_s)),
            connect_kwargs=connect_kwargs,
        )
        # Fabric accepts any host key by default; verify against known_hosts instead.
        if self.known_hosts and os.path.exists(self.known_hosts):
            conn.client.load_host_keys(self.known_hosts)
        elif self.known_hosts and self.accept_new_host:
            Path(self.known_hosts).parent.mkdir(parents=True, exist_ok=True)
            Path(self.known_hosts).touch(mode=0o600)
            conn.client.load_host_keys(self.known_hosts)
        policy = paramiko.AutoAddPolicy() if self.accept_new_host else paramiko.RejectPolicy()
        conn.client.set_missing_host_key_policy(policy)
        t0 = time.perf_counter()
        try:
            conn.open()
        except paramiko.BadHostKeyException as exc:
            raise self._fail(
                "connect",
                f"the host key does not match the one in "
                f"{self.known_hosts} (a changed or impersonated host): {exc}",
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise self._fail(
                "connect",
                f"authentication refused for user {self.user!r} "
                f"with key {self.key_file or '(default keys/agent)'}: {exc}",
            ) from exc
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise self._fail(
                    "connect",
                    f"unknown host: no key for it in {self.known_hosts}; "
                    "add it (ssh-keyscan) or set device.accept_new_host=true",
                ) from exc
            raise self._fail("connect", f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:  # refused, unreachable, timed out, unknown name
            raise self._fail("connect", f"cannot reach the host: {exc}") from exc
        self.timings["connect_s"] = time.perf_counter() - t0
        self.conn = conn
        return self

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            self.conn.close()  # a closed Connection is never reused (Fabric memoizes SFTP)
            self.conn = None

    def _run(self, step: str, command: str, timeout: float | None = None):
        from invoke.exceptions import CommandTimedOut

        try:
            result = self.conn.run(command, hide=True, warn=True, in_stream=False, timeout=timeout)
        except CommandTimedOut as exc:
            raise self._fail(step, f"timed out after {timeout} s") from exc
        except Exception as exc:  # noqa: BLE001 - a dropped connection, mostly
            raise self._fail(step, f"{type(exc).__name__}: {exc}") from exc
        if result.exited != 0:
            stderr = "\n".join(
                line for line in result.stderr.splitlines() if not line.startswith(_LOCK_MARK)
            )
            tail = (stderr or result.stdout).strip()[-2000:]
            if result.exited == 124 and step == "run":  # coreutils' timeout ended the runner
                raise self._fail(step, f"the runner timed out after {int(self.timeout_s)} s")
            if result.exited in (137, -1):  # -1: the session ended by a signal, no status
                tail = f"the runner was killed by a signal (out of memory?) {tail}"
            raise self._fail(step, f"exit status {result.exited}: {tail}")
        return result

    # -- the benchmark ------------------------------------------------------------------
    def benchmark(
        self, models: list[Path], images_dir: Path, out_json: Path, delegate: dict
    ) -> dict:
        """Ship, verify, run, fetch, clean up. Writes the fetched result to ``out_json``."""
        q = shlex.quote
        base = (
            q(self.workdir.rstrip("/") + "/pruneflow.XXXXXX")
            if self.workdir
            else "-t pruneflow.XXXXXX"
        )
        t0 = time.perf_counter()
        remote = self._run("prepare", f"mktemp -d {base}").stdout.strip()
        self.timings["prepare_s"] = time.perf_counter() - t0
        try:
            bundle = self._bundle(models, images_dir)
            t0 = time.perf_counter()
            self._upload(bundle, remote)
            self.timings["upload_s"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            self._run(
                "verify",
                f"cd {q(remote)} && tar -xf bundle.tar && sha256sum -c --quiet --strict SHA256SUMS",
            )
            self.timings["verify_s"] = time.perf_counter() - t0

            python = " ".join(q(p) for p in shlex.split(self.python))
            args = " ".join(
                q(a)
                for a in _runner_args(
                    "images", "result.json", delegate, [f"models/{m.name}" for m in models]
                )
            )
            # Only one job times on the device at a time: flock on a file in the device's
            # temporary folder, its wait measured by the device's clock. coreutils' timeout
            # ends the runner on the device even if the session drops.
            lock = f"${{TMPDIR:-/tmp}}/{LOCK_FILE}"
            t0 = time.perf_counter()
            result = self._run(
                "run",
                f"cd {q(remote)} && exec 9>>{lock} && s=$(date +%s.%N) && flock 9 && "
                f'echo "{_LOCK_MARK} $s $(date +%s.%N)" >&2 && '
                f"timeout -k 5 {int(self.timeout_s)} {python} device_runner.py {args}",
                timeout=self.timeout_s + 10,
            )
            self.timings["run_s"] = time.perf_counter() - t0
            self.timings["lock_wait_s"] = _lock_wait(result.stderr)

            t0 = time.perf_counter()
            try:
                self.conn.get(f"{remote}/result.json", str(out_json))
            except Exception as exc:  # noqa: BLE001
                raise self._fail("fetch", f"{type(exc).__name__}: {exc}") from exc
            self.timings["fetch_s"] = time.perf_counter() - t0
        finally:
            t0 = time.perf_counter()
            if self.conn is not None and self.conn.is_connected:
                self.conn.run(f"rm -rf {q(remote)}", hide=True, warn=True, in_stream=False)
            self.timings["cleanup_s"] = time.perf_counter() - t0
        try:
            return json.loads(Path(out_json).read_text())
        except ValueError as exc:
            raise self._fail("fetch", f"the result is not JSON: {exc}") from exc

    def _bundle(self, models: list[Path], images_dir: Path) -> dict[str, bytes]:
        """Files to ship: a tar of runner, models and images, and its sha256 list."""
        buf = io.BytesIO()
        sums = []
        with tarfile.open(fileobj=buf, mode="w") as tar:
            entries = [(RUNNER, "device_runner.py")]
            entries += [(m, f"models/{m.name}") for m in models]
            entries += [
                (p, f"images/{p.relative_to(images_dir)}")
                for p in sorted(Path(images_dir).rglob("*"))
                if p.is_file()
            ]
            for path, arcname in entries:
                tar.add(path, arcname=arcname)
                sums.append(f"{_sha256(path)}  {arcname}")
        return {"bundle.tar": buf.getvalue(), "SHA256SUMS": ("\n".join(sums) + "\n").encode()}

    def _upload(self, files: dict[str, bytes], remote: str) -> None:
        try:
            for name, data in files.items():
                self.conn.put(io.BytesIO(data), f"{remote}/{name}")
        except Exception as exc:  # noqa: BLE001 - a full disk shows as a short write
            why = str(exc) or type(exc).__name__
            need = sum(len(d) for d in files.values())
            df = self.conn.run(
                f"df -Pk {shlex.quote(remote)}", hide=True, warn=True, in_stream=False
            )
            fields = df.stdout.strip().splitlines()[-1].split() if df.ok else []
            if len(fields) >= 4 and fields[3].isdigit():
                free = int(fields[3])
                why += (
                    f" ({free} KiB free on the device's disk at {remote}, {need // 1024} "
                    "KiB needed" + (": the disk is full)" if free * 1024 < need else ")")
                )
            raise self._fail("upload", why) from exc


def _lock_wait(stderr: str) -> float:
    """The device's wait for its timing lock, from the line its shell printed."""
    for line in stderr.splitlines():
        if line.startswith(_LOCK_MARK):
            with contextlib.suppress(ValueError, IndexError):
                start, end = (float(v) for v in line.split()[1:3])
                return max(0.0, end - start)
    return 0.0


def open_device(kind: str = "local", **options) -> LocalDevice | SSHDevice:
    """The device of ``kind`` configured by ``options`` (the ``device`` config node's keys).

    Building it does not connect; ``with`` opens and closes the connection."""
    require(kind in KINDS, "kind", kind, str(list(KINDS)))
    return (LocalDevice if kind == "local" else SSHDevice)(**options)
