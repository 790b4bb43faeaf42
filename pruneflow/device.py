"""Device stage: run the self-contained device runner where the config says, fetch its result.

Both kinds run the same file, ``device_runner.py``, with the same command line, so local and
remote numbers come from one code path:

- ``kind: local`` runs it in a subprocess on this machine;
- ``kind: ssh`` ships it with the models and the benchmark images to a device over SSH (Fabric),
  checks every file by sha256 on the device, runs it, fetches the JSON result and removes its
  remote work folder. One Connection serves the whole run.

Every failure is a :class:`DeviceError` naming the device and the step. Before any work a run
checks its device (:func:`check`): the runner's ``--probe`` on the device's python says what is
there, and what is missing fails the run in seconds with the command that fixes it.
``pruneflow device setup`` (:meth:`SSHDevice.setup`) makes a venv on the device with the
runner's packages; later runs use it (``device.venv``).

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

from pruneflow import device_runner as _runner
from pruneflow.errors import PruneflowError, require

log = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("device_runner.py")
KINDS = ("local", "ssh")
DEFAULT_VENV = "~/.pruneflow/venv"  # on the device: made by `pruneflow device setup`
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


def check_cooldown(cooldown_c: float | None, cooldown_max_s: float) -> None:
    require(
        cooldown_c is None or cooldown_c > 0,
        "cooldown_c",
        cooldown_c,
        "null (do not wait) or degrees Celsius > 0",
    )
    require(cooldown_max_s > 0, "cooldown_max_s", cooldown_max_s, "seconds > 0")


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


@dataclass
class Protocol:
    """How the runner times (``benchmark`` and ``device`` config keys): warm-up images before
    the timed ones, passes over the images, waiting for the CPU to cool before each model."""

    warmup: int = 0
    repeats: int = 1
    cooldown_c: float | None = None
    cooldown_max_s: float = 300.0

    def args(self) -> list[str]:
        extra = ["--warmup", str(self.warmup), "--repeats", str(self.repeats)]
        if self.cooldown_c is not None:
            extra += [
                "--cooldown-c",
                str(self.cooldown_c),
                "--cooldown-max-s",
                str(self.cooldown_max_s),
            ]
        return extra


def _runner_args(
    images: str,
    out: str,
    delegate: dict,
    models: list[str],
    protocol: Protocol,
    keras: str | None = None,
) -> list[str]:
    return [
        "--images",
        images,
        "--out",
        out,
        "--delegate",
        json.dumps(delegate),
        *protocol.args(),
        *(["--keras", keras] if keras else []),
        *models,
    ]


# What a device lacks, and the command that installs it there (Debian / Raspberry Pi OS)
APT_FIX = {"numpy": "python3-numpy", "pillow": "python3-pil"}
PIP_NAMES = {label: pip for label, pip in _runner.REQUIREMENTS.values()}
KERAS_WHERE = ("auto", "device", "host", "off")  # benchmark.keras


def check_keras(where: str) -> None:
    require(
        where in KERAS_WHERE,
        "keras",
        where,
        f"{list(KERAS_WHERE)} (auto: on the device when it has TensorFlow, else on this machine)",
    )


@dataclass
class Ready:
    """A checked device: the python that runs the runner there, what the probe found, where the
    Keras model is timed (``device`` | ``host`` | ``off``) and anything worth a warning."""

    python: str | None
    facts: dict
    keras_on: str
    notes: list[str]


def _has_keras(packages: dict) -> bool:
    """TensorFlow that can load pruneflow's Keras 2 models: tf_keras, or TensorFlow < 2.16."""
    tf = packages.get("tensorflow")
    if not tf:
        return False
    major_minor = tuple(int(p) for p in tf.split(".")[:2] if p.isdigit())
    return "tf_keras" in packages or major_minor < (2, 16)


def probe(options: dict, delegate: dict) -> tuple[dict, str, str]:
    """Connect to the device of ``options`` (the ``device`` config keys) and run the runner's
    ``--probe`` there: (its facts, the python that ran it, the device's description)."""
    with open_device(**options) as dev:
        return dev.probe(delegate), dev.resolved_python, f"{dev.name} ({dev.address})"


def check(options: dict, delegate: dict, keras: str = "auto", setup_command: str = "") -> Ready:
    """Probe the device before any work and judge it (:func:`readiness`)."""
    facts, python, who = probe(options, delegate)
    return readiness(facts, python, who, options["kind"], delegate, keras, setup_command)


def readiness(
    facts: dict,
    python: str,
    device: str,
    kind: str,
    delegate: dict,
    keras: str = "auto",
    setup_command: str = "",
) -> Ready:
    """Judge a device's probe: raise :class:`DeviceError` naming the device, everything
    missing at once and the commands that fix it (``setup_command`` first: ``pruneflow device
    setup ...`` with this run's device keys); else the :class:`Ready` device."""
    who = facts.get("executable") or python or "python3"
    problems, notes = [], []
    version = tuple(int(p) for p in str(facts.get("python", "0")).split(".")[:2] if p.isdigit())
    if version < _runner.MIN_PYTHON:
        need = ".".join(map(str, _runner.MIN_PYTHON))
        problems.append(
            f"Python {facts.get('python')} ({who}) is too old: the runner needs >= {need}; "
            "point device.python at a newer one"
        )
    missing = list(facts.get("missing", {}))
    if missing:
        apt = [APT_FIX[m] for m in missing if m in APT_FIX]
        pip = [PIP_NAMES[m] for m in missing if m not in APT_FIX]
        fixes = [f"`{setup_command}`"] if setup_command and kind == "ssh" else []
        manual = []
        if apt:
            manual.append(f"sudo apt install {' '.join(apt)}")
        after = ""
        if pip and facts.get("venv"):
            manual.append(f"{who} -m pip install {' '.join(pip)}")
        elif pip:  # Debian's and Raspberry Pi OS's own python refuse pip installs (PEP 668)
            manual += [
                f"{who} -m venv --system-site-packages VENV",
                f"VENV/bin/pip install {' '.join(pip)}",
            ]
            after = (
                " (then device.python=VENV/bin/python)"
                if kind == "local"
                else " with VENV the device.venv folder (runs use it)"
            )
        fixes.append("on the device: `" + " && ".join(manual) + "`" + after)
        problems.append(f"{who} lacks {', '.join(missing)}; fix: " + ", or ".join(fixes))
    lib = facts.get("delegate_library")
    if lib and not lib.get("loads"):
        why = (
            f"delegate.library={lib['path']} does not load on the device ({lib.get('error')}): "
            "install the delegate there and give its full path"
        )
        if delegate.get("fallback") == "error":
            problems.append(why + " (or delegate.fallback=builtin)")
        else:
            notes.append(why + "; the variants will run on builtin kernels (delegate.fallback)")
    keras_on = keras
    if kind == "local":
        keras_on = "off" if keras == "off" else "device"  # the device is this machine
    elif keras in ("auto", "device"):
        if _has_keras(facts.get("packages", {})):
            keras_on = "device"
        elif keras == "device":
            problems.append(
                f"benchmark.keras=device, but {who} has no TensorFlow that loads Keras 2 models "
                "(tensorflow with tf_keras): install them on the device, or benchmark.keras=auto "
                "(times the Keras model on this machine, tagged timed_on/keras=host) or off"
            )
        else:
            keras_on = "host"
            notes.append(
                f"{who} has no TensorFlow: the Keras model is timed on this machine "
                "(tagged timed_on/keras=host)"
            )
    if problems:
        raise DeviceError(f"device {device}: check failed: " + "; ".join(problems))
    return Ready(python, facts, keras_on, notes)


def describe(facts: dict) -> str:
    """A probe as the lines ``pruneflow device check`` prints."""
    pk = facts.get("packages", {})
    missing = facts.get("missing", {})

    def package(label: str) -> str:
        return pk.get(label) or f"MISSING ({missing.get(label, 'not installed')})"

    h = facts.get("hygiene", {})
    state = [
        f"{h['temp_c']:.1f} C" if "temp_c" in h else "temperature: no thermal zone",
        f"{h['freq_mhz']:.0f} MHz" if "freq_mhz" in h else "clock: not exposed",
        f"governor {h.get('governor', 'not exposed')}",
        f"throttled {h.get('throttled', '(no vcgencmd)')}",
        f"load {h['load1']:.2f}" if "load1" in h else "",
    ]
    lib = facts.get("delegate_library")
    delegates = "xnnpack (built into LiteRT), none (builtin kernels)"
    if lib:
        delegates += f"; {lib['path']}: " + (
            "loads" if lib.get("loads") else f"does not load ({lib.get('error')})"
        )
    venv = " (venv)" if facts.get("venv") else ""
    tf = pk.get("tensorflow", "-") + (f", tf_keras {pk['tf_keras']}" if "tf_keras" in pk else "")
    free = f"{facts.get('free_disk_mb', 0) / 1024:.1f} GiB in {facts.get('temp_folder')}"
    rows = [
        ("python", f"{facts.get('executable')} {facts.get('python')}{venv}"),
        ("cpu", f"{facts.get('cpu', '?')} ({facts.get('machine')}, {facts.get('cores')} cores)"),
        ("os", facts.get("os", "?")),
        ("numpy", package("numpy")),
        ("pillow", package("pillow")),
        ("litert", package("litert")),
        ("tensorflow", tf),
        ("delegates", delegates),
        ("disk free", free),
        ("cpu state", ", ".join(x for x in state if x)),
    ]
    return "\n".join(f"  {k:<11}{v}" for k, v in rows)


class LocalDevice:
    """This machine: the runner runs in a subprocess of ``python`` (default: this Python)."""

    def __init__(
        self,
        name: str = "local",
        python: str | None = None,
        timeout_s: float = 600.0,
    ):
        check_device("local", name, timeout_s, "local")
        self.name, self.python, self.timeout_s = name, python, timeout_s
        self.timings: dict[str, float] = {}

    address = "this machine"

    @property
    def resolved_python(self) -> str:
        return self.python or sys.executable

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def probe(self, delegate: dict) -> dict:
        """The runner's ``--probe`` with this device's python (see :func:`check`); with
        pruneflow's own Python, the runner's probe function in this process."""
        if self.python is None:
            return _runner.probe(delegate)
        cmd = [*shlex.split(self.resolved_python), str(RUNNER), "--probe"]
        try:
            proc = subprocess.run(
                [*cmd, "--delegate", json.dumps(delegate)],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DeviceError(
                f"device {self.name}: check failed: cannot run {self.resolved_python!r}: {exc}"
            ) from exc
        if proc.returncode != 0:
            raise DeviceError(
                f"device {self.name}: check failed: {self.resolved_python} exited "
                f"{proc.returncode}: {(proc.stderr or proc.stdout).strip()[-1000:]}"
            )
        return json.loads(proc.stdout)

    def benchmark(
        self,
        models: list[Path],
        images_dir: Path,
        out_json: Path,
        delegate: dict,
        protocol: Protocol | None = None,
    ) -> dict:
        """Time ``models`` on this machine; returns the runner's JSON document.

        Writes the runner's result to ``out_json``.
        """
        cmd = [
            *shlex.split(self.resolved_python),
            str(RUNNER),
            *_runner_args(
                str(images_dir),
                str(out_json),
                delegate,
                [str(m) for m in models],
                protocol or Protocol(),
            ),
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
        venv: str | None = DEFAULT_VENV,
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
        self.python, self.venv = python, venv
        self._python: str | None = None  # resolved on the device: see resolved_python
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
        """The runner's ``--probe`` run by the device's python (see :func:`check`); the runner
        travels in the command itself, nothing is written on the device."""
        q = shlex.quote
        python = self.resolved_python
        result = self.conn.run(
            f"{python} -c {q(RUNNER.read_text())} --probe --delegate {q(json.dumps(delegate))}",
            hide=True,
            warn=True,
            in_stream=False,
            timeout=120,
        )
        if result.exited == 127:
            raise self._fail(
                "check",
                f"{python} not found on the device: install python3 there "
                "(sudo apt install python3) or point device.python at it",
            )
        if result.exited != 0:
            raise self._fail("check", f"{python} exited {result.exited}: {result.stderr[-1000:]}")
        try:
            return json.loads(result.stdout)
        except ValueError as exc:
            raise self._fail("check", f"the probe printed no JSON: {result.stdout[-500:]}") from exc

    def setup(self, wheels: Path | None = None, log=print) -> dict:
        """Make ``device.venv`` on the device (with its system packages visible: a Pi's apt
        numpy, Pillow or TensorFlow count) and install the runner's packages into it with the
        device's own pip and package index, or from the ``wheels`` folder shipped from here
        (an offline device). Returns the venv python's probe."""
        q = shlex.quote
        require(bool(self.venv), "venv", self.venv, "a folder on the device for the venv")
        venv = remote_path(self.venv.rstrip("/"))
        base = " ".join(q(p) for p in shlex.split(self.python))
        if not self._venv_python("setup"):
            log(f"device {self.name}: creating the venv {self.venv} with {base}")
            has_venv = self.conn.run(
                f"{base} -c 'import ensurepip, venv'", hide=True, warn=True, in_stream=False
            )
            if not has_venv.ok:
                raise self._fail(
                    "setup",
                    f"{base} on the device cannot make a venv ({has_venv.stderr.strip()[-300:]}): "
                    "`sudo apt install python3-venv` there",
                )
            result = self.conn.run(
                f"mkdir -p {venv} && {base} -m venv --system-site-packages {venv}",
                hide=True,
                warn=True,
                in_stream=False,
            )
            if not result.ok:
                raise self._fail(
                    "setup",
                    f"cannot create the venv at {self.venv} "
                    f"({(result.stderr or result.stdout).strip()[-500:]}); "
                    "choose a folder you can write with device.venv=PATH",
                )
        packages = " ".join(q(p) for p in PIP_NAMES.values())
        source = ""
        if wheels is not None:
            files = sorted(Path(wheels).glob("*.whl"))
            if not files:
                raise self._fail("setup", f"no .whl files in {wheels}")
            remote = self._run("setup", "mktemp -d -t pruneflow-wheels.XXXXXX").stdout.strip()
            log(f"device {self.name}: shipping {len(files)} wheels from {wheels}")
            for f in files:
                self.conn.put(str(f), f"{remote}/{f.name}")
            source = f"--no-index --find-links {q(remote)} "
        log(f"device {self.name}: installing {packages} into {self.venv}")
        result = self.conn.run(
            f"{venv}/bin/python -m pip install --disable-pip-version-check -q {source}{packages}",
            hide=True,
            warn=True,
            in_stream=False,
            timeout=self.timeout_s,
        )
        if wheels is not None:
            self.conn.run(f"rm -rf {q(remote)}", hide=True, warn=True, in_stream=False)
        if not result.ok:
            where = f"the wheels in {wheels}" if wheels else "the device's package index"
            raise self._fail(
                "setup",
                f"pip could not install {packages} from {where}: "
                f"{(result.stderr or result.stdout).strip()[-800:]}",
            )
        self._python = f"{venv}/bin/python"
        return self.probe({})

    # -- the benchmark ------------------------------------------------------------------
    def benchmark(
        self,
        models: list[Path],
        images_dir: Path,
        out_json: Path,
        delegate: dict,
        protocol: Protocol | None = None,
        keras: Path | None = None,
    ) -> dict:
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
            bundle = self._bundle([*models, *([keras] if keras else [])], images_dir)
            t0 = time.perf_counter()
            self._upload(bundle, remote)
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
                for a in _runner_args(
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


PROTOCOL_KEYS = ("cooldown_c", "cooldown_max_s")  # device keys that shape the timing (Protocol)


def open_device(kind: str = "local", **options) -> LocalDevice | SSHDevice:
    """The device of ``kind`` configured by ``options`` (the ``device`` config node's keys;
    its :data:`PROTOCOL_KEYS` go to :class:`Protocol` instead).

    Building it does not connect; ``with`` opens and closes the connection."""
    require(kind in KINDS, "kind", kind, str(list(KINDS)))
    options = {k: v for k, v in options.items() if k not in PROTOCOL_KEYS}
    return (LocalDevice if kind == "local" else SSHDevice)(**options)


def remote_path(path: str) -> str:
    """``path`` quoted for the device's shell, a leading ``~/`` meaning the user's home."""
    if path == "~" or path.startswith("~/"):
        rest = path[2:]
        return '"$HOME"' + (f"/{shlex.quote(rest)}" if rest else "")
    return shlex.quote(path)
