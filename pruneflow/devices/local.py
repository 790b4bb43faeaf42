"""This machine as the device: the runner runs in a subprocess of ``device.python`` (default:
pruneflow's own Python, whose probe runs in-process); the Keras model is timed in this process
with the runner's own code (:func:`time_keras`)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from pruneflow.devices import runner as _runner
from pruneflow.devices.base import RUNNER, Device, Protocol, runner_args
from pruneflow.devices.config import LocalDeviceConfig
from pruneflow.devices.energy import probe_arg
from pruneflow.devices.locks import LockWindow, check_timing_lock, timing_lock
from pruneflow.devices.result import ModelResult, RunnerResult


class LocalDevice(Device):
    """This machine: the runner runs in a subprocess of ``python`` (default: this Python)."""

    venv_use = " (then device.python=VENV/bin/python)"

    def __init__(self, config: LocalDeviceConfig):
        super().__init__(config)
        self.python = config.python

    @property
    def setup_command(self) -> None:
        return None  # nothing to set up: see setup

    def keras_on(self, keras: str, facts: dict) -> str:
        """The device is this machine: the Keras model is timed here, in pruneflow's own
        process (which has TensorFlow), unless ``off``."""
        return "off" if keras == "off" else "device"

    @property
    def resolved_python(self) -> str:
        return self.python or sys.executable

    def probe(self, delegate: dict) -> dict:
        """The runner's ``--probe`` with this device's python; with pruneflow's own Python,
        the runner's probe function in this process."""
        energy = probe_arg(self.config.energy)
        if self.python is None:
            return _runner.probe(delegate, energy)
        cmd = [*shlex.split(self.resolved_python), str(RUNNER), "--probe"]
        cmd += ["--energy", json.dumps(energy)] if energy else []
        try:
            proc = subprocess.run(
                [*cmd, "--delegate", json.dumps(delegate)],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise self.error("check", f"cannot run {self.resolved_python!r}: {exc}") from exc
        if proc.returncode != 0:
            raise self.error(
                "check",
                f"{self.resolved_python} exited {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()[-1000:]}",
            )
        return json.loads(proc.stdout)

    def setup(self, wheels: Path | None = None, log: Callable[[str], None] = print) -> None:
        log(
            f"pruneflow device setup: device={self.name} runs pruneflow's own Python here: "
            "nothing to set up"
        )

    def check_timing_lock(self) -> None:
        """This machine's timing lock (:func:`~.locks.check_timing_lock`): a link, FIFO or
        folder planted in its name is refused now, in one line."""
        check_timing_lock()

    def timing_lock(self) -> AbstractContextManager[LockWindow]:
        """This machine's timing lock (:func:`~.locks.timing_lock`), shared with every job that
        times here, the Keras model on this machine beside an SSH device's runs included."""
        return timing_lock()

    def benchmark(
        self,
        models: list[Path],
        images_dir: Path,
        out_json: Path,
        delegate: dict,
        protocol: Protocol | None = None,
        keras: Path | None = None,
    ) -> RunnerResult:
        """Time ``models`` on this machine by the runner in a subprocess, then the Keras model
        ``keras`` in this process (:func:`time_keras`); writes the runner's result to
        ``out_json`` (the Keras model's is the returned result's only)."""
        protocol = protocol or Protocol()
        cmd = [
            *shlex.split(self.resolved_python),
            str(RUNNER),
            *runner_args(
                str(images_dir), str(out_json), delegate, [str(m) for m in models], protocol
            ),
        ]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise self.error("run", f"runner timed out after {self.timeout_s} s") from exc
        except OSError as exc:
            raise self.error("run", f"cannot start the runner with {cmd[0]!r}: {exc}") from exc
        self.timings["run_s"] = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip()[-2000:]
            raise self.error("run", f"runner exited {proc.returncode}:\n{tail}")
        result = self.read_result("run", Path(out_json))
        if keras is not None:
            result.results[_runner.KERAS] = time_keras(keras, images_dir, protocol)
        return result


def time_keras(model_path: str | Path, images_dir: str | Path, protocol: Protocol) -> ModelResult:
    """The runner's Keras timing (:func:`pruneflow.devices.runner.time_keras`), in this process,
    with this machine's state before and after (no peak memory: this process holds far more
    than the model)."""
    _, images = _runner.read_images(str(images_dir))
    before = _runner.hygiene()
    result = _runner.time_keras(str(model_path), images, protocol.warmup, protocol.repeats)
    return ModelResult(**result, hygiene={"before": before, "after": _runner.hygiene()})


def host_runtime() -> str:
    """This machine's LiteRT, as ``<module> <version>``."""
    _, name, version = _runner.runtime()
    return f"{name} {version}"
