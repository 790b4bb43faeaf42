"""The SSH device against a real OpenSSH server started by the test on 127.0.0.1.

The "device" is this machine reached through that sshd: the runner runs under this Python,
which has numpy, Pillow and LiteRT, as a Raspberry Pi would (the emulated arm64 Pi is the slow
test in test_slow.py, `make test-slow`).
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import TINY, outputs_to, read_runs, run_cli
from helpers.sshd import PrivateSSHD, free_port, keygen
from pruneflow.devices.base import open_device
from pruneflow.errors import DeviceError

DELEGATE = {"name": "xnnpack", "threads": 1, "fallback": "builtin"}


pytestmark = pytest.mark.needs("sshd")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with PrivateSSHD(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def remote(sshd, **extra):
    return open_device(sshd.device_config(**{"python": sys.executable, **extra}))


def test_remote_benchmark_ships_verifies_runs_fetches_and_cleans_up(sshd, tflite_bench, tmp_path):
    paths, images = tflite_bench
    models = [paths["tflite_fp32"], paths["tflite_int8"]]
    workdir = tmp_path / "device tmp; it's quoted"  # remote paths and arguments are quoted
    workdir.mkdir()
    with remote(sshd, workdir=str(workdir)) as dev:
        doc = dev.benchmark(models, images, tmp_path / "r.json", DELEGATE)
        doc2 = dev.benchmark(models, images, tmp_path / "r2.json", DELEGATE)  # same Connection
    assert set(doc.results) == {"tflite_fp32", "tflite_int8"}
    for r in doc.results.values():
        assert len(r.times_ms) == 12 and r.kernels == "xnnpack"
    assert doc.results["tflite_int8"].predictions == doc2.results["tflite_int8"].predictions
    assert doc.device["machine"] and doc.device["runtime"] == "ai_edge_litert"
    for step in ("connect_s", "prepare_s", "upload_s", "verify_s", "run_s", "fetch_s", "cleanup_s"):
        assert dev.timings[step] > 0, step
    assert list(workdir.iterdir()) == []  # the remote work folder is gone


def test_a_corrupted_upload_is_caught_by_the_checksum(sshd, tflite_bench, tmp_path, monkeypatch):
    paths, images = tflite_bench
    models = [paths["tflite_fp32"], paths["tflite_int8"]]
    dev = remote(sshd)
    from pruneflow.devices import ssh
    from pruneflow.devices.bundle import bundle

    def corrupt(*args):
        files = bundle(*args)
        files["SHA256SUMS"] = files["SHA256SUMS"].replace(b"a", b"b", 1)
        return files

    monkeypatch.setattr(ssh, "bundle", corrupt)
    with dev, pytest.raises(DeviceError, match=r"device ssh \(.*\): verify failed"):
        dev.benchmark(models, images, tmp_path / "r.json", DELEGATE)


def test_wrong_client_key_is_refused(sshd, tmp_path):
    other = keygen(tmp_path / "other_key")
    with pytest.raises(DeviceError, match="connect failed: authentication refused"):
        with remote(sshd, key_file=str(other)):
            pass


def test_changed_host_key_is_refused(sshd, tmp_path):
    impostor = keygen(tmp_path / "impostor")
    algo, key = impostor.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {algo} {key}\n")
    # accepting new hosts never accepts a changed one
    for accept in (False, True):
        with pytest.raises(DeviceError, match="connect failed: the host key does not match"):
            with remote(sshd, known_hosts=str(known), accept_new_host=accept):
                pass


def test_unknown_host_is_refused_unless_accepted_explicitly(sshd, tflite_bench, tmp_path):
    known = tmp_path / "ssh" / "known_hosts"
    with pytest.raises(DeviceError, match="unknown host.*accept_new_host=true"):
        with remote(sshd, known_hosts=str(known)):
            pass
    with remote(sshd, known_hosts=str(known), accept_new_host=True):
        pass
    assert f"[127.0.0.1]:{sshd.port}" in known.read_text()
    with remote(sshd, known_hosts=str(known)):  # now known
        pass


def test_host_down_names_the_device_and_the_step(tmp_path, sshd):
    opts = sshd.device_config(port=free_port(), connect_timeout_s=3)
    with pytest.raises(DeviceError, match=r"device ssh \(.*\): connect failed: cannot reach"):
        with open_device(opts):
            pass


def _fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "python3"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_runner_killed_on_the_device(sshd, tflite_bench, tmp_path):
    paths, images = tflite_bench
    models = [paths["tflite_fp32"], paths["tflite_int8"]]
    python = _fake_python(tmp_path, "kill -9 $$")
    with remote(sshd, python=python) as dev:
        with pytest.raises(
            DeviceError, match="run failed: exit status .*: the runner was killed by a signal"
        ):
            dev.benchmark(models, images, tmp_path / "r.json", DELEGATE)


def test_runner_crash_reports_its_error(sshd, tflite_bench, tmp_path):
    paths, images = tflite_bench
    models = [paths["tflite_fp32"], paths["tflite_int8"]]
    python = _fake_python(tmp_path, 'echo "Traceback: boom" >&2; exit 3')
    with remote(sshd, python=python) as dev:
        with pytest.raises(DeviceError, match="run failed: exit status 3: Traceback: boom"):
            dev.benchmark(models, images, tmp_path / "r.json", DELEGATE)


def test_runner_timeout_on_the_device(sshd, tflite_bench, tmp_path):
    paths, images = tflite_bench
    models = [paths["tflite_fp32"], paths["tflite_int8"]]
    python = _fake_python(tmp_path, "sleep 30")
    with remote(sshd, python=python, timeout_s=1) as dev:
        with pytest.raises(DeviceError, match="run failed: the runner timed out after 1 s"):
            dev.benchmark(models, images, tmp_path / "r.json", DELEGATE)


@pytest.mark.needs("root")
def test_full_remote_disk(sshd, tflite_bench, tmp_path):
    paths, images = tflite_bench
    models = [paths["tflite_fp32"], paths["tflite_int8"]]
    small = tmp_path / "small"
    small.mkdir()
    # A 64 KiB tmpfs as the device's work folder (root: see the test's mark).
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True
    )
    assert mounted.returncode == 0, mounted.stderr.decode()
    try:
        with remote(sshd, workdir=str(small)) as dev:
            with pytest.raises(DeviceError, match="upload failed: .*the disk is full"):
                dev.benchmark(models, images, tmp_path / "r.json", DELEGATE)
        assert list(small.iterdir()) == []  # cleaned up even after the failure
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_cli_run_on_an_ssh_device_with_the_armnn_delegate(sshd, tmp_path):
    """device=ssh end to end; Arm NN's delegate does not exist on x86, so every variant falls
    back to builtin kernels and the run records that."""
    args = [
        *TINY,
        *outputs_to(tmp_path),
        *sshd.device_overrides(python=sys.executable),
        "delegate=armnn",
    ]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, (run,) = read_runs(tmp_path)
    m, tags, params = run.data.metrics, run.data.tags, run.data.params
    assert run.info.status == "FINISHED"
    assert tags["device"] == "ssh" and tags["device.kind"] == "ssh"
    assert tags["device.address"] == "127.0.0.1" and tags["delegate"] == "armnn"
    for variant in ("tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"):
        assert tags[f"kernels/{variant}"] == "builtin"
        assert "libarmnnDelegate.so" in tags[f"fallback/{variant}"]
        assert m[f"{variant}/fell_back"] == 1.0
        assert m[f"{variant}/latency_p50_ms"] > 0
    assert params["delegate.options.backends"] == "CpuAcc,CpuRef"
    for step in ("connect_s", "upload_s", "run_s", "fetch_s"):
        assert m[f"device/{step}"] > 0
    # no secret reaches MLflow: the key file's path may, its contents never
    private = sshd.client_key.read_text().splitlines()[1]
    logged = " ".join([*params.values(), *tags.values()])
    assert private not in logged and "PRIVATE KEY" not in logged


# slow: its parts stay in make test: a host down (test_host_down_names_the_device_and_the_step),
# one failing job alone (test_sweeps.py), a device option in a user's folder (test_config.py)
@pytest.mark.slow
def test_sweep_over_devices_one_down_the_other_still_reports(sshd, tmp_path):
    """Several devices, each an option in the user's own config folder (as the README shows),
    swept in one command; one is down."""
    conf = tmp_path / "my_conf" / "device"
    conf.mkdir(parents=True)
    keys = sshd.device_options(port=free_port(), connect_timeout_s=3)
    lines = [f"{k}: {v}" for k, v in keys.items() if k != "name"]
    (conf / "pi_down.yaml").write_text(
        "defaults:\n  - /schema/device/ssh@_here_\n  - _self_\nname: ssh\n"
        + "\n".join(lines)
        + "\n"
    )
    args = [
        "--config-dir",
        str(tmp_path / "my_conf"),
        "-m",
        "device=pi_down,local",
        *TINY,
        *outputs_to(tmp_path),
    ]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 1
    assert "device ssh (" in proc.stderr and "connect failed: cannot reach" in proc.stderr
    assert "Traceback" not in proc.stderr
    client, runs = read_runs(tmp_path)
    status = {r.data.tags["device"]: r.info.status for r in runs}
    assert status == {"ssh": "FAILED", "local": "FINISHED"}
    failed = next(r for r in runs if r.data.tags["device"] == "ssh")
    # the device is checked before any work: nothing was trained for a device that is down
    assert "connect failed" in failed.data.tags["pruneflow.error.message"]
    assert "baseline/accuracy" not in failed.data.metrics
    assert not client.list_artifacts(failed.info.run_id, "models")


def test_an_ssh_device_times_only_while_it_holds_its_own_lock(sshd, tflite_bench, tmp_path):
    """The lock is a file in the device's temporary folder, taken with flock on the device.
    The device here is this machine, so holding this machine's timing lock (the same file in
    the same /tmp) is another job timing on that device: the runner waits for it."""
    import threading
    import time

    from pruneflow.devices.locks import timing_lock

    paths, images = tflite_bench
    held, release = threading.Event(), threading.Event()

    def other_job():
        with timing_lock():
            held.set()
            release.wait(60)

    thread = threading.Thread(target=other_job)
    thread.start()
    assert held.wait(120)  # after any job of the other test process timing on this machine
    # connecting, uploading and verifying come first: a few seconds on a loaded machine
    threading.Timer(8.0, release.set).start()
    try:
        t0 = time.monotonic()
        with remote(sshd) as dev:
            dev.benchmark([paths["tflite_int8"]], images, tmp_path / "r.json", DELEGATE)
        waited = time.monotonic() - t0
    finally:
        release.set()
        thread.join()
    assert dev.timings["lock_wait_s"] >= 1.0 and waited >= 8.0, dev.timings
