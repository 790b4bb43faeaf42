"""Long checks, run by `make test-slow` (not in CI): the default run's accuracy on real digits,
and the SSH device path on an emulated arm64 Raspberry Pi."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers.cli import ROOT, TINY, outputs_to, read_runs, run_cli
from helpers.sshd import free_port

pytestmark = pytest.mark.slow

VARIANTS = ["tflite_fp32", "tflite_fp32_sparse", "tflite_dynamic", "tflite_float16", "tflite_int8"]


def test_default_settings_reach_the_accuracy_targets(tmp_path):
    proc = run_cli(["-m", "prune.sparsity=0,0.5", *outputs_to(tmp_path)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dense, half = (r.data.metrics for r in read_runs(tmp_path)[1])
    assert dense["baseline/accuracy"] >= 0.97
    assert abs(half["keras/accuracy"] - half["baseline/accuracy"]) <= 0.01
    for m in (dense, half):
        assert abs(m["tflite_int8/accuracy"] - m["tflite_fp32/accuracy"]) <= 0.01
    assert half["sparsity"] == pytest.approx(0.5, abs=0.005)


@pytest.fixture(scope="module")
def emulated_pi():
    """scripts/make-emulated-pi: an arm64 Debian root under qemu-user with its own sshd, one
    step from ready (python3 only), the runner's aarch64 wheels beside it.

    The root is built once into $PRUNEFLOW_PI_ROOT (default .emulated-pi/ in the checkout).
    Yields (root, the overrides `up` printed: its stdout holds nothing else)."""
    root = os.environ.get("PRUNEFLOW_PI_ROOT", str(ROOT / ".emulated-pi"))
    port = free_port()
    script = ROOT / "scripts" / "make-emulated-pi"
    up = subprocess.run(
        [str(script), "up", root, str(port)], capture_output=True, text=True, timeout=1800
    )
    assert up.returncode == 0, up.stderr[-3000:]
    overrides = up.stdout.split()
    assert all(o.startswith("device") for o in overrides) and len(overrides) == 6, up.stdout
    try:
        yield Path(root), overrides
    finally:
        subprocess.run([str(script), "down", root], check=False, timeout=60)


@pytest.mark.needs("qemu", "root")
def test_check_setup_and_a_thread_sweep_on_an_emulated_arm64_pi(emulated_pi, tmp_path):
    root, pi = emulated_pi
    venv = "/opt/pruneflow-test-venv"  # a venv of this test's own, inside the Pi
    shutil.rmtree(root / venv.lstrip("/"), ignore_errors=True)
    device = [*pi, f"device.venv={venv}", "device.timeout_s=1200"]

    check = run_cli(["device", "check", *device], cwd=tmp_path)
    assert check.returncode == 1
    assert "python3 lacks numpy, pillow, litert" in check.stderr, check.stderr
    assert "aarch64" in check.stdout

    wheels = root / "opt" / "pruneflow-wheels"
    setup = run_cli(["device", "setup", *device, "--wheels", str(wheels)], tmp_path, 1800)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    assert f"ready: runs will use {venv}/bin/python" in setup.stdout

    args = [
        "-m",
        "delegate.threads=1,2",
        "benchmark.warmup=2",
        "benchmark.repeats=2",
        *TINY,
        *outputs_to(tmp_path),
        *device,
        # the sparse-format file too: XNNPACK's sparse kernels are an ARM feature
        f"stage.variants=[{','.join(VARIANTS)}]",
    ]
    proc = run_cli(args, cwd=tmp_path, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, runs = read_runs(tmp_path)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    for run in runs:
        tags, m = run.data.tags, run.data.metrics
        threads = int(run.data.params["delegate.threads"])
        assert tags["device"] == "rpi4" and tags["device.machine"] == "aarch64"
        assert tags["device.os"].startswith("Debian GNU/Linux 12")
        assert tags["device.runtime"] == "ai_edge_litert"
        assert tags["device.executable"] == f"{venv}/bin/python"
        assert tags["timed_on/keras"] == "host"  # no TensorFlow on the Pi
        for variant in VARIANTS:
            assert tags[f"timed_on/{variant}"] == "rpi4"
            assert m[f"{variant}/latency_p50_ms"] > 0 and m[f"{variant}/steady_p50_ms"] > 0
            assert m[f"{variant}/warmup_mean_ms"] > 0 and m[f"{variant}/peak_rss_mb"] > 0
            assert tags[f"kernels/{variant}"] in ("xnnpack", "builtin")
            # /proc is mounted in the Pi: its load average is recorded; /sys is not: no
            # temperature, no clock, and none invented
            assert f"{variant}/load1_before" in m
            assert f"{variant}/temp_before_c" not in m
        assert m["tflite_int8/threads_used"] == threads
        # on arm64 the sparse file predicts as the dense one, image by image
        doc = json.loads(
            open(
                client.download_artifacts(run.info.run_id, "benchmark/runner.json", str(tmp_path))
            ).read()
        )
        results = doc["results"]
        assert results["tflite_fp32_sparse"]["predictions"] == results["tflite_fp32"]["predictions"]


@pytest.mark.needs("qemu", "root")
def test_a_channel_pruned_int8_mobilenetv2_runs_on_the_emulated_pi(emulated_pi, tmp_path):
    """The speed-up of channel pruning is a property of the model: the thin int8 MobileNetV2
    is converted here and timed on the (emulated) arm64 Pi like any other variant."""
    root, pi = emulated_pi
    venv = "/opt/pruneflow-test-venv"
    device = [*pi, f"device.venv={venv}", "device.timeout_s=1200"]
    wheels = root / "opt" / "pruneflow-wheels"
    setup = run_cli(["device", "setup", *device, "--wheels", str(wheels)], tmp_path, 1800)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    args = [
        *TINY,
        *outputs_to(tmp_path),
        *device,
        "backbone=mobilenetv2",
        "backbone.weights=null",
        "backbone.input_size=32",
        "prune.channels=0.5",
        "prune.sparsity=0",
        "stage=int8",
    ]
    proc = run_cli(args, cwd=tmp_path, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, (run,) = read_runs(tmp_path)
    tags, m = run.data.tags, run.data.metrics
    assert tags["device.machine"] == "aarch64" and tags["timed_on/tflite_int8"] == "rpi4"
    assert m["tflite_int8/latency_p50_ms"] > 0
    assert m["channels"] == pytest.approx(0.5, abs=0.03)
    assert m["macs"] <= 0.35 * m["baseline/macs"]


@pytest.mark.needs("qemu", "root")
def test_energy_from_a_stand_in_pmic_inside_the_emulated_pi(emulated_pi, tmp_path):
    """device.energy.source=pmic on the emulated arm64 Pi, whose PATH has a stand-in
    `vcgencmd` printing a Pi 5's `pmic_read_adc` format with known rails (inside its root, so
    the Pi's own shell runs it): the check finds the PMIC, the power sampler travels in the
    bundle, and every .tflite variant gets its energy per image from the rails' sum."""
    from helpers.power import PMIC_TEXT, PMIC_WATTS, vcgencmd_script

    root, pi = emulated_pi
    venv = "/opt/pruneflow-test-venv"
    device = [*pi, f"device.venv={venv}", "device.timeout_s=1200"]
    wheels = root / "opt" / "pruneflow-wheels"
    setup = run_cli(["device", "setup", *device, "--wheels", str(wheels)], tmp_path, 1800)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    pmic, vcgencmd = root / "usr/local/share/pmic.txt", root / "usr/local/bin/vcgencmd"
    for f in (pmic, vcgencmd):
        f.parent.mkdir(parents=True, exist_ok=True)
    pmic.write_text(PMIC_TEXT + "\n")
    vcgencmd.write_text(vcgencmd_script("/usr/local/share/pmic.txt"))
    vcgencmd.chmod(0o755)
    try:
        energy = [
            "device.energy.source=pmic",
            "device.energy.window_s=2",
            "device.energy.idle_s=1",
        ]
        check = run_cli(["device", "check", *device, *energy], cwd=tmp_path)
        assert check.returncode == 0 and "energy: pmic" in check.stdout, check.stderr
        args = [*TINY, *outputs_to(tmp_path), *device, *energy, "stage=int8"]
        proc = run_cli(args, cwd=tmp_path, timeout=3600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        _, (run,) = read_runs(tmp_path)
        tags, m = run.data.tags, run.data.metrics
        assert tags["energy.source"] == "pmic" and "energy.note" not in tags
        assert m["tflite_int8/power_w"] == pytest.approx(PMIC_WATTS, rel=1e-12)
        per_image = PMIC_WATTS * m["tflite_int8/energy_window_s"] / m["tflite_int8/energy_images"]
        assert m["tflite_int8/energy_mj"] == pytest.approx(per_image * 1e3, rel=1e-9)
        assert m["tflite_int8/power_samples"] >= 2
    finally:
        vcgencmd.unlink()


def test_the_offline_study_runs_whole_and_ends_with_its_report(tmp_path):
    """`pruneflow -m +experiment=paper_offline`: five stand-in models at the paper's nine
    sparsities, 45 FINISHED runs under one parent, and the report with every model."""
    import time

    import pandas as pd

    t0 = time.monotonic()
    proc = run_cli(["-m", "+experiment=paper_offline", *outputs_to(tmp_path)], cwd=tmp_path)
    print(f"paper_offline: {time.monotonic() - t0:.0f} s")  # BENCHMARKS.md, not asserted
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, runs = read_runs(tmp_path)
    _, (parent,) = read_runs(tmp_path, parents=True)
    assert len(runs) == 45 and {r.info.status for r in runs} == {"FINISHED"}
    assert parent.info.status == "FINISHED" and parent.data.tags["pruneflow.sweep.jobs"] == "45"
    report = tmp_path / "multirun" / "report"
    table = pd.read_csv(report / "runs.csv")
    assert sorted(table["model"].unique()) == sorted(
        f"offline_{m}" for m in ("cats_vs_dogs", "horses_or_humans", "mnist", "svhn", "tf_flowers")
    )
    assert len(table) == 45 * 5  # keras and four TFLite variants per run
    md = (report / "report.md").read_text()
    for model in table["model"].unique():
        assert f"| {model} | tflite_int8 |" in md
    best = parent.data.tags["pruneflow.best_sparsity"]
    print(best)
    assert best.count("offline_") == 5


# A Raspberry Pi 5's /proc/cpuinfo (Cortex-A76, MIDR 0x414fd0b1), one block per core
PI5_CPUINFO = "".join(
    f"processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 "
    "crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\n"
    "CPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n"
    for n in range(2)
)


@pytest.mark.needs("qemu", "root")
def test_the_float16_arithmetic_variant_on_the_emulated_pi(emulated_pi, tmp_path):
    """The emulated Pi described by its own files, and the float16-arithmetic variant run there.

    Under qemu-user the Pi has no device tree (no board), its /proc is the x86 host's, bound in
    (/proc/cpuinfo's features are the host's x86 flags), and it has no /sys. The kernel's
    AT_HWCAP, which is what XNNPACK's cpuinfo reads for the ISA, is qemu's emulated CPU ("max"):
    FP16 arithmetic, int8 dot product, i8mm, SVE. Yet cpuinfo cannot list the processors
    (no /sys/devices/system/cpu, an x86 cpuinfo), so XNNPACK keeps to its baseline kernels and
    the variant is computed in float32: the runner measures it so (its output against that of
    the same file with the metadata hidden). Given a Pi 5's /proc/cpuinfo and the processor
    lists (in a mount namespace of its own), the same runner on the same emulated CPU measures
    float16."""
    from pruneflow import results as r

    root, pi = emulated_pi
    venv = "/opt/pruneflow-test-venv"
    device = [*pi, f"device.venv={venv}", "device.timeout_s=1200"]
    wheels = root / "opt" / "pruneflow-wheels"
    setup = run_cli(["device", "setup", *device, "--wheels", str(wheels)], tmp_path, 1800)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    assert "board      not named (no /proc/device-tree/model)" in setup.stdout
    assert "AT_HWCAP: fphp asimdhp asimddp" in setup.stdout
    assert "(FP16 arithmetic: yes)" in setup.stdout
    args = [*TINY, *outputs_to(tmp_path), *device, "stage=float", "benchmark.images=40"]
    proc = run_cli(args, cwd=tmp_path, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "has no FP16 arithmetic" not in proc.stdout + proc.stderr  # AT_HWCAP says it has
    client, (run,) = read_runs(tmp_path)
    tags = run.data.tags
    assert tags["device.machine"] == "aarch64" and r.device_tag(r.BOARD) not in tags
    hwcap = tags[r.device_tag(r.HWCAP_FEATURES)].split()
    assert {"fphp", "asimdhp", "asimddp", "i8mm"} <= set(hwcap)
    assert "fphp" not in tags[r.device_tag(r.CPU_FEATURES)]  # the x86 host's cpuinfo
    assert tags[r.arithmetic_tag("tflite_float16_compute")] == "float32"
    assert r.arithmetic_tag("tflite_float16") not in tags
    doc = json.loads(
        open(
            client.download_artifacts(run.info.run_id, "benchmark/runner.json", str(tmp_path))
        ).read()
    )
    got = doc["results"]
    # computed in float32, it is tflite_float16 (the same weights), image by image
    assert got["tflite_float16_compute"]["predictions"] == got["tflite_float16"]["predictions"]

    # the same variant, the runner's own measure, with a Pi 5's cpuinfo and processor lists
    work = root / "tmp" / "pruneflow-fp16"
    shutil.rmtree(work, ignore_errors=True)
    (work / "sys" / "devices" / "system" / "cpu").mkdir(parents=True)
    for name in ("present", "possible"):
        (work / "sys" / "devices" / "system" / "cpu" / name).write_text("0-1\n")
    (work / "cpuinfo").write_text(PI5_CPUINFO)
    model = client.download_artifacts(
        run.info.run_id, "models/tflite_float16_compute.tflite", str(work)
    )
    shutil.copy(ROOT / "pruneflow" / "devices" / "runner.py", work / "runner.py")
    probe = (
        "import sys, numpy as np; sys.path.insert(0, '/tmp/pruneflow-fp16'); import runner; "
        "from ai_edge_litert.interpreter import Interpreter; "
        f"m = '/tmp/pruneflow-fp16/{Path(model).name}'; i = Interpreter(model_path=m); "
        "i.allocate_tensors(); d = i.get_input_details()[0]; "
        "x = np.random.RandomState(0).randint(0, 255, d['shape']).astype(np.float32); "
        "i.set_tensor(d['index'], x); i.invoke(); "
        "y = i.get_tensor(i.get_output_details()[0]['index']).copy(); "
        "print('arithmetic', runner.arithmetic(m, {'name': 'xnnpack'}, y, x))"
    )
    mounts = (
        f"mount --bind {work / 'cpuinfo'} {root / 'proc' / 'cpuinfo'} && "
        f"mount --bind {work / 'sys'} {root / 'sys'} && "
        f'chroot {root} {venv}/bin/python -c "{probe}"'
    )
    out = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", mounts],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "arithmetic float16" in out.stdout, out.stdout + out.stderr[-2000:]
