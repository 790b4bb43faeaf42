"""The float16-arithmetic variant and the device described (issue #29): the variant's file
carries the reduced-precision metadata that asks XNNPACK for FP16 arithmetic, a run says which
arithmetic really ran, and the device's board, CPU features and cores are read (here from
stand-in /proc files of a Pi 5 and a Pi 4: no Pi is at hand), shown by `pruneflow device check`
and tagged on every run timed there; a sweep on a device without FP16 arithmetic warns once."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import clean_env, read_runs, run_cli, sweep_cli
from pruneflow import results
from pruneflow.devices import readiness, runner
from pruneflow.steps.convert.convert import export_models
from pruneflow.steps.train.train import load_model

PI5_FEATURES = (
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc "
    "dcpop asimddp"
)
PI4_FEATURES = "fp asimd evtstrm crc32 cpuid"
PI5_MODEL, PI4_MODEL = "Raspberry Pi 5 Model B Rev 1.0", "Raspberry Pi 4 Model B Rev 1.4"
F16C = "tflite_float16_compute"


def stand_in_pi(root: Path, model: str, features: str, cores: int = 4) -> Path:
    """A Pi's /proc and /sys files under ``root``, as its kernel writes them: cpuinfo with one
    block per core (``Features``) and the board in ``Model``, the device tree's NUL-terminated
    model, the cpufreq governor."""
    block = (
        "processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: {f}\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\n\n"
    )
    cpuinfo = "".join(block.format(n=n, f=features) for n in range(cores))
    cpuinfo += f"Revision\t: d04170\nSerial\t\t: 0123456789abcdef\nModel\t\t: {model}\n"
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "cpuinfo").write_text(cpuinfo)
    (root / "proc" / "device-tree" / "model").write_bytes(model.encode() + b"\x00")
    freq = root / "sys" / "devices" / "system" / "cpu" / "cpu0" / "cpufreq"
    freq.mkdir(parents=True)
    (freq / "scaling_governor").write_text("ondemand\n")
    return root


def _metadata(path: Path) -> dict[str, bytes]:
    """A .tflite file's metadata entries: name -> the bytes of its buffer."""
    from tensorflow.lite.python import schema_py_generated as fb

    model = fb.Model.GetRootAsModel(path.read_bytes(), 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buf = model.Buffers(entry.Buffer())
        entries[entry.Name().decode()] = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
    return entries


def test_the_variant_carries_the_metadata_that_asks_for_fp16_arithmetic(
    tmp_path, trained_model_path, digits
):
    model = load_model(trained_model_path)
    variants = ["tflite_float16", F16C]
    paths = export_models(model, variants, tmp_path, digits.train_sample(8), workers=0)
    # float16 weights and float16 accumulation: what XNNPACK reads as "compute in float16"
    assert _metadata(paths[F16C])["reduced_precision_support"] == b"fp16accfp16"
    # tflite_float16 says float32 accumulation: XNNPACK computes it in float32 everywhere
    assert _metadata(paths["tflite_float16"])["reduced_precision_support"] == b"fp16accfp32"
    # the same float16 weights: the files differ only in that metadata
    size = paths["tflite_float16"].stat().st_size
    assert abs(paths[F16C].stat().st_size - size) <= 16


def test_the_device_is_described_from_its_proc_files(tmp_path, monkeypatch):
    pi5 = stand_in_pi(tmp_path / "pi5", PI5_MODEL, PI5_FEATURES)
    pi4 = stand_in_pi(tmp_path / "pi4", PI4_MODEL, PI4_FEATURES)
    facts = {}
    for name, root in (("pi5", pi5), ("pi4", pi4)):
        monkeypatch.setattr(runner, "CPUINFO", str(root / "proc" / "cpuinfo"))
        monkeypatch.setattr(runner, "BOARD", str(root / "proc" / "device-tree" / "model"))
        facts[name] = runner.device_facts()
    assert facts["pi5"]["board"] == PI5_MODEL  # without its NUL
    assert facts["pi5"]["cpu_features"] == "fphp asimdhp asimddp"  # of the ones that matter
    assert facts["pi4"]["board"] == PI4_MODEL and facts["pi4"]["cpu_features"] == ""
    assert facts["pi5"]["cpu"] == PI5_MODEL  # a Pi names its board in cpuinfo's Model
    assert all(f in facts["pi5"] for f in results.DEVICE_FACTS if f != results.HWCAP_FEATURES)
    assert readiness.fp16_arithmetic(facts["pi5"]) and not readiness.fp16_arithmetic(facts["pi4"])
    # where the kernel's AT_HWCAP was read (arm64), it decides: it is what XNNPACK reads
    qemu = {**facts["pi4"], "hwcap_features": "fphp asimdhp asimddp"}
    assert readiness.fp16_arithmetic(qemu)
    # x86: the file has no device tree, cpuinfo says "flags"
    x86 = tmp_path / "x86" / "proc"
    x86.mkdir(parents=True)
    (x86 / "cpuinfo").write_text("model name\t: Some x86\nflags\t\t: fpu avx2 fma f16c avx512f\n")
    monkeypatch.setattr(runner, "CPUINFO", str(x86 / "cpuinfo"))
    monkeypatch.setattr(runner, "BOARD", str(x86 / "device-tree" / "model"))
    facts = runner.device_facts()
    assert "board" not in facts and facts["cpu_features"] == "avx2 fma f16c avx512f"
    assert not readiness.fp16_arithmetic(facts)
    assert readiness.float16_note("local", facts, []) is None


def test_device_check_shows_the_board_features_cores_and_governor(tmp_path):
    env = {"PRUNEFLOW_DEVICE_ROOT": str(stand_in_pi(tmp_path / "pi5", PI5_MODEL, PI5_FEATURES))}
    proc = run_cli(["device", "check"], cwd=tmp_path, env={**clean_env(), **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"board      {PI5_MODEL}\n" in proc.stdout
    assert "features   fphp asimdhp asimddp (FP16 arithmetic: yes)" in proc.stdout
    assert "governor ondemand" in proc.stdout and " cores)" in proc.stdout


def test_a_sweep_on_a_pi4_warns_once_and_every_run_says_what_ran(tmp_path):
    """Two jobs on a device whose /proc says Pi 4: one warning before any work, and each run
    tagged with the board, the features, the cores and the arithmetic that really ran the
    variant (measured by the runner: float32 on this x86 machine, which has no FP16
    arithmetic); the variant is evaluated and timed like every variant."""
    root = stand_in_pi(tmp_path / "pi4", PI4_MODEL, PI4_FEATURES)
    env = {**clean_env(), "PRUNEFLOW_DEVICE_ROOT": str(root)}
    proc = sweep_cli(
        tmp_path, "delegate.threads=1,2", f"stage.variants=[tflite_fp32,{F16C}]", env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    warning = "device local has no FP16 arithmetic (its CPU features have neither fphp asimdhp"
    said = proc.stdout + proc.stderr  # the job log's warnings go to the console
    assert said.count(warning) == 1, said[-3000:]
    _, runs = read_runs(tmp_path)
    assert len(runs) == 2
    for run in runs:
        tags, m = run.data.tags, run.data.metrics
        assert tags[results.device_tag(results.BOARD)] == PI4_MODEL
        assert tags[results.device_tag(results.CPU_FEATURES)] == ""  # none of those that matter
        assert tags[results.device_tag(results.CORES)].isdigit()
        assert tags[results.GOVERNOR_TAG] == "ondemand"
        assert tags[results.arithmetic_tag(F16C)] == "float32"
        assert results.arithmetic_tag("tflite_fp32") not in tags  # asks for no FP16
        for variant in ("tflite_fp32", F16C):
            assert m[results.metric(variant, results.ACCURACY)] > 0
            assert m[f"{variant}/latency_p50_ms"] > 0


@pytest.mark.parametrize("variants", [["tflite_fp32"], [F16C]])
def test_no_warning_where_it_does_not_apply(tmp_path, variants):
    """A Pi 5 asked for the variant, or a Pi 4 asked for none: nothing to warn of."""
    pi5 = {"machine": "aarch64", "cpu_features": "fphp asimdhp asimddp"}
    pi4 = {"machine": "aarch64", "cpu_features": ""}
    from pruneflow.steps.convert.variants import fp16_asked

    assert readiness.float16_note("rpi5", pi5, fp16_asked(variants)) is None
    note = readiness.float16_note("rpi4", pi4, fp16_asked(variants))
    assert (note is None) == (variants == ["tflite_fp32"])
