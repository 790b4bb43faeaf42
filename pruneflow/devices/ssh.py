"""A device reached over SSH (Fabric), e.g. a Raspberry Pi.

One Connection serves a whole run: the runner, the models and the benchmark images travel as
one tar (:mod:`.bundle`), every file is checked by sha256 on the device, the runner runs under
the device's timing lock (:mod:`.locks`) and coreutils' ``timeout``, its JSON result is
fetched, and the remote work folder is removed. ``pruneflow device setup`` makes a venv there
(:meth:`SSHDevice.setup`) with the runner's packages (numpy, Pillow, LiteRT), installed with the
device's own pip and package index or from wheels shipped from here (an offline device); runs
use it once it exists (``device.venv``).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from pruneflow.devices.base import RUNNER, RUNNER_NAME, Device, Protocol, runner_args
from pruneflow.devices.bundle import bundle
from pruneflow.devices.config import DEFAULT_VENV, SSHDeviceConfig
from pruneflow.devices.energy import probe_arg
from pruneflow.devices.locks import (
    LOCK_MARK,
    LockWindow,
    device_lock_shell,
    held_on_the_device,
    lock_wait,
)
from pruneflow.devices.readiness import PIP_NAMES
from pruneflow.devices.result import RunnerResult
from pruneflow.errors import ConfigError


class SSHDevice(Device):
    """A device reached over SSH with Fabric; see the ``device`` config group for the keys.

    Host keys are checked against ``known_hosts``: an unknown host is refused unless
    ``accept_new_host`` (then its key is added to ``known_hosts``), a changed key always is.
    Only key (or agent) authentication is used; no secret is ever logged.
    """

    venv_use = " with VENV the device.venv folder (runs use it)"

    def __init__(self, config: SSHDeviceConfig):
        super().__init__(config)
        c = config
        self.host, self.port, self.user = c.host, int(c.port), c.user
        self.key_file = os.path.expanduser(c.key_file) if c.key_file else None
        self.known_hosts = os.path.expanduser(c.known_hosts) if c.known_hosts else None
        self.accept_new_host, self.use_ssh_config = c.accept_new_host, c.use_ssh_config
        self.python, self.venv, self.workdir = c.python, c.venv, c.workdir
        self.connect_timeout_s = c.connect_timeout_s
        self._python: str | None = None  # resolved on the device: see resolved_python
        self.conn = None

    @property
    def address(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.port}"

    # -- connection ---------------------------------------------------------------------
    def __enter__(self):
        import paramiko
        from fabric import Config, Connection

        config = Config(overrides={"load_ssh_configs": self.use_ssh_config})
        connect_kwargs = {}
        if self.key_file:
            if not os.path.exists(self.key_file):
                raise self.error("connect", f"device.key_file {self.key_file} does not exist")
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
            raise self.error(
                "connect",
                f"the host key does not match the one in "
                f"{self.known_hosts} (a changed or impersonated host): {exc}",
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise self.error(
                "connect",
                f"authentication refused for user {self.user!r} "
                f"with key {self.key_file or '(default keys/agent)'}: {exc}",
            ) from exc
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise self.error(
                    "connect",
                    f"unknown host: no key for it in {self.known_hosts}; "
                    "add it (ssh-keyscan) or set device.accept_new_host=true",
                ) from exc
            raise self.error("connect", f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:  # refused, unreachable, timed out, unknown name
            raise self.error("connect", f"cannot reach the host: {exc}") from exc
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
            result = self._shell(command, timeout)
        except CommandTimedOut as exc:
            raise self.error(step, f"timed out after {timeout} s") from exc
        except Exception as exc:  # noqa: BLE001 - a dropped connection, mostly
            raise self.error(step, f"{type(exc).__name__}: {exc}") from exc
        if result.exited != 0:
            stderr = "\n".join(
                line for line in result.stderr.splitlines() if not line.startswith(LOCK_MARK)
            )
            tail = (stderr or result.stdout).strip()[-2000:]
            if result.exited == 124 and step == "run":  # coreutils' timeout ended the runner
                raise self.error(step, f"the runner timed out after {int(self.timeout_s)} s")
            if result.exited in (137, -1):  # -1: the session ended by a signal, no status
                tail = f"the runner was killed by a signal (out of memory?) {tail}"
            raise self.error(step, f"exit status {result.exited}: {tail}")
        return result

    # -- which python, and what it has -----------------------------------------------------
    @property
    def resolved_python(self) -> str:
        """The runner's interpreter on the device, as shell words: the venv's python when
        ``device.venv`` has one (``pruneflow device setup`` makes it), else ``device.python``."""
        if self._python is None:
            words = " ".join(shlex.quote(p) for p in shlex.split(self.python))
            self._python = (self.venv and self._venv_python("check")) or words
        return self._python

    def _venv_python(self, step: str) -> str | None:
        """``device.venv``'s python (quoted for the device's shell) when it exists there."""
        venv_python = remote_path(self.venv.rstrip("/") + "/bin/python")
        found = self._run(step, f"test -x {venv_python} && echo yes || echo no")
        return venv_python if found.stdout.strip() == "yes" else None

    def probe(self, delegate: dict) -> dict:
        """The runner's ``--probe`` run by the device's python (see :meth:`check`); the runner
        travels in the command itself, nothing is written on the device."""
        q = shlex.quote
        python = self.resolved_python
        energy = probe_arg(self.config.energy)
        extra = f" --energy {q(json.dumps(energy))}" if energy else ""
        result = self._shell(
            f"{python} -c {q(RUNNER.read_text())} --probe --delegate {q(json.dumps(delegate))}"
            + extra,
            timeout=120,
        )
        if result.exited == 127:
            raise self.error(
                "check",
                f"{python} not found on the device: install python3 there "
                "(sudo apt install python3) or point device.python at it",
            )
        if result.exited != 0:
            raise self.error("check", f"{python} exited {result.exited}: {result.stderr[-1000:]}")
        try:
            return json.loads(result.stdout)
        except ValueError as exc:
            raise self.error("check", f"the probe printed no JSON: {result.stdout[-500:]}") from exc

    def clock_offset(self) -> tuple[float, float]:
        """The device's clock minus this machine's, from its ``date`` read between two of
        ours (the fastest of five round trips), and half that round trip as its uncertainty."""
        best = (float("inf"), 0.0)
        for _ in range(5):
            before = time.time()
            said = self._run("clock", "date +%s.%N").stdout.strip()
            after = time.time()
            if after - before < best[0]:
                best = (after - before, float(said) - (before + after) / 2)
        return best[1], best[0] / 2

    # -- a venv with the runner's packages -------------------------------------------------
    def setup(self, wheels: Path | None = None, log: Callable[[str], None] = print) -> dict:
        """Make ``device.venv`` on the device (with its system packages visible: a Pi's apt
        numpy, Pillow or TensorFlow count) and install the runner's packages into it with the
        device's own pip and package index, or from the ``wheels`` folder shipped from here
        (an offline device). Returns the venv python's probe."""
        if not self.venv:
            raise ConfigError(
                "device.venv=null: setup makes a venv on the device; give its folder, "
                f"e.g. device.venv={DEFAULT_VENV}"
            )
        if wheels is not None and not Path(wheels).is_dir():
            raise ConfigError(f"--wheels {wheels} is not a folder")
        with self:
            self._make_venv(log)
            self._install(wheels, log)
            self._python = f"{remote_path(self.venv.rstrip('/'))}/bin/python"
            return self.probe({})

    def _make_venv(self, log: Callable[[str], None]) -> None:
        if self._venv_python("setup"):
            return
        venv = remote_path(self.venv.rstrip("/"))
        base = " ".join(shlex.quote(p) for p in shlex.split(self.python))
        log(f"device {self.name}: creating the venv {self.venv} with {base}")
        has_venv = self._shell(f"{base} -c 'import ensurepip, venv'")
        if not has_venv.ok:
            raise self.error(
                "setup",
                f"{base} on the device cannot make a venv ({has_venv.stderr.strip()[-300:]}): "
                "`sudo apt install python3-venv` there",
            )
        result = self._shell(f"mkdir -p {venv} && {base} -m venv --system-site-packages {venv}")
        if not result.ok:
            raise self.error(
                "setup",
                f"cannot create the venv at {self.venv} "
                f"({(result.stderr or result.stdout).strip()[-500:]}); "
                "choose a folder you can write with device.venv=PATH",
            )

    def _install(self, wheels: Path | None, log: Callable[[str], None]) -> None:
        q = shlex.quote
        venv = remote_path(self.venv.rstrip("/"))
        packages = " ".join(q(p) for p in PIP_NAMES.values())
        source = ""
        if wheels is not None:
            files = sorted(Path(wheels).glob("*.whl"))
            if not files:
                raise self.error("setup", f"no .whl files in {wheels}")
            remote = self._run("setup", "mktemp -d -t pruneflow-wheels.XXXXXX").stdout.strip()
            log(f"device {self.name}: shipping {len(files)} wheels from {wheels}")
            for f in files:
                self.conn.put(str(f), f"{remote}/{f.name}")
            source = f"--no-index --find-links {q(remote)} "
        log(f"device {self.name}: installing {packages} into {self.venv}")
        result = self._shell(
            f"{venv}/bin/python -m pip install --disable-pip-version-check -q {source}{packages}",
            timeout=self.timeout_s,
        )
        if wheels is not None:
            self._shell(f"rm -rf {q(remote)}")
        if not result.ok:
            where = f"the wheels in {wheels}" if wheels else "the device's package index"
            raise self.error(
                "setup",
                f"pip could not install {packages} from {where}: "
                f"{(result.stderr or result.stdout).strip()[-800:]}",
            )

    def _shell(self, command: str, timeout: float | None = None):
        """``command`` on the device, its result whatever its exit status."""
        return self.conn.run(command, hide=True, warn=True, in_stream=False, timeout=timeout)

    # -- the benchmark ------------------------------------------------------------------
    def check_timing_lock(self) -> None:
        """Nothing to refuse here: the device's shell takes its own lock as it times, and
        refuses a planted one then (:func:`~.locks.device_lock_shell`)."""

    def timing_lock(self) -> AbstractContextManager[LockWindow]:
        """Nothing held here: the runner's command takes the device's own lock, and its wait
        is the device's (``timings["lock_wait_s"]``)."""
        return held_on_the_device()

    def benchmark(
        self,
        models: list[Path],
        images_dir: Path,
        out_json: Path,
        delegate: dict,
        protocol: Protocol | None = None,
        keras: Path | None = None,
    ) -> RunnerResult:
        """Ship, verify, run, fetch, clean up. Writes the fetched result to ``out_json``.
        ``keras``: a Keras model the runner times too (the device has TensorFlow)."""
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
            files = bundle([*models, *([keras] if keras else [])], images_dir)
            t0 = time.perf_counter()
            self._upload(files, remote)
            self.timings["upload_s"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            self._run(
                "verify",
                f"cd {q(remote)} && tar -xf bundle.tar && sha256sum -c --quiet --strict SHA256SUMS",
            )
            self.timings["verify_s"] = time.perf_counter() - t0

            python = self.resolved_python
            args = " ".join(
                q(a)
                for a in runner_args(
                    "images",
                    "result.json",
                    delegate,
                    [f"models/{m.name}" for m in models],
                    protocol or Protocol(),
                    f"models/{keras.name}" if keras else None,
                )
            )
            # Only one job times on the device at a time: flock on a file in the device's
            # temporary folder, its wait measured by the device's clock. coreutils' timeout
            # ends the runner on the device even if the session drops.
            t0 = time.perf_counter()
            result = self._run(
                "run",
                f"cd {q(remote)} && {{ {device_lock_shell(9)}; }} && "
                "s=$(date +%s.%N) && flock 9 && "
                f'echo "{LOCK_MARK} $s $(date +%s.%N)" >&2 && '
                f"timeout -k 5 {int(self.timeout_s)} {python} {RUNNER_NAME} {args}",
                timeout=self.timeout_s + 10,
            )
            self.timings["run_s"] = time.perf_counter() - t0
            self.timings["lock_wait_s"] = lock_wait(result.stderr)

            t0 = time.perf_counter()
            try:
                self.conn.get(f"{remote}/result.json", str(out_json))
            except Exception as exc:  # noqa: BLE001
                raise self.error("fetch", f"{type(exc).__name__}: {exc}") from exc
            self.timings["fetch_s"] = time.perf_counter() - t0
        finally:
            t0 = time.perf_counter()
            if self.conn is not None and self.conn.is_connected:
                self._shell(f"rm -rf {q(remote)}")
            self.timings["cleanup_s"] = time.perf_counter() - t0
        return self.read_result("fetch", Path(out_json))

    def _upload(self, files: dict[str, bytes], remote: str) -> None:
        try:
            for name, data in files.items():
                self.conn.put(io.BytesIO(data), f"{remote}/{name}")
        except Exception as exc:  # noqa: BLE001 - a full disk shows as a short write
            why = str(exc) or type(exc).__name__
            need = sum(len(d) for d in files.values())
            df = self._shell(f"df -Pk {shlex.quote(remote)}")
            fields = df.stdout.strip().splitlines()[-1].split() if df.ok else []
            if len(fields) >= 4 and fields[3].isdigit():
                free = int(fields[3])
                why += (
                    f" ({free} KiB free on the device's disk at {remote}, {need // 1024} "
                    "KiB needed" + (": the disk is full)" if free * 1024 < need else ")")
                )
            raise self.error("upload", why) from exc


def remote_path(path: str) -> str:
    """``path`` quoted for the device's shell, a leading ``~/`` meaning the user's home."""
    if path == "~" or path.startswith("~/"):
        rest = path[2:]
        return '"$HOME"' + (f"/{shlex.quote(rest)}" if rest else "")
    return shlex.quote(path)
