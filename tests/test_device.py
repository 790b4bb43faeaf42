"""A device one step from ready, its check and setup, and where every number is timed: against a
real OpenSSH server on 127.0.0.1 started by the test, the "device" being this machine.

This machine has what a fresh Raspberry Pi OS has: Debian's /usr/bin/python3 with neither numpy
nor Pillow (shared/STACK.md), and a package index pip reaches (the Pi's own, piwheels; here the
machine's pip configuration). `pruneflow device setup` installs into a venv from it, as on a Pi.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time

import pytest

from helpers.cli import TINY, outputs_to, read_runs, run_cli
from helpers.sshd import PrivateSSHD

BARE = "/usr/bin/python3"  # Debian's: no numpy, no Pillow, no LiteRT
TFLITE = ("tflite_fp32", "tflite_int8")
FEW = [*TINY, f"stage.variants=[{','.join(TFLITE)}]"]

pytestmark = pytest.mark.needs("debian_python")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with PrivateSSHD(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.mark.needs("sshd")
def test_a_device_without_its_packages_fails_in_seconds_then_setup_makes_it_ready(sshd, tmp_path):
    venv = tmp_path / "pi-home" / "pruneflow-venv"
    device = sshd.device_overrides(python=BARE, venv=str(venv))

    # 1. the run fails at the device check, before any training, with the fix named
    started = time.monotonic()
    proc = run_cli([*FEW, *outputs_to(tmp_path), *device], cwd=tmp_path)
    check_s = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr[-3000:]
    err = proc.stderr
    assert "device ssh (" in err and "check failed" in err, err[-3000:]
    assert f"{BARE} lacks numpy, pillow, litert" in err
    assert "sudo apt install python3-numpy python3-pil" in err
    assert "Traceback" not in err
    client, (failed,) = read_runs(tmp_path)
    assert failed.info.status == "FAILED"
    assert "lacks numpy" in failed.data.tags["pruneflow.error.message"]
    assert "baseline/accuracy" not in failed.data.metrics  # nothing was trained
    assert "time/train_s" not in failed.data.metrics
    print(f"device check failed the run in {check_s:.1f} s")

    # 2. the exact command it printed sets the device up (the device's own package index)
    setup = re.search(r"`(pruneflow device setup [^`]*)`", err).group(1)
    assert "device=ssh" in setup and f"device.venv={venv}" in setup
    proc = run_cli(shlex.split(setup)[1:], cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert f"creating the venv {venv}" in proc.stdout
    assert f"ready: runs will use {venv}/bin/python" in proc.stdout, proc.stdout
    assert (venv / "bin" / "python").exists()

    # 3. the check now reads the venv, and says where the Keras model will be timed
    proc = run_cli(["device", "check", *device], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{venv}/bin/python" in proc.stdout and "(venv)" in proc.stdout
    assert "MISSING" not in proc.stdout and "timed on this machine" in proc.stdout

    # 4. asked strictly for Keras on the device, which has no TensorFlow: refused, named
    proc = run_cli([*FEW, *outputs_to(tmp_path), *device, "benchmark.keras=device"], cwd=tmp_path)
    assert proc.returncode == 1
    assert "benchmark.keras=device" in proc.stderr and "no TensorFlow" in proc.stderr

    # 5. the same run command as in 1 now passes, timed on the device, Keras on this machine
    proc = run_cli([*FEW, *outputs_to(tmp_path), *device], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr  # the job log's table says where each variant was timed
    assert re.search(r"^keras .* host$", log, re.M), log[-2000:]
    assert re.search(r"^tflite_int8 .* ssh$", log, re.M)
    _, runs = read_runs(tmp_path)
    (run,) = [r for r in runs if r.info.status == "FINISHED"]
    tags, m = run.data.tags, run.data.metrics
    assert tags["device.executable"] == f"{venv}/bin/python"
    assert tags["timed_on/keras"] == "host" and "no TensorFlow" in tags["device.check_notes"]
    for variant in TFLITE:
        assert tags[f"timed_on/{variant}"] == "ssh"
        assert m[f"{variant}/peak_rss_mb"] > 10 and m[f"{variant}/invoke_p50_ms"] > 0
    assert "keras/peak_rss_mb" not in m  # timed in pruneflow's own process: not its own


@pytest.mark.needs("sshd")
def test_keras_is_timed_on_a_device_that_has_tensorflow(sshd, tmp_path):
    """The test's own python has TensorFlow: with benchmark.keras=device the runner times the
    Keras model there, in its own process, with warm-up and repeats like every variant."""
    device = sshd.device_overrides(python=sys.executable)
    args = [*FEW, *outputs_to(tmp_path), *device, "benchmark.keras=device"]
    args += ["benchmark.warmup=2", "benchmark.repeats=2"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert re.search(r"^keras .* ssh$", log, re.M), log[-2000:]
    _, (run,) = read_runs(tmp_path)
    tags, m = run.data.tags, run.data.metrics
    for variant in ("keras", *TFLITE):
        assert tags[f"timed_on/{variant}"] == "ssh"
        assert m[f"{variant}/peak_rss_mb"] > 0
        assert m[f"{variant}/warmup_mean_ms"] > 0 and m[f"{variant}/steady_p50_ms"] > 0
        assert m[f"{variant}/decode_p50_ms"] > 0 and m[f"{variant}/invoke_p50_ms"] > 0
    assert tags["kernels/keras"] == "tensorflow"
    # TensorFlow's process holds far more than LiteRT's
    assert m["keras/peak_rss_mb"] > 2 * m["tflite_int8/peak_rss_mb"]
    assert "device.check_notes" not in tags


def test_device_check_on_this_machine_and_bad_input(tmp_path):
    proc = run_cli(["device", "check"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for line in ("python", "numpy", "pillow", "litert", "disk free", "cpu state"):
        assert f"  {line}" in proc.stdout
    assert "ready: runs will use" in proc.stdout
    # a bad value: one line naming the key, status 2, before any connection
    proc = run_cli(["device", "check", "device=ssh"], cwd=tmp_path)
    assert proc.returncode == 2 and "device.host is required" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli(["device", "setup", "device=ssh", "device.host=h", "--wheels", "/no"], tmp_path)
    assert proc.returncode == 2 and "--wheels /no is not a folder" in proc.stderr
    proc = run_cli(["device", "setup", "device=ssh", "device.host=h", "device.venv=null"], tmp_path)
    assert proc.returncode == 2 and "device.venv=null" in proc.stderr
    # a run whose device python does not exist: refused at the check, nothing trained
    proc = run_cli([*FEW, *outputs_to(tmp_path), "device.python=/nonexistent/python3"], tmp_path)
    assert proc.returncode == 1
    assert "device local: check failed: cannot run '/nonexistent/python3'" in proc.stderr
    _, (run,) = read_runs(tmp_path)
    assert run.info.status == "FAILED" and "baseline/accuracy" not in run.data.metrics
    proc = run_cli(["device", "setup"], tmp_path)  # device=local: pruneflow's own Python
    assert proc.returncode == 0 and "nothing to set up" in proc.stdout


@pytest.mark.needs("sshd")
def test_a_venv_that_cannot_be_made_names_the_device_the_step_and_the_fix(sshd, tmp_path):
    device = sshd.device_overrides(python=BARE, venv="/proc/pruneflow/venv")
    proc = run_cli(["device", "setup", *device], cwd=tmp_path)
    assert proc.returncode == 1
    err = proc.stderr.strip()
    assert err.startswith("pruneflow device setup: error: device ssh (")
    assert "setup failed: cannot create the venv at /proc/pruneflow/venv" in err
    assert "device.venv=PATH" in err and "Traceback" not in err


# slow: test_compare.py's sweep (delegate.threads=1,2) checks the threads used and the report's
# table in make test; the cooldown note without a thermal zone: test_runner.py's device state
@pytest.mark.slow
def test_a_thread_sweep_is_reported_per_thread_count(tmp_path):
    """`-m delegate.threads=1,2` on this machine: each job records the threads the runtime
    really ran, and the sweep's report sets the thread counts side by side."""
    from pruneflow.devices.runner import THERMAL

    args = ["-m", "delegate.threads=1,2", *FEW, *outputs_to(tmp_path), "device.cooldown_c=200"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, runs = read_runs(tmp_path)
    used = {r.data.params["delegate.threads"]: r.data.metrics for r in runs}
    assert used["1"]["tflite_fp32/threads_used"] == 1
    assert used["2"]["tflite_fp32/threads_used"] == 2
    for run in runs:  # cooling below 200 C: no wait; no thermal zone: said, not invented
        note = run.data.tags.get("cooldown/tflite_fp32")
        if os.path.exists(THERMAL):
            assert note is None
        else:
            assert note.startswith(f"no {THERMAL} on this device: cooldown skipped")
            assert "tflite_fp32/temp_before_c" not in run.data.metrics
    report = (tmp_path / "multirun" / "report" / "report.md").read_text()
    assert "## Threads (delegate.threads): latency and energy against threads" in report
    threads = report.split("## Threads")[1].split("\n## ")[0]
    assert "| model | sparsity | variant | 1 | 2 |" in threads, threads
    assert "| tflite_int8 |" in threads and "keras" not in threads
    assert "| decode | invoke | peak RSS MB | timed on | kernels |" in report
