"""Adding a device kind is its class, its schema and its option, nothing else: a toy kind,
written here and not in the package, runs a job and is checked by `pruneflow device check`.

The way a user adds one (and the way this test does): a module of theirs holds

- the device class, a :class:`pruneflow.devices.base.Device` subclass that implements the
  interface (probe, setup, check_timing_lock, timing_lock, benchmark, resolved_python);
- its schema, a :class:`pruneflow.devices.config.DeviceConfig` subclass whose ``kind`` is the
  ``device.kind`` tag of its runs and whose ``_target_`` names the class;
- its option, stored in Hydra's ConfigStore when the module is imported
  (``ConfigStore.instance().store(group="device", name="toy", node=ToyDeviceConfig)``), and/or
  YAML options in a config folder of theirs that extend ``/schema/device/<kind>``;

and their package names the module in an entry point of the group ``pruneflow.devices``
(``[project.entry-points."pruneflow.devices"] toy = "toy_device"`` in its pyproject.toml), which
pruneflow imports before composing any config. Here the package is "installed" as pip would
install it: the module and its ``.dist-info`` (with ``entry_points.txt``) in a folder on
``PYTHONPATH``. Then ``pruneflow device=toy ...`` and ``pruneflow device check device=toy``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.cli import clean_env, outputs_to, pruneflow_command, read_runs, run_cli
from pruneflow.results import JOB_KEY_TAG

TOY = '''
"""A toy device kind: the real runner on this machine, in a subprocess of this Python, behind
a timing lock in a folder of its own; its runs are tagged device.kind=toy."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import ClassVar

from hydra.core.config_store import ConfigStore

from pruneflow.devices.base import RUNNER, Device, Protocol, runner_args
from pruneflow.devices.config import DeviceConfig
from pruneflow.devices.locks import check_timing_lock, timing_lock


@dataclass
class ToyDeviceConfig(DeviceConfig):
    kind: ClassVar[str] = "toy"
    _target_: str = "toy_device.ToyDevice"
    name: str = "toy"
    lock_dir: str = "/tmp"  # a key of its own: where its timing lock lives


class ToyDevice(Device):
    address = "a toy box"

    @property
    def resolved_python(self):
        return sys.executable

    def probe(self, delegate):
        cmd = [sys.executable, str(RUNNER), "--probe", "--delegate", json.dumps(delegate)]
        return json.loads(subprocess.run(cmd, capture_output=True, check=True).stdout)

    def setup(self, wheels=None, log=print):
        log(f"device {self.name}: a toy has nothing to set up")

    def check_timing_lock(self):
        check_timing_lock(self.config.lock_dir)

    def timing_lock(self):
        return timing_lock(self.config.lock_dir)

    def benchmark(self, models, images_dir, out_json, delegate, protocol=None, keras=None):
        args = runner_args(
            str(images_dir),
            str(out_json),
            delegate,
            [str(m) for m in models],
            protocol or Protocol(),
            str(keras) if keras else None,
        )
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(RUNNER), *args], capture_output=True, text=True)
        self.timings["run_s"] = time.perf_counter() - t0
        if proc.returncode != 0:
            raise self.error("run", proc.stderr[-2000:])
        return self.read_result("run", out_json)


ConfigStore.instance().store(group="device", name="toy", node=ToyDeviceConfig)
'''
VARIANTS = ("tflite_fp32", "tflite_int8")


@pytest.fixture
def toy(tmp_path):
    """(the overrides that pick the toy kind, an environment where it is installed)."""
    site = tmp_path / "site"  # what `pip install` of the toy's package would leave
    (site / "toy_device-0.1.dist-info").mkdir(parents=True)
    (site / "toy_device.py").write_text(TOY)
    info = site / "toy_device-0.1.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-device\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[pruneflow.devices]\ntoy = toy_device\n")
    (tmp_path / "locks").mkdir()
    env = {**clean_env(), "PYTHONPATH": str(site)}
    return ["device=toy", f"device.lock_dir={tmp_path / 'locks'}"], env


def test_a_kind_of_yours_runs_a_job_tagged_with_its_kind(toy, tmp_path):
    overrides, env = toy
    args = ["+debug=tiny", f"stage.variants=[{','.join(VARIANTS)}]", *overrides]
    proc = run_cli([*args, *outputs_to(tmp_path)], tmp_path, command=pruneflow_command(), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "timed tflite_int8 on toy: p50 " in proc.stdout + proc.stderr
    client, (run,) = read_runs(tmp_path)
    tags, m = run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED"
    assert tags["device"] == "toy" and tags["device.kind"] == "toy"
    for variant in ("keras", *VARIANTS):  # the toy's probe found TensorFlow: Keras timed there
        assert tags[f"timed_on/{variant}"] == "toy"
        assert m[f"{variant}/latency_p50_ms"] > 0 and m[f"{variant}/peak_rss_mb"] > 0
    assert (tmp_path / "locks" / "pruneflow-timing.lock").is_file()  # its own lock
    # the run's config reads back with the toy's schema (a report, `pruneflow compare`)
    config = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    read = (
        "import sys; from pathlib import Path; from pruneflow.config import from_settings;"
        "c = from_settings(Path(sys.argv[1]).read_text());"
        "print(type(c.device).__name__, c.device.lock_dir, c.job_key)"
    )
    back = subprocess.run(
        [sys.executable, "-c", read, config], capture_output=True, text=True, env=env
    )
    assert back.returncode == 0, back.stderr[-2000:]
    assert back.stdout.split() == ["ToyDeviceConfig", str(tmp_path / "locks"), tags[JOB_KEY_TAG]]


def test_device_check_and_setup_work_on_a_kind_of_yours(toy, tmp_path):
    overrides, env = toy
    proc = run_cli(["device", "check", *overrides], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("device toy (a toy box)\n"), proc.stdout
    assert f"python     {sys.executable}" in proc.stdout
    assert "ready: runs will use" in proc.stdout and "timed on the device" in proc.stdout
    proc = run_cli(["device", "setup", *overrides], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "device toy: a toy has nothing to set up"
    # an option of its own in a config folder extends the kind's schema as a packaged one does
    (tmp_path / "conf" / "device").mkdir(parents=True)
    (tmp_path / "conf" / "device" / "toybox.yaml").write_text(
        "defaults:\n  - /schema/device/toy@_here_\n  - _self_\nname: toybox\n"
    )
    box = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "device=toybox"]
    proc = run_cli(["device", "check", *box, overrides[1]], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("device toybox (a toy box)\n"), proc.stdout
    # its own keys are checked like any other: a bad one is one line, before any work
    proc = run_cli(["device", "check", *overrides, "+device.lock_dri=/x"], tmp_path, env=env)
    assert proc.returncode == 2 and "did you mean device.lock_dir?" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "mlruns")
