"""End to end, as a user runs it: the ``pruneflow`` console script in a fresh folder, failures,
interrupts (also under the joblib launcher), and what the user sees on the console."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.cli import (
    TINY,
    clean_env,
    outputs_to,
    pruneflow_command,
    read_runs,
    run_cli,
    started_in_one_second,
)
from pruneflow import results

# the default stage (stage=full)
VARIANTS = ["tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]


@pytest.fixture
def sweep(console_sweep):
    """`pruneflow -m prune.sparsity=0.5,0.9`, the session's (conftest.py: test_report.py reads
    the same sweep)."""
    return console_sweep


def test_sweep_logs_one_finished_run_per_sparsity(sweep):
    tmp, _ = sweep
    _, runs = read_runs(tmp)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert [float(r.data.params["prune.sparsity"]) for r in runs] == [0.5, 0.9]
    # the baseline is trained by the first job and reused by the second
    assert [r.data.tags[results.BASELINE_CACHE_TAG] for r in runs] == ["miss", "hit"]
    assert [r.info.run_name for r in runs] == ["digits-cnn-s0.5", "digits-cnn-s0.9"]
    assert len({r.data.tags[results.BASELINE_KEY_TAG] for r in runs}) == 1
    keys = [r.data.tags[results.JOB_KEY_TAG] for r in runs]
    assert len(set(keys)) == 2 and all(len(k) == 16 for k in keys)
    assert (tmp / "multirun" / "0").is_dir() and (tmp / "multirun" / "1").is_dir()


def test_every_metric_param_tag_and_artifact(sweep):
    tmp, _ = sweep
    client, runs = read_runs(tmp)
    for run in runs:
        m, tags, params = run.data.metrics, run.data.tags, run.data.params
        for variant in (results.KERAS, *VARIANTS):
            for measure in (*results.VARIANT_MEASURES, *results.EVIDENCE):
                assert results.metric(variant, measure) in m, (variant, measure)
            low, high = (
                m[results.metric(variant, k)] for k in ("accuracy_ci_low", "accuracy_ci_high")
            )
            assert low <= m[results.metric(variant, results.ACCURACY)] <= high
            assert tags[results.kernels_tag(variant)] in ("xnnpack", "builtin", "tensorflow")
        for variant in VARIANTS:
            for measure in results.TFLITE_MEASURES:
                assert results.metric(variant, measure) in m, (variant, measure)
        for name in (
            results.SPARSITY,
            results.PARAMS_TOTAL,
            results.PARAMS_NONZERO,
            results.BASELINE_ACCURACY,
            results.CHANNELS,
            results.MACS,
            results.BASELINE_MACS,
        ):
            assert name in m
        # no channel pruning by default: the converted model costs what the baseline does
        assert m[results.CHANNELS] == 0 and m[results.MACS] == m[results.BASELINE_MACS] > 0
        for stage in ("data", "train", "prune", "convert", "evaluate", "benchmark"):
            assert m[results.stage_time(stage)] > 0
        assert 0 < m["tflite_int8/size_bytes"] < m["tflite_fp32/size_bytes"]
        assert m["tflite_fp32/gzip_bytes"] < m["tflite_fp32/size_bytes"]
        assert m["keras/latency_std_ms"] >= 0 and m["tflite_fp32/latency_p99_ms"] > 0
        # the whole composed config, flattened
        assert params["train.epochs"] == "1" and params["dataset.image_size"] == "28"
        assert params["stage.variants.3"] == "tflite_int8"
        for tag in ("pruneflow.version", "runtime", "delegate", "host", "device.machine"):
            assert tags[tag]
        assert int(tags[results.PID_TAG]) > 0
        # curves: baseline epochs then fine-tuning epochs, as stepped metrics
        for name in results.CURVES.values():
            steps = [h.step for h in client.get_metric_history(run.info.run_id, name)]
            assert sorted(steps) == [0, 1], name
        top = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert top == {
            results.EVAL_DIR,
            results.BENCHMARK_DIR,
            results.MODELS_DIR,
            results.LAYERS_DIR,
            results.CONFIG_FILE,
            results.LOG_FILE,
        }
        models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
        assert models == {"models/keras.keras", *(f"models/{v}.tflite" for v in VARIANTS)}
        bench = {a.path for a in client.list_artifacts(run.info.run_id, "benchmark")}
        assert bench == {"benchmark/latency.csv", "benchmark/runner.json"}
        table = client.download_artifacts(run.info.run_id, "benchmark/latency.csv", str(tmp))
        rows = list(csv.DictReader(open(table)))
        assert len(rows) == 5 * (1 + len(VARIANTS))  # 5 images x (keras + 4 variants)


def test_measured_sparsity_matches_the_target(sweep):
    tmp, _ = sweep
    _, runs = read_runs(tmp)
    for run in runs:
        target = float(run.data.params["prune.sparsity"])
        assert run.data.metrics["sparsity"] == pytest.approx(target, abs=0.01)
        nonzero, total = run.data.metrics["params_nonzero"], run.data.metrics["params_total"]
        assert nonzero / total == pytest.approx(1 - target, abs=0.02)
    # more zeros compress better
    gz = [r.data.metrics["tflite_fp32/gzip_bytes"] for r in runs]
    assert gz[1] < gz[0]


def test_the_console_shows_pruneflows_own_lines_and_the_log_has_the_rest(sweep):
    tmp, proc = sweep
    console = proc.stdout + proc.stderr
    for chatter in ("cuInit", "fully_quantize", "UserWarning", "absl::InitializeLog"):
        assert chatter not in console, chatter
    assert "baseline" in console and "tflite_int8" in console  # the results table
    log = (tmp / "multirun" / "0" / "pruneflow.log").read_text()
    assert "results" in log and "fully_quantize" in log  # library chatter kept in the job log


def says_its_progress(console: str, trained: bool = True) -> None:
    """A run's console says each epoch of training (when it trained) and fine-tuning, each
    variant converted and timed, and none of MLflow's or alembic's INFO lines (a new store's
    "Creating initial MLflow database tables...")."""
    if trained:
        assert "train epoch 1/1: loss " in console
    assert "fine-tune epoch 1/1: loss " in console
    for variant in VARIANTS:
        assert f"converted {variant} in " in console, variant
    for variant in ["keras", *VARIANTS]:
        assert f"timed {variant} on local: p50 " in console, variant
    for chatter in ("Creating initial MLflow database tables", "INFO mlflow", "INFO alembic"):
        assert chatter not in console, chatter


def test_the_sweeps_console_says_each_epoch_conversion_and_timing(sweep):
    _, proc = sweep
    console = proc.stdout + proc.stderr
    says_its_progress(console)  # job 0 trains the baseline, job 1 finds it in the cache
    assert console.count("train epoch 1/1") == 1 and console.count("fine-tune epoch 1/1") == 2


def test_a_run_failing_midway_is_failed_named_and_keeps_its_artifacts(tmp_path):
    # The device passes its check, but its runner cannot finish in time: training, conversion
    # and evaluation have already run.
    proc = run_cli([*TINY, *outputs_to(tmp_path), "device.timeout_s=0.01"], cwd=tmp_path)
    assert proc.returncode == 1
    assert "device local: run failed: runner timed out after 0.01 s" in proc.stderr
    assert "Traceback" not in proc.stderr
    client, (run,) = read_runs(tmp_path)
    assert run.info.status == "FAILED" and run.info.run_name == "digits-cnn-s0.5"
    assert run.data.tags["pruneflow.error.type"] == "DeviceError"
    assert "timed out" in run.data.tags["pruneflow.error.message"]
    assert "tflite_int8/accuracy" in run.data.metrics
    models = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert "models/tflite_int8.tflite" in models
    log = client.download_artifacts(run.info.run_id, results.LOG_FILE, str(tmp_path))
    text = open(log).read()
    assert "Traceback" in text and "DeviceError" in text  # the whole story, in the run
    # the baseline survived in the cache for the next attempt
    assert list((tmp_path / "cache" / "baselines").glob("*/meta.json"))


def test_a_sparsity_that_leaves_a_layer_no_weight_warns_and_tags(cfg_tiny):
    from omegaconf import OmegaConf

    from pruneflow.pipeline import run
    from pruneflow.tracking.runs import resolve_uri

    cfg_tiny.prune.sparsity = 0.999
    cfg_tiny.prune.distribution = "uniform"  # every layer at 0.999: the smallest one starves
    cfg_tiny.stage.variants = ["tflite_fp32"]
    run(cfg_tiny)
    from mlflow.tracking import MlflowClient

    uri = resolve_uri(None, OmegaConf.select(cfg_tiny, "tracking.dir"))
    client = MlflowClient(tracking_uri=uri)
    (r,) = client.search_runs([client.get_experiment_by_name("pruneflow").experiment_id])
    assert r.info.status == "FINISHED"
    # at 0.999 conv1 (144 weights) keeps 0.14 of a weight; probs (640) keeps 0.64, one
    assert r.data.tags[results.LAYERS_WITHOUT_WEIGHTS_TAG] == "conv1"


def test_a_store_that_cannot_be_written_is_one_line_naming_it(tmp_path):
    store = tmp_path / "mlruns"
    store.mkdir()
    db = store / "mlflow.db"
    db.write_bytes(b"this is not a database")
    proc = run_cli([*TINY, *outputs_to(tmp_path)], cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert str(db) in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "cache").exists()  # nothing trained


def _wait_for(predicate, timeout: float, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    raise AssertionError("timed out")


def _running_run(tmp_path):
    """The RUNNING run, once its job is training (the baseline cache exists)."""
    if not (tmp_path / "cache").exists() or not (tmp_path / "mlruns" / "mlflow.db").exists():
        return None
    try:
        _, runs = read_runs(tmp_path)
    except Exception:  # noqa: BLE001 - the store is being created
        return None
    return next((r for r in runs if r.info.status == "RUNNING"), None)


def _start(args, tmp_path) -> subprocess.Popen:
    return subprocess.Popen(
        [*pruneflow_command(), *args, *TINY, *outputs_to(tmp_path)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_marks_the_run_killed_and_prints_one_line(tmp_path):
    proc = _start([], tmp_path)
    try:
        _wait_for(lambda: _running_run(tmp_path), 120, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.strip() == "pruneflow: interrupted", err
    _, (run,) = read_runs(tmp_path)
    assert run.info.status == "KILLED"


def test_sigterm_in_a_joblib_worker_marks_its_run_killed(tmp_path):
    """Termination handling is installed by the job in whatever process runs it: here a
    joblib (loky) worker, not the process that parsed the command line."""
    proc = _start(
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "prune.sparsity=0.5"], tmp_path
    )
    try:
        run = _wait_for(lambda: _running_run(tmp_path), 180, proc)
        worker = int(run.data.tags[results.PID_TAG])
        assert worker != proc.pid  # the job runs in a worker process
        os.kill(worker, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    _, runs = read_runs(tmp_path)
    assert [r.info.status for r in runs] == ["KILLED"], err
    assert proc.returncode != 0, err


def test_python_dash_m_is_the_same_command(tmp_path):
    proc = run_cli(["--help"], cwd=tmp_path)
    script = run_cli(["--help"], cwd=tmp_path, command=pruneflow_command())
    assert proc.returncode == script.returncode == 0
    assert "dataset: cats_vs_dogs, digits" in proc.stdout and proc.stdout == script.stdout
    assert sys.executable  # the module form runs under this interpreter


def test_a_layer_name_the_model_lacks_is_a_config_error_naming_the_key(tmp_path):
    proc = run_cli([*TINY, *outputs_to(tmp_path), "prune.exclude_layers=[conv9]"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "prune.exclude_layers=['conv9'] is invalid" in proc.stderr and "conv1" in proc.stderr


# slow: one new_folder resolver names runs' and sweeps' folders; test_sweeps.py's two sweeps
# started in one second keep it (a folder and a log each) and its joblib test one baseline
@pytest.mark.slow
def test_two_runs_started_together_get_a_folder_and_a_log_each(tmp_path):
    """Two single runs started in the same second in an empty folder: each writes its models,
    CSVs and log into its own job folder, and each run's pruneflow.log holds its own lines.
    (Each has its own MLflow store: two processes creating one new store race on its schema,
    the first half of issue #15's item 3.)"""
    from mlflow.tracking import MlflowClient

    sparsities = ("0.3", "0.6")
    argvs = [[*TINY, f"prune.sparsity={s}", f"tracking.dir=mlruns{s}"] for s in sparsities]
    cwd, procs = started_in_one_second(argvs, tmp_path, "outputs")
    for proc in procs:
        assert proc.returncode == 0, proc.stderr[-3000:]
        says_its_progress(proc.stdout + proc.stderr, trained=False)  # each made a new store
    # one trained the baseline, the other waited for it (their shared cache's lock)
    assert sum("train epoch 1/1" in p.stdout + p.stderr for p in procs) == 1
    folders = sorted((cwd / "outputs").glob("*/*"))
    assert len(folders) == 2, folders  # not one folder shared
    first, second = folders
    assert second.name == f"{first.name}_2"  # outputs/<date>/<time>, then <time>_2
    assert not (cwd / "multirun").exists()  # a single run makes no sweep folder
    for folder in folders:  # each run wrote its own models and CSVs
        assert (folder / "models" / "tflite_fp32.tflite").is_file()
        assert (folder / "latency.csv").is_file()
    names = {s: f"digits-cnn-s{s}" for s in sparsities}
    for s in sparsities:
        client = MlflowClient(tracking_uri=f"sqlite:///{cwd / f'mlruns{s}' / 'mlflow.db'}")
        (run,) = client.search_runs([client.get_experiment_by_name("pruneflow").experiment_id])
        assert run.info.run_name == names[s] and run.info.status == "FINISHED"
        where = tmp_path / s
        where.mkdir()
        log = Path(client.download_artifacts(run.info.run_id, results.LOG_FILE, str(where)))
        log = log.read_text()
        (other,) = set(names.values()) - {names[s]}
        assert f"{names[s]} ... (job" in log and other not in log, log[-2000:]
