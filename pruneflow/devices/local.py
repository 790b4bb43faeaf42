"""This machine as the device: the runner runs in a subprocess of ``device.python`` (default:
pruneflow's own Python, whose probe runs in-process)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from pruneflow.devices import runner as _runner
from pruneflow.devices.base import RUNNER, Device, Protocol, runner_args
from pruneflow.devices.config import LocalDeviceConfig


class LocalDevice(Device):
    """This machine: the runner runs in a subprocess of ``python`` (default: this Python)."""

    def __init__(self, config: LocalDeviceConfig):
        super().__init__(config)
        self.python = config.python

    @property
    def resolved_python(self) -> str:
        return self.python or sys.executable

    def probe(self, delegate: dict) -> dict:
        """The runner's ``--probe`` with this device's python; with pruneflow's own Python,
        the runner's probe function in this process."""
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
            raise self._fail("check", f"cannot run {self.resolved_python!r}: {exc}") from exc
        if proc.returncode != 0:
            raise self._fail(
                "check",
                f"{self.resolved_python} exited {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()[-1000:]}",
            )
        return json.loads(proc.stdout)

    def benchmark(
        self,
        models: list[Path],
        images_dir: Path,
        out_json: Path,
        delegate: dict,
        protocol: Protocol | None = None,
        keras: Path | None = None,
    ) -> dict:
        """Time ``models`` on this machine (the Keras model is timed in-process by the
        benchmark step, not here); writes the runner's result to ``out_json``."""
        cmd = [
            *shlex.split(self.resolved_python),
            str(RUNNER),
            *runner_args(
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
            raise self._fail("run", f"runner timed out after {self.timeout_s} s") from exc
        except OSError as exc:
            raise self._fail("run", f"cannot start the runner with {cmd[0]!r}: {exc}") from exc
        self.timings["run_s"] = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip()[-2000:]
            raise self._fail("run", f"runner exited {proc.returncode}:\n{tail}")
        return json.loads(Path(out_json).read_text())
