"""The device runner: self-contained, the paper's protocol, delegates and their fallback."""

import ast
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers.models import prune_quick
from pruneflow.devices.base import RUNNER
from pruneflow.devices.config import LocalDeviceConfig
from pruneflow.devices.local import LocalDevice
from pruneflow.devices.result import MalformedResult, RunnerResult
from pruneflow.devices.runner import read_images
from pruneflow.errors import DeviceError


def _run_script(script, images, out, model, extra=(), **kwargs) -> subprocess.CompletedProcess:
    """`python3 device_runner.py --images IMAGES --out OUT MODEL`, as a device runs it."""
    cmd = [sys.executable, str(script), "--images", str(images), "--out", str(out), *extra]
    cmd.append(str(model))
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def run_local(models, images, out, delegate):
    with LocalDevice(LocalDeviceConfig()) as dev:
        return dev.benchmark(models, images, out, delegate)


DEVICE_STACK = {"numpy", "PIL", "ai_edge_litert", "tflite_runtime"}
KERAS_ONLY = {"tensorflow", "tf_keras"}  # a device with TensorFlow times the Keras model too


def _imports(node) -> set[str]:
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            found |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            found.add(n.module.split(".")[0])
    return found


def test_runner_imports_nothing_beyond_the_device_stack():
    """The standard library and the device stack; TensorFlow only in the Keras path, the file
    shipped beside the runner that it loads for a Keras model alone."""
    from pruneflow.devices.base import KERAS_TIMER

    allowed = set(sys.stdlib_module_names) | DEVICE_STACK
    assert _imports(ast.parse(RUNNER.read_text())) <= allowed
    assert _imports(ast.parse(KERAS_TIMER.read_text())) - allowed == KERAS_ONLY


def test_the_files_beside_the_runner_are_loaded_by_path_and_shipped(tmp_path):
    """The energy pass's file ships beside the runner and runs alone on a device: the standard
    library only; the runner loads each file beside it by path (no import statement names it)
    and every one travels in the SSH bundle."""
    import io
    import tarfile

    from pruneflow.devices.base import BESIDE, SAMPLER
    from pruneflow.devices.bundle import bundle

    assert _imports(ast.parse(SAMPLER.read_text())) <= set(sys.stdlib_module_names)
    runner_imports = _imports(ast.parse(RUNNER.read_text()))
    assert not runner_imports & {f.stem for f in BESIDE}
    with tarfile.open(fileobj=io.BytesIO(bundle([], tmp_path)["bundle.tar"])) as tar:
        shipped = set(tar.getnames())
    assert {f.name for f in BESIDE} <= shipped


def test_images_are_real_files_in_class_folders(tflite_bench, digits):
    _, images = tflite_bench
    classes, items = read_images(str(images))
    assert classes == digits.class_names and len(items) == 12
    for path, label in items:
        assert path.endswith(".png") and f"/{classes[label]}/" in path
    # the manifest-free layout (a user's folder) reads the same labels by folder name
    (images / "manifest.json").rename(images / "manifest.bak")
    try:
        classes2, items2 = read_images(str(images))
        present = sorted({label for _, label in items})
        assert classes2 == [digits.class_names[i] for i in present]
        assert sorted(classes2[lbl] for _, lbl in items2) == sorted(
            classes[lbl] for _, lbl in items
        )
    finally:
        (images / "manifest.bak").rename(images / "manifest.json")


def test_runner_times_every_image_and_predicts_like_the_evaluator(tflite_bench, tmp_path):
    from pruneflow.steps.evaluate import tflite_predict

    paths, images = tflite_bench
    models = [paths["tflite_fp32"], paths["tflite_int8"]]
    doc = run_local(models, images, tmp_path / "r.json", {"name": "xnnpack", "threads": 1})
    assert set(doc.results) == {"tflite_fp32", "tflite_int8"}
    assert doc.device["machine"] and doc.device["cores"] >= 1
    assert doc.device["runtime"] == "ai_edge_litert"
    assert doc.warmup == 0 and doc.repeats == 1
    _, items = read_images(str(images))
    from pruneflow.devices.runner import load_image

    x = np.concatenate([load_image(p, 28, 28, 1) for p, _ in items])
    for variant, r in doc.results.items():
        assert r.kernels == "xnnpack" and r.note == ""
        assert len(r.times_ms) == 12 and all(t > 0 for t in r.times_ms)
        assert r.load_ms > 0 and r.warmup_ms == []
        assert r.labels == [lbl for _, lbl in items]
        assert r.predictions == tflite_predict(paths[variant], x).tolist()
        # the paper's per-image time holds its two parts, image by image
        for total, dec, inv in zip(r.times_ms, r.decode_ms, r.invoke_ms, strict=True):
            assert 0 < dec and 0 < inv and dec + inv <= total
        # each model in its own process: its own peak memory, the threads it really ran
        assert 20_000 < r.peak_rss_kb < 2_000_000
        assert r.threads == 1 and r.threads_used == 1
        assert "load1" in r.hygiene["before"] and "load1" in r.hygiene["after"]


def test_warmup_and_repeats_are_timed_apart(tflite_bench, tmp_path):
    from pruneflow.devices.base import Protocol

    paths, images = tflite_bench
    with LocalDevice(LocalDeviceConfig()) as dev:
        doc = dev.benchmark(
            [paths["tflite_int8"]],
            images,
            tmp_path / "w.json",
            {"name": "xnnpack", "threads": 2},
            Protocol(warmup=3, repeats=2),
        )
    r = doc.results["tflite_int8"]
    assert doc.warmup == 3 and doc.repeats == 2
    assert len(r.warmup_ms) == 3 and len(r.times_ms) == 24 and len(r.invoke_ms) == 24
    assert r.predictions[:12] == r.predictions[12:]  # the same images, pass after pass
    assert r.threads == 2 and r.threads_used == 2  # XNNPACK's pool: one more thread


def test_threads_null_records_the_count_the_runtime_chose(tflite_bench, tmp_path):
    paths, images = tflite_bench
    doc = run_local([paths["tflite_fp32"]], images, tmp_path / "t.json", {"name": "xnnpack"})
    r = doc.results["tflite_fp32"]
    assert r.threads is None and r.threads_used >= 1


def test_bad_protocol_arguments_are_refused_by_the_runner(tflite_bench, tmp_path):
    paths, images = tflite_bench
    for args, key in ((["--warmup", "-1"], "warmup"), (["--repeats", "0"], "repeats")):
        proc = _run_script(RUNNER, images, tmp_path / "x.json", paths["tflite_fp32"], extra=args)
        assert proc.returncode == 2 and f"{key}=" in proc.stderr, proc.stderr


@pytest.mark.needs("debian_python")
def test_the_probe_names_what_a_python_lacks(tmp_path):
    """Debian's own /usr/bin/python3 has neither numpy nor Pillow (shared/STACK.md)."""
    bare = "/usr/bin/python3"
    proc = subprocess.run([bare, str(RUNNER), "--probe"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert set(facts["missing"]) >= {"numpy", "pillow"}
    assert facts["executable"] == bare and facts["python"].startswith("3.")
    assert facts["free_disk_mb"] > 0 and facts["machine"]
    # a run with it fails in the runner too, naming what is missing (not a traceback)
    out = tmp_path / "x.json"
    proc = subprocess.run(
        [bare, str(RUNNER), "--images", str(tmp_path), "--out", str(out), "m.tflite"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 3 and "lacks numpy, pillow" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_delegate_none_runs_builtin_kernels(tflite_bench, tmp_path):
    paths, images = tflite_bench
    doc = run_local([paths["tflite_int8"]], images, tmp_path / "n.json", {"name": "none"})
    assert doc.results["tflite_int8"].kernels == "builtin"


def test_missing_delegate_library_falls_back_and_says_why(tflite_bench, tmp_path):
    paths, images = tflite_bench
    delegate = {
        "name": "external",
        "library": str(tmp_path / "libnothere.so"),
        "fallback": "builtin",
    }
    doc = run_local([paths["tflite_fp32"]], images, tmp_path / "f.json", delegate)
    r = doc.results["tflite_fp32"]
    assert r.kernels == "builtin"
    assert "external failed" in r.note and "libnothere.so" in r.note


def test_without_fallback_a_missing_delegate_is_an_error(tflite_bench, tmp_path):
    paths, images = tflite_bench
    delegate = {"name": "external", "library": str(tmp_path / "libnothere.so"), "fallback": "error"}
    with pytest.raises(DeviceError, match="libnothere.so"):
        run_local([paths["tflite_fp32"]], images, tmp_path / "e.json", delegate)


def test_runner_is_a_plain_script(tflite_bench, tmp_path):
    """What a device runs: `python3 device_runner.py ...`, outside the pruneflow package."""
    paths, images = tflite_bench
    script = tmp_path / "device_runner.py"
    script.write_text(RUNNER.read_text())
    out = tmp_path / "plain.json"
    proc = _run_script(script, images, out, paths["tflite_fp32"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(out.read_text())["results"]["tflite_fp32"]["times_ms"]) == 12


def test_runner_failure_names_the_device(tflite_bench, tmp_path):
    paths, images = tflite_bench
    with pytest.raises(DeviceError, match="device local: run failed: runner exited"):
        run_local([tmp_path / "missing.tflite"], images, tmp_path / "x.json", {"name": "none"})


def test_a_malformed_runner_result_names_the_file_and_the_key(tflite_bench, tmp_path):
    """The host reads the runner's JSON as a typed RunnerResult: a document that is not one (a
    runner of another version, a cut file) is refused naming the file and the first bad key,
    and a device that fetched it names itself and the step."""
    paths, images = tflite_bench
    good = tmp_path / "good.json"
    run_local([paths["tflite_int8"]], images, good, {"name": "none"})
    doc = json.loads(good.read_text())
    bad = tmp_path / "bad.json"
    for change, why in (
        (lambda d: d["results"]["tflite_int8"].pop("invoke_ms"), "invoke_ms is missing"),
        (lambda d: d["results"]["tflite_int8"]["times_ms"].append("x"), "holds 'x', not a num"),
        (lambda d: d["results"]["tflite_int8"]["labels"].pop(), "not passes over the labels"),
    ):
        broken = json.loads(json.dumps(doc))
        change(broken)
        bad.write_text(json.dumps(broken))
        with pytest.raises(MalformedResult, match=rf"{bad} is malformed: results.tflite_int8.*"):
            RunnerResult.read(bad)
        with pytest.raises(MalformedResult, match=why):
            RunnerResult.read(bad)
    bad.write_text(good.read_text()[:50])
    with pytest.raises(MalformedResult, match=rf"the runner's result {bad} cannot be read"):
        RunnerResult.read(bad)
    # a device whose runner writes another document (a stand-in python for a runner of
    # another version: no such runner exists to run)
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\necho \'{"runner_version": 1, "results": {}}\' > "$5"\n')
    python.chmod(0o755)
    with (
        LocalDevice(LocalDeviceConfig(python=str(python))) as dev,
        pytest.raises(DeviceError, match=r"device local: run failed: .* device is missing"),
    ):
        dev.benchmark([paths["tflite_int8"]], images, tmp_path / "old.json", {"name": "none"})


def test_a_library_that_is_not_a_delegate_falls_back_with_the_loader_error(tflite_bench, tmp_path):
    paths, images = tflite_bench
    delegate = {"name": "armnn", "library": "libc.so.6", "fallback": "builtin"}
    doc = run_local([paths["tflite_fp32"]], images, tmp_path / "c.json", delegate)
    r = doc.results["tflite_fp32"]
    assert r.kernels == "builtin"
    assert "armnn failed" in r.note and "tflite_plugin_create_delegate" in r.note


def test_xnnpack_rejecting_a_sparse_int8_model_falls_back_to_builtin(
    trained_model_path, digits, tflite_bench, tmp_path
):
    """shared/STACK.md: XNNPACK fails in allocate_tensors() on int8 models stored in the sparse
    format; the runner must survive it and say which kernels produced the numbers."""
    import tensorflow as tf

    _, images = tflite_bench
    pruned = prune_quick(trained_model_path, digits, sparsity=0.8)
    conv = tf.lite.TFLiteConverter.from_keras_model(pruned.model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    rep = digits.train_sample(16).astype(np.float32)
    conv.representative_dataset = lambda: ([rep[i : i + 1]] for i in range(len(rep)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    model = tmp_path / "sparse_int8.tflite"
    model.write_bytes(conv.convert())
    doc = run_local([model], images, tmp_path / "s.json", {"name": "xnnpack", "threads": 1})
    r = doc.results["sparse_int8"]
    assert r.kernels == "builtin", r
    assert r.note.startswith("xnnpack failed") and len(r.times_ms) == 12
    with pytest.raises(DeviceError, match="run failed"):
        run_local(
            [model],
            images,
            tmp_path / "e.json",
            {"name": "xnnpack", "threads": 1, "fallback": "error"},
        )


def test_a_device_with_tflite_runtime_instead_of_ai_edge_litert(tflite_bench, tmp_path):
    """Older Raspberry Pi images ship tflite_runtime. Simulated here with import shims (this
    machine has no tflite_runtime wheel): ai_edge_litert fails to import, and tflite_runtime
    is served by the real LiteRT interpreter."""
    paths, images = tflite_bench
    shims = tmp_path / "shims"
    (shims / "ai_edge_litert").mkdir(parents=True)
    (shims / "ai_edge_litert" / "__init__.py").write_text(
        "raise ImportError('simulated device without ai_edge_litert')\n"
    )
    (shims / "tflite_runtime").mkdir()
    (shims / "tflite_runtime" / "__init__.py").write_text("__version__ = '2.14.0-shim'\n")
    (shims / "tflite_runtime" / "interpreter.py").write_text(
        "import os, sys\n"
        "shims = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))\n"
        "sys.path.remove(shims)\n"
        "sys.modules.pop('ai_edge_litert', None)\n"
        "from ai_edge_litert.interpreter import Interpreter, OpResolverType, load_delegate\n"
        "sys.path.insert(0, shims)\n"
        "sys.modules.pop('ai_edge_litert', None)\n"
    )
    out = tmp_path / "t.json"
    proc = _run_script(
        RUNNER, images, out, paths["tflite_int8"], env={**os.environ, "PYTHONPATH": str(shims)}
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["device"]["runtime"] == "tflite_runtime"
    assert doc["device"]["runtime_version"] == "2.14.0-shim"
    assert len(doc["results"]["tflite_int8"]["times_ms"]) == 12


def test_device_state_is_read_where_the_device_exposes_it(tmp_path, monkeypatch):
    """A Pi's thermal zone, clock and governor are files; here they are files the test writes at
    the same kind of paths, and the firmware's vcgencmd is a script on PATH (this machine is a VM
    without them). Where a file is missing, the key is absent, never invented."""
    from pruneflow.devices import runner

    monkeypatch.setattr(runner, "THERMAL", str(tmp_path / "absent"))
    monkeypatch.setattr(runner, "CPUFREQ", str(tmp_path / "absent"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert set(runner.hygiene()) <= {"load1"}
    assert runner.cool_down(50, 1)[1].startswith("no ") and runner.temperature_c() is None

    (tmp_path / "temp").write_text("61234\n")
    (tmp_path / "cpufreq").mkdir()
    (tmp_path / "cpufreq" / "scaling_cur_freq").write_text("1500000\n")
    (tmp_path / "cpufreq" / "scaling_governor").write_text("ondemand\n")
    (tmp_path / "bin").mkdir()
    vcgencmd = tmp_path / "bin" / "vcgencmd"
    vcgencmd.write_text("#!/bin/sh\necho throttled=0x50005\n")
    vcgencmd.chmod(0o755)
    monkeypatch.setattr(runner, "THERMAL", str(tmp_path / "temp"))
    monkeypatch.setattr(runner, "CPUFREQ", str(tmp_path / "cpufreq"))
    state = runner.hygiene()
    assert state["temp_c"] == pytest.approx(61.234) and state["freq_mhz"] == 1500.0
    assert state["governor"] == "ondemand" and state["throttled"] == "0x50005"


def test_cooldown_waits_until_the_device_is_cooler(tmp_path, monkeypatch):
    import threading

    from pruneflow.devices import runner

    zone = tmp_path / "temp"
    zone.write_text("70000\n")
    monkeypatch.setattr(runner, "THERMAL", str(zone))
    threading.Timer(1.5, lambda: zone.write_text("45000\n")).start()
    waited, note = runner.cool_down(50, 30)
    assert note == "" and 1.0 <= waited < 30
    zone.write_text("70000\n")
    waited, note = runner.cool_down(50, 1)
    assert note.startswith("still 70.0 C after 1 s")


def test_the_firmware_throttling_state_reaches_the_run_as_tags(tflite_bench, tmp_path, monkeypatch):
    """A stand-in for a Pi's vcgencmd on PATH (this machine has none): the runner reads it
    before and after the model, and the run gets `throttled/<variant>` = before -> after."""
    from pruneflow.steps.benchmark.benchmark import Timing
    from pruneflow.steps.benchmark.record import for_timing

    paths, images = tflite_bench
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vcgencmd").write_text("#!/bin/sh\necho throttled=0x0\n")
    (bin_dir / "vcgencmd").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    doc = run_local([paths["tflite_int8"]], images, tmp_path / "v.json", {"name": "none"})
    r = doc.results["tflite_int8"]
    assert r.hygiene["before"]["throttled"] == r.hygiene["after"]["throttled"] == "0x0"
    timing = Timing(doc.results, doc.device, {}, tmp_path, tmp_path, (0, 1), {"tflite_int8": "pi"})
    rec = for_timing(timing)
    assert rec.tags["throttled/tflite_int8"] == "0x0 -> 0x0"
    assert rec.tags["timed_on/tflite_int8"] == "pi"
    assert rec.metrics["tflite_int8/load1_before"] >= 0
    assert "tflite_int8/temp_before_c" not in rec.metrics or os.path.exists(
        "/sys/class/thermal/thermal_zone0/temp"
    )
