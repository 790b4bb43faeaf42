"""End to end, as a user runs it: `python -m pruneflow -m prune.sparsity=...` in a fresh folder."""

from __future__ import annotations

import csv
import json

import pytest
from mlflow.tracking import MlflowClient

from conftest import TINY, outputs_to, run_cli
from pruneflow.stats import MEASURES

# the default stage (stage=full)
VARIANTS = ["tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]
MEASURE_NAMES = [
    "accuracy",
    "size_bytes",
    "gzip_bytes",
    "load_ms",
    *(f"latency_{m}_ms" for m in MEASURES),
]


def _runs(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("pruneflow")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    return client, runs


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    proc = run_cli(["-m", "prune.sparsity=0.5,0.8", *TINY, *outputs_to(tmp)], cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp, proc


def test_sweep_logs_one_finished_run_per_sparsity(sweep):
    tmp, _ = sweep
    client, runs = _runs(tmp)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert [float(r.data.params["prune.sparsity"]) for r in runs] == [0.5, 0.8]
    # the baseline is trained by the first job and reused by the second
    assert [r.data.tags["baseline_cache"] for r in runs] == ["miss", "hit"]
    assert [r.info.run_name for r in runs] == ["digits-cnn-s0.5", "digits-cnn-s0.8"]
    assert len({r.data.tags["baseline_key"] for r in runs}) == 1
    assert (tmp / "multirun" / "0").is_dir() and (tmp / "multirun" / "1").is_dir()


def test_every_metric_param_tag_and_artifact(sweep):
    tmp, _ = sweep
    client, runs = _runs(tmp)
    for run in runs:
        m, tags, params = run.data.metrics, run.data.tags, run.data.params
        for variant in ("keras", *VARIANTS):
            for measure in MEASURE_NAMES:
                assert f"{variant}/{measure}" in m, f"{variant}/{measure}"
            assert tags[f"kernels/{variant}"] in ("xnnpack", "builtin", "tensorflow")
        for name in ("sparsity", "params_total", "params_nonzero", "baseline/accuracy"):
            assert name in m
        assert 0 < m["tflite_int8/size_bytes"] < m["tflite_fp32/size_bytes"]
        assert m["tflite_fp32/gzip_bytes"] < m["tflite_fp32/size_bytes"]
        assert m["keras/latency_std_ms"] >= 0 and m["tflite_fp32/latency_p99_ms"] > 0
        # the whole composed config, flattened
        assert params["train.epochs"] == "1" and params["dataset.image_size"] == "28"
        assert params["stage.variants.3"] == "tflite_int8"
        for tag in ("pruneflow.version", "runtime", "delegate", "host", "device.machine"):
            assert tags[tag]
        # curves: baseline epochs then fine-tuning epochs, as stepped metrics
        for name in ("train/loss", "train/accuracy", "val/loss", "val/accuracy"):
            steps = [h.step for h in client.get_metric_history(run.info.run_id, name)]
            assert sorted(steps) == [0, 1], name
        top = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert top == {"benchmark", "models", "prune", "config.yaml"}
        models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
        assert models == {"models/keras.keras", *(f"models/{v}.tflite" for v in VARIANTS)}
        bench = {a.path for a in client.list_artifacts(run.info.run_id, "benchmark")}
        assert bench == {"benchmark/latency.csv", "benchmark/runner.json"}
        table = client.download_artifacts(run.info.run_id, "benchmark/latency.csv", str(tmp))
        rows = list(csv.DictReader(open(table)))
        assert len(rows) == 5 * (1 + len(VARIANTS))  # 5 images x (keras + 4 variants)


def test_measured_sparsity_matches_the_target(sweep):
    tmp, _ = sweep
    _, runs = _runs(tmp)
    for run in runs:
        target = float(run.data.params["prune.sparsity"])
        assert run.data.metrics["sparsity"] == pytest.approx(target, abs=0.01)
        nonzero, total = run.data.metrics["params_nonzero"], run.data.metrics["params_total"]
        assert nonzero / total == pytest.approx(1 - target, abs=0.02)
    # more zeros compress better
    gz = [r.data.metrics["tflite_fp32/gzip_bytes"] for r in runs]
    assert gz[1] < gz[0]


def test_a_run_failing_midway_is_failed_and_keeps_its_artifacts(tmp_path):
    # The device runner cannot start: training, conversion and evaluation have already run.
    proc = run_cli(
        [*TINY, *outputs_to(tmp_path), "device.python=/nonexistent/python3"], cwd=tmp_path
    )
    assert proc.returncode != 0
    assert "device local: run failed" in proc.stderr and "/nonexistent/python3" in proc.stderr
    client, (run,) = _runs(tmp_path)
    assert run.info.status == "FAILED"
    assert "tflite_int8/accuracy" in run.data.metrics
    models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert "models/tflite_int8.tflite" in models
    # the baseline survived in the cache for the next attempt
    assert json.loads(next((tmp_path / "cache" / "baselines").glob("*/meta.json")).read_text())


def test_a_terminated_run_is_marked_killed_not_left_running(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pruneflow", *TINY, *outputs_to(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (tmp_path / "cache").exists():
            time.sleep(0.1)  # the run exists once training has started
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    _, (run,) = _runs(tmp_path)
    assert run.info.status == "KILLED"
