"""Sweeps as studies, run as a user runs them (the console script in a fresh folder): one
parent run, resume, a failing job alone and a summary, a killed sweep picked up where it
stopped, parallel launchers (joblib, submitit) with one baseline and exclusive timing, runs left
RUNNING by a dead process, and shared stores (a real ``mlflow server``, PostgreSQL)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
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
    store_uri,
    sweep_cli,
)
from helpers.machine import venv_tool
from pruneflow import results
from pruneflow.tracking import baselines, provenance
from pruneflow.tracking.runs import prepare_store


def _parent_of(run) -> str:
    return run.data.tags.get(results.PARENT_TAG)


def _finished_study(tmp_path, jobs: int):
    """(runs, parent) of a sweep that finished: ``jobs`` FINISHED runs nested under one
    FINISHED parent."""
    _, runs = read_runs(tmp_path)
    _, (parent,) = read_runs(tmp_path, parents=True)
    assert [r.info.status for r in runs] == ["FINISHED"] * jobs
    assert parent.info.status == "FINISHED"
    assert {_parent_of(r) for r in runs} == {parent.info.run_id}
    return runs, parent


def test_a_sweep_nests_its_runs_resumes_and_ends_runs_left_by_dead_processes(tmp_path):
    # a run left RUNNING by a process that is gone (SIGKILL, a crash) on this host
    uri = store_uri(tmp_path)
    experiment_id = prepare_store(uri, "pruneflow", tmp_path / "mlruns")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    dead = subprocess.Popen(["true"])
    dead.wait()
    tags = {results.HOST_TAG: socket.gethostname(), results.PID_TAG: str(dead.pid)}
    stale = client.create_run(experiment_id, tags=tags).info.run_id
    alive = client.create_run(
        experiment_id, tags={**tags, results.PID_TAG: str(os.getpid())}
    ).info.run_id

    first = sweep_cli(tmp_path, "prune.sparsity=0.5,0.8")
    assert first.returncode == 0, first.stderr[-3000:]
    assert client.get_run(stale).info.status == "KILLED"
    assert "gone" in client.get_run(stale).data.tags[results.ERROR_MESSAGE_TAG]
    assert f"run {stale} was left RUNNING" in first.stdout
    assert client.get_run(alive).info.status == "RUNNING"  # its process lives: not touched
    client.set_terminated(alive, "FINISHED")

    _, (parent,) = read_runs(tmp_path, parents=True)
    runs = [r for r in read_runs(tmp_path)[1] if r.info.run_id not in (stale, alive)]
    assert parent.info.status == "FINISHED" and parent.info.run_name.startswith("sweep-")
    assert parent.data.tags[results.SWEEP_JOBS_TAG] == "2"
    assert parent.data.tags[results.SWEEP_DIR_TAG] == str(tmp_path / "multirun")
    assert "prune.sparsity=0.5,0.8" in parent.data.tags[results.SWEEP_OVERRIDES_TAG]
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert {_parent_of(r) for r in runs} == {parent.info.run_id}
    assert [r.data.tags[results.JOB_OVERRIDES_TAG] for r in runs] == [
        "prune.sparsity=0.5",
        "prune.sparsity=0.8",
    ]
    # progress lines, the summary, and where the results are
    out = first.stdout
    assert "[1/2] prune.sparsity=0.5 finished in" in out and "tflite_int8 acc" in out
    assert "[2/2] prune.sparsity=0.8 finished in" in out
    assert f"results: parent run {parent.info.run_id}" in out
    assert f"pruneflow ui --tracking-uri {uri}" in out
    summary = (tmp_path / "multirun" / results.SUMMARY_FILE).read_text()
    assert summary.count("FINISHED") == 3 and "2 finished" in summary  # 2 rows + the total
    logged = client.download_artifacts(parent.info.run_id, results.SUMMARY_FILE, str(tmp_path))
    assert open(logged).read() == summary

    # the same command again: nothing is retrained, re-timed or duplicated
    second = sweep_cli(tmp_path, "prune.sparsity=0.5,0.8")
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("skipped (finished run") == 2
    assert "2 skipped" in second.stdout
    assert len([r for r in read_runs(tmp_path)[1] if r.info.run_id not in (stale, alive)]) == 2
    _, parents = read_runs(tmp_path, parents=True)
    assert [p.info.status for p in parents] == ["FINISHED", "FINISHED"]

    # a run of the same config by other code (its `pruneflow.code` tag rewritten here to
    # stand for an older install) is not reused: run again, named in the new run and the summary
    old, kept = runs
    assert old.data.tags[results.CODE_TAG] == provenance.code_version()
    client.set_tag(old.info.run_id, results.CODE_TAG, "0ldc0de0ldc0")
    upgraded = sweep_cli(tmp_path, "prune.sparsity=0.5,0.8")
    assert upgraded.returncode == 0, upgraded.stderr[-3000:]
    assert upgraded.stdout.count("skipped (finished run") == 1  # the run of this code
    again = [r for r in read_runs(tmp_path)[1] if r.info.run_id not in (stale, alive)][-1]
    assert again.data.params["prune.sparsity"] == "0.5"
    assert again.data.tags[results.REPLACES_TAG].startswith(old.info.run_id)
    assert "code 0ldc0de0ldc0" in again.data.tags[results.REPLACES_TAG]
    summary = (tmp_path / "multirun" / results.SUMMARY_FILE).read_text()
    assert f"job 0 ran again: the finished run {old.info.run_id}" in summary
    assert "1 finished, 1 skipped" in summary and f"(run {kept.info.run_id[:12]})" in summary

    # tracking.resume=false runs it again; a single run has no parent
    third = run_cli(
        ["prune.sparsity=0.5", "tracking.resume=false", *TINY, *outputs_to(tmp_path)],
        cwd=tmp_path,
    )
    assert third.returncode == 0, third.stderr[-3000:]
    newest = read_runs(tmp_path)[1][-1]
    assert newest.info.status == "FINISHED" and results.PARENT_TAG not in newest.data.tags
    assert f"results: run {newest.info.run_id}" in third.stdout


def test_one_failing_job_fails_alone_and_the_summary_says_why(tmp_path):
    proc = sweep_cli(tmp_path, "device.python=null,/nonexistent/python3")
    assert proc.returncode != 0
    _, runs = read_runs(tmp_path)
    _, (parent,) = read_runs(tmp_path, parents=True)
    assert [r.info.status for r in runs] == ["FINISHED", "FAILED"]
    failed = runs[1]
    assert "/nonexistent/python3" in failed.data.tags[results.ERROR_MESSAGE_TAG]
    # refused by the device check, before any work of its own
    assert results.BASELINE_ACCURACY not in failed.data.metrics
    assert parent.info.status == "FAILED"
    summary = (tmp_path / "multirun" / results.SUMMARY_FILE).read_text()
    assert summary in proc.stdout
    row = next(line for line in summary.splitlines() if "FAILED" in line)
    assert "device.python=/nonexistent/python3" in row and "device local: check failed" in row
    assert "1 failed, 1 finished" in proc.stdout


def _wait_for(predicate, timeout: float, proc: subprocess.Popen, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError("timed out")


def _store_ready(tmp_path) -> bool:
    """The sweep has created its store and parent (reading the store before would race with
    the store's creation)."""
    return (tmp_path / "multirun" / "sweep.json").exists()


def _second_job_running(tmp_path):
    if not _store_ready(tmp_path):
        return None
    try:
        _, runs = read_runs(tmp_path)
    except Exception:  # noqa: BLE001 - the store is being created
        return None
    return len(runs) == 2 and runs[1].info.status == "RUNNING"


def _terminatesweep_cli(args: list[str], tmp_path, when) -> str:
    """Start the sweep ``args``, SIGTERM it once ``when(tmp_path)`` holds; its console."""
    log = tmp_path / "console.txt"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*pruneflow_command(), *args], cwd=tmp_path, env=clean_env(), stdout=fh, stderr=fh
        )
        try:
            _wait_for(lambda: when(tmp_path), 180, proc, log)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=90)
        finally:
            proc.kill()
    assert proc.returncode == 130, log.read_text()[-3000:]
    return log.read_text()


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path):
    args = ["-m", "prune.sparsity=0.3,0.5,0.8", *TINY, *outputs_to(tmp_path)]
    _terminatesweep_cli(args, tmp_path, _second_job_running)
    _, runs = read_runs(tmp_path)
    _, (killed,) = read_runs(tmp_path, parents=True)
    assert [r.info.status for r in runs] == ["FINISHED", "KILLED"]
    assert killed.info.status == "KILLED"
    summary = (tmp_path / "multirun" / results.SUMMARY_FILE).read_text()
    assert "KILLED" in summary
    (not_run,) = [line for line in summary.splitlines() if " NOT RUN " in line]  # job 3
    assert not_run.split(" NOT RUN ")[1].split() == ["-", "never", "started"], not_run

    again = run_cli(args, cwd=tmp_path, command=pruneflow_command())
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[1/3] prune.sparsity=0.3 skipped" in again.stdout
    _, runs = read_runs(tmp_path)
    _, (_, resumed) = read_runs(tmp_path, parents=True)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    sparsities = sorted(float(r.data.params["prune.sparsity"]) for r in finished)
    assert sparsities == [0.3, 0.5, 0.8]  # exactly one FINISHED run per config
    assert resumed.info.status == "FINISHED"
    assert [_parent_of(r) for r in finished] == [killed.info.run_id] + [resumed.info.run_id] * 2
    assert "RUNNING" not in {r.info.status for r in runs}


def _any_running(tmp_path):
    if not _store_ready(tmp_path):
        return None
    try:
        _, runs = read_runs(tmp_path)
    except Exception:  # noqa: BLE001 - the store is being created
        return None
    return any(r.info.status == "RUNNING" for r in runs)


def test_sigterm_to_a_joblib_sweep_leaves_no_run_running(tmp_path):
    """The sweep's own process is told to stop while its jobs run in joblib's workers: the
    jobs' runs and the parent end KILLED, and the summary says so."""
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "prune.sparsity=0.3,0.5"]
    console = _terminatesweep_cli([*args, *TINY, *outputs_to(tmp_path)], tmp_path, _any_running)
    _, runs = read_runs(tmp_path)
    _, (parent,) = read_runs(tmp_path, parents=True)
    assert "RUNNING" not in {r.info.status for r in runs} and "KILLED" in {
        r.info.status for r in runs
    }
    assert parent.info.status == "KILLED"
    assert "KILLED" in console and "pruneflow: interrupted" in console


def test_joblib_two_workers_train_one_baseline_and_never_time_at_once(tmp_path):
    proc = sweep_cli(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "prune.sparsity=0.2,0.4,0.6,0.8",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs, _ = _finished_study(tmp_path, 4)
    assert len({r.data.tags[results.PID_TAG] for r in runs}) >= 2  # two worker processes
    assert sorted(r.data.tags[results.BASELINE_CACHE_TAG] for r in runs) == ["hit"] * 3 + ["miss"]
    windows = sorted(
        (float(r.data.tags[results.TIMING_START_TAG]), float(r.data.tags[results.TIMING_END_TAG]))
        for r in runs
    )
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        assert end <= start, windows  # one job times at a time
    assert all(r.data.metrics[results.LOCK_WAIT] >= 0 for r in runs)


# slow: test_two_sweeps_started_together_get_a_folder_each_under_joblib_and_submitit runs a
# submitit_local sweep to FINISHED in make test
@pytest.mark.slow
def test_submitit_local_runs_a_sweep(tmp_path):
    proc = sweep_cli(
        tmp_path,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "prune.sparsity=0.5,0.8",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _finished_study(tmp_path, 2)


def test_the_slurm_launcher_composes_with_the_readmes_options(tmp_path):
    """No cluster here to submit to: the launcher's config as the README sets it."""
    slurm = run_cli(
        [
            "hydra/launcher=submitit_slurm",
            "hydra.launcher.partition=cpu",
            "hydra.launcher.cpus_per_task=4",
            "hydra.launcher.timeout_min=120",
            "hydra.sweep.dir=/shared/pruneflow/multirun/paper_mnist",
            "paths.cache_dir=/shared/pruneflow/cache",
            "+experiment=paper_mnist",
            "--cfg",
            "hydra",
        ],
        cwd=tmp_path,
    )
    assert slurm.returncode == 0, slurm.stderr
    assert "SlurmLauncher" in slurm.stdout and "partition: cpu" in slurm.stdout
    assert "timeout_min: 120" in slurm.stdout


# slow: its parts stay in make test: a sweep through a real server (test_store_faults.py's
# "alone"), a baseline restored from the store (the truncated-baseline test below)
@pytest.mark.slow
def test_a_sweep_through_a_real_mlflow_server_shares_its_baseline(tmp_path):
    """Workers that share only the tracking server: a second machine (another folder, an
    empty cache) reuses the baseline the first one stored."""
    from mlflow.tracking import MlflowClient

    from helpers.servers import MlflowServer

    with MlflowServer(tmp_path / "server") as server:
        env = {**clean_env(), "MLFLOW_TRACKING_URI": server.uri}
        first, second = tmp_path / "machine_a", tmp_path / "machine_b"
        first.mkdir(), second.mkdir()
        proc = sweep_cli(first, "prune.sparsity=0.5,0.8", env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"in {server.uri}" in proc.stdout
        proc = run_cli(["prune.sparsity=0.7", *TINY, *outputs_to(second)], cwd=second, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]

        client = MlflowClient(tracking_uri=server.uri)
        exp = client.get_experiment_by_name("pruneflow")
        runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
        assert [r.info.status for r in runs] == ["FINISHED"] * 4  # parent, 2 jobs, 1 run
        parent, *jobs, other = runs
        assert {_parent_of(r) for r in jobs} == {parent.info.run_id}
        assert [r.data.tags[results.BASELINE_FROM_TAG] for r in (*jobs, other)] == [
            "trained",
            "cache",
            "store",
        ]
        assert other.data.tags[results.BASELINE_CACHE_TAG] == "hit"
        assert not (first / "mlruns").exists() and not (second / "mlruns").exists()
        assert any(server.artifacts.rglob("tflite_int8.tflite"))  # artifacts served


@pytest.mark.needs("postgres")
def test_a_sweep_on_postgresql(tmp_path):
    from helpers.servers import PostgresServer

    with PostgresServer(tmp_path / "pg") as pg:
        proc = sweep_cli(tmp_path, f"tracking.uri={pg.uri}", "prune.sparsity=0.5,0.8")
        assert proc.returncode == 0, proc.stderr[-3000:]
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=pg.uri)
        exp = client.get_experiment_by_name("pruneflow")
        runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
        assert [r.info.status for r in runs] == ["FINISHED"] * 3
        assert {_parent_of(r) for r in runs[1:]} == {runs[0].info.run_id}
        assert any((tmp_path / "mlruns" / "artifacts").rglob("tflite_int8.tflite"))


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_corrupt_cached_baseline_is_retrained_and_replaced(tmp_path, digits, damage, caplog):
    from helpers.models import cnn
    from pruneflow.steps.train.config import TrainConfig
    from pruneflow.steps.train.train import MODEL_FILE, train_baseline

    kwargs = dict(
        config=TrainConfig(epochs=1, batch_size=64),
        seed=0,
        cache_dir=tmp_path,
        key_spec={"test": damage},
    )

    def build():
        return cnn(digits.image_shape, digits.num_classes)

    first = train_baseline(digits, build, **kwargs)
    model = first.model_path
    if damage == "truncate":
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    else:
        model.unlink()
    again = train_baseline(digits, build, **kwargs)
    assert not again.cache_hit and again.source == "trained"
    assert "is corrupt" in caplog.text and str(model.parent) in caplog.text
    third = train_baseline(digits, build, **kwargs)  # replaced: a hit again
    assert third.cache_hit and third.model_path.name == MODEL_FILE


def test_a_truncated_baseline_restored_from_the_store_is_said_retrained_and_replaced(
    tmp_path, digits, caplog
):
    """Machine A stores its baseline; the store's model file is then truncated (a real file
    cut in half); machine B (an empty cache) restores it, finds it corrupt, says so, trains it
    again and stores it in place of the corrupt run, which is marked FAILED; machine C gets
    the good one from the store."""
    from urllib.parse import urlparse

    from mlflow.tracking import MlflowClient

    from helpers.models import cnn
    from pruneflow.results import BASELINE_EXPERIMENT, BASELINE_KEY_TAG, ERROR_MESSAGE_TAG
    from pruneflow.steps.train.config import TrainConfig
    from pruneflow.steps.train.train import MODEL_FILE, train_baseline

    uri = store_uri(tmp_path)
    store = baselines.BaselineStore(uri, tmp_path / "mlruns")
    kwargs = dict(config=TrainConfig(epochs=1, batch_size=64), seed=0, key_spec={"test": "store"})

    def build():
        return cnn(digits.image_shape, digits.num_classes, filters=[4], dense_units=8)

    first = train_baseline(digits, build, cache_dir=tmp_path / "a", store=store, **kwargs)
    stored = store.find(first.key)
    client = MlflowClient(tracking_uri=uri)
    artifacts = Path(urlparse(client.get_run(stored).info.artifact_uri).path)
    model = artifacts / "baseline" / MODEL_FILE
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])

    caplog.clear()
    caplog.set_level(logging.INFO, logger="pruneflow")
    again = train_baseline(digits, build, cache_dir=tmp_path / "b", store=store, **kwargs)
    assert (again.source, again.cache_hit) == ("trained", False)
    said = caplog.text
    assert f"restored from the tracking store (run {stored}) is corrupt" in said, said
    assert "training it again" in said and "cache entry" not in said
    replaced = store.find(first.key)
    assert replaced not in (None, stored)
    assert f"(run {replaced}) in place of the corrupt run {stored}, now marked FAILED" in said
    old = client.get_run(stored)
    assert old.info.status == "FAILED"
    assert f"replaced by run {replaced}" in old.data.tags[ERROR_MESSAGE_TAG]
    exp = client.get_experiment_by_name(BASELINE_EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], f"tags.`{BASELINE_KEY_TAG}` = '{first.key}'")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]

    third = train_baseline(digits, build, cache_dir=tmp_path / "c", store=store, **kwargs)
    assert (third.source, third.cache_hit, third.accuracy) == ("store", True, again.accuracy)

    # a corrupt local entry with a whole copy in the store: restored from it, not retrained
    local = third.model_path
    local.write_bytes(local.read_bytes()[:100])
    caplog.clear()
    fourth = train_baseline(digits, build, cache_dir=tmp_path / "c", store=store, **kwargs)
    assert (fourth.source, fourth.cache_hit) == ("store", True)
    assert f"baseline cache entry {local.parent} is corrupt" in caplog.text
    assert "removed; looking in the tracking store" in caplog.text
    assert "training it again" not in caplog.text


def test_a_baseline_in_the_cache_goes_into_a_new_store_after_mlruns_is_deleted(tmp_path):
    """`pruneflow`, `rm -rf mlruns`, `pruneflow`: the second run finds its baseline in the
    local cache and stores it in the new store, whole, for other machines sharing it."""
    from pruneflow.steps.train.train import read_entry

    args = ["prune.sparsity=0.5", *TINY, *outputs_to(tmp_path)]
    proc = run_cli(args, cwd=tmp_path, command=pruneflow_command())
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.rmtree(tmp_path / "mlruns")
    proc = run_cli(args, cwd=tmp_path, command=pruneflow_command())
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, (run,) = read_runs(tmp_path)
    assert run.data.tags[results.BASELINE_FROM_TAG] == "cache"
    key = run.data.tags[results.BASELINE_KEY_TAG]
    assert (
        f"baseline {key} was not in the tracking store: stored there" in proc.stdout + proc.stderr
    )
    store = baselines.BaselineStore(store_uri(tmp_path), tmp_path / "mlruns")
    assert store.find(key) is not None
    fetched = tmp_path / "elsewhere"
    fetched.mkdir()
    store.fetch(key, fetched)
    assert read_entry(fetched / "baseline")["accuracy"] == pytest.approx(
        run.data.metrics[results.BASELINE_ACCURACY]
    )


@pytest.mark.slow
@pytest.mark.needs("ray")
def test_the_ray_launcher_runs_a_sweep_on_a_local_ray_head(tmp_path):
    """Hydra's Ray launcher (`pip install -e .[ray]`) against a Ray head started here on
    127.0.0.1, as a cluster's head would be (`ray start --head`)."""
    import shutil
    import tempfile

    from helpers.sshd import free_port

    ray = venv_tool("ray")  # beside this Python: make's venv need not be on PATH
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit 107 bytes
    head = [ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1"]
    head += ["--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run([*head, f"--temp-dir={temp}"], check=True, capture_output=True, timeout=120)
    try:
        proc = sweep_cli(
            tmp_path,
            "hydra/launcher=ray",
            f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
            "+hydra.launcher.ray.init.object_store_memory=null",  # set by the cluster
            "prune.sparsity=0.5,0.8",
        )
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _finished_study(tmp_path, 2)


def _study(tmp_path, sparsities: str):
    """`pruneflow --config-dir my_conf -m +experiment=study`: a user's preset that sweeps
    ``prune.sparsity`` by `hydra.sweeper.params` (how a preset sweeps)."""
    conf = tmp_path / "my_conf" / "experiment"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "study.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n"
        f"      prune.sparsity: {sparsities}\n"
    )
    args = ["--config-dir", str(tmp_path / "my_conf"), "-m", "+experiment=study"]
    return run_cli([*args, *TINY, *outputs_to(tmp_path)], cwd=tmp_path)


# slow: its parts stay in make test: the jobs listed from the sweeper's params (the check below
# reads that one list), the parent's job count and labels (the worker-without-the-folder test)
@pytest.mark.slow
def test_a_sweep_from_the_sweepers_params_is_listed_and_summarized(tmp_path):
    """`hydra.sweeper.params` (how a preset sweeps) counts like command-line sweeps: every job
    nested, and in the summary."""
    proc = _study(tmp_path, "0.5,0.8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, runs = read_runs(tmp_path)
    _, (parent,) = read_runs(tmp_path, parents=True)
    assert parent.data.tags[results.SWEEP_JOBS_TAG] == "2" and parent.info.status == "FINISHED"
    assert [r.data.tags[results.JOB_OVERRIDES_TAG] for r in runs] == [
        "prune.sparsity=0.5",
        "prune.sparsity=0.8",
    ]
    assert "[2/2] prune.sparsity=0.8 finished" in proc.stdout and "2 finished" in proc.stdout


def test_a_bad_value_in_the_sweepers_params_is_caught_before_any_job(tmp_path):
    """Every job a preset's `hydra.sweeper.params` makes is checked ahead, like one on the
    command line."""
    proc = _study(tmp_path, "0.5,1.5")
    assert proc.returncode == 2 and "prune.sparsity=1.5" in proc.stderr, proc.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "cache").exists()


def test_a_worker_without_the_sweep_folder_finds_its_parent_in_the_store(tmp_path):
    """On a cluster whose workers do not mount the sweep folder, `sweep.json` is missing: the
    job finds its sweep's RUNNING parent by the folder's tag."""
    from mlflow.tracking import MlflowClient

    from pruneflow.study.jobs import job_context

    uri = store_uri(tmp_path)
    experiment_id = prepare_store(uri, "pruneflow", tmp_path / "mlruns")
    client = MlflowClient(tracking_uri=uri)
    folder = "multirun/2026-11-26/12-00-00"
    tags = {results.SWEEP_DIR_TAG: folder, results.SWEEP_JOBS_TAG: "3"}
    parent = client.create_run(experiment_id, tags=tags).info.run_id
    job = job_context(folder, 1, ["prune.sparsity=0.5"], uri, "pruneflow")
    assert (job.parent_run_id, job.total, job.label) == (parent, 3, "[2/3] prune.sparsity=0.5")
    client.set_terminated(parent, "FINISHED")  # an ended sweep is nobody's parent
    assert job_context(folder, 1, [], uri, "pruneflow").parent_run_id is None


def test_two_sweeps_started_together_get_a_folder_each_under_joblib_and_submitit(tmp_path):
    """Two sweeps started in the same second in an empty folder, one under the joblib launcher
    and one under submitit's: each its own folder, its own sweep.json, and its job, run in a
    worker process that receives the config, finds both in the folder its sweep made. (Each
    has its own MLflow store: two processes creating one new store race on its schema.)"""
    from mlflow.tracking import MlflowClient

    launchers = {
        "0.3": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        "0.6": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
    }
    argvs = [
        ["-m", *launcher, f"prune.sparsity={s}", f"tracking.dir=mlruns{s}", *TINY]
        for s, launcher in launchers.items()
    ]
    cwd, procs = started_in_one_second(argvs, tmp_path, "multirun")
    for proc in procs:
        assert proc.returncode == 0, proc.stderr[-3000:]
    folders = sorted((cwd / "multirun").glob("*/*"))
    assert len(folders) == 2, folders  # not one folder shared
    assert folders[1].name == f"{folders[0].name}_2"  # multirun/<date>/<time>, then <time>_2
    assert not (cwd / "outputs").exists()  # a sweep makes no single run's folder
    found = {}
    for folder in folders:
        (parent,) = json.loads((folder / "sweep.json").read_text())["parents"]
        client = MlflowClient(tracking_uri=parent["uri"])
        (run,) = client.search_runs(
            [parent["experiment_id"]],
            filter_string=f"tags.`{results.PARENT_TAG}` = '{parent['run_id']}'",
        )
        assert run.info.status == "FINISHED"
        sparsity = run.data.params["prune.sparsity"]
        assert parent["uri"].endswith(f"/mlruns{sparsity}/mlflow.db")  # its own sweep's job
        assert client.get_run(parent["run_id"]).data.tags[results.SWEEP_DIR_TAG] == str(
            folder.relative_to(cwd)
        )
        log = (folder / "0" / results.LOG_FILE).read_text()
        assert f"[1/1] prune.sparsity={sparsity} " in log and run.info.run_name in log
        found[sparsity] = log
    assert sorted(found) == sorted(launchers)
    assert "s0.6" not in found["0.3"] and "s0.3" not in found["0.6"]


def test_two_sweeps_of_the_same_jobs_started_together_share_the_work(tmp_path):
    """Two sweeps of the same two jobs started in the same second in one folder (one store,
    one cache): each job is trained once in all (the other sweep waits for its run, then
    skips it), both exit 0, and the parents have distinct names, each its folder's."""
    from mlflow.tracking import MlflowClient

    argv = ["-m", "prune.sparsity=0.3,0.6", *TINY, "tracking.dir=mlruns", "paths.cache_dir=cache"]
    cwd, procs = started_in_one_second([argv, argv], tmp_path, "multirun")
    for proc in procs:
        assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=store_uri(cwd))
    experiment_id = client.get_experiment_by_name("pruneflow").experiment_id
    runs = client.search_runs([experiment_id], max_results=100)
    jobs = [r for r in runs if results.SWEEP_TAG not in r.data.tags]
    finished = sorted(r.data.params["prune.sparsity"] for r in jobs if r.info.status == "FINISHED")
    assert finished == ["0.3", "0.6"], [(r.info.run_name, r.info.status) for r in jobs]
    assert len(jobs) == 2  # a run withdrawn beside an older one is deleted, not left behind
    parents = [r for r in runs if results.SWEEP_TAG in r.data.tags]
    assert [p.info.status for p in parents] == ["FINISHED", "FINISHED"]
    names = {p.data.tags[results.SWEEP_TAG] for p in parents}
    folders = sorted((cwd / "multirun").glob("*/*"))
    assert names == {f"sweep-{f.parent.name}-{f.name}" for f in folders}, (names, folders)
    assert len(names) == 2
    said = "".join(p.stdout + p.stderr for p in procs)
    assert "of this config is running in process" in said  # the one that waited said so
    assert said.count(" SKIPPED ") >= 2  # its summary: both jobs skipped
    assert said.count("/report/report.md") == 2  # and both reported their sweep


def test_a_run_of_another_host_is_waited_on_until_it_is_too_old(tmp_path):
    """A RUNNING run of the same job key and code made on another machine (a shared store):
    this host cannot see its process, so it is waited on while it is younger than
    claims.OTHER_HOST_WAIT_S, then no longer (a machine that died leaves it RUNNING)."""
    from mlflow.tracking import MlflowClient

    from pruneflow.tracking import claims

    uri = store_uri(tmp_path)
    experiment_id = prepare_store(uri, "pruneflow", tmp_path / "mlruns")
    client = MlflowClient(tracking_uri=uri)
    tags = {
        results.JOB_KEY_TAG: "k1",
        results.CODE_TAG: "c1",
        results.HOST_TAG: "another-machine",
        results.PID_TAG: "1",
    }
    now_ms = int(time.time() * 1000)
    old = client.create_run(
        experiment_id, tags=tags, start_time=now_ms - int(claims.OTHER_HOST_WAIT_S * 1000) - 1
    )
    assert claims.first_ahead(client, experiment_id, "k1", "c1") is None  # too old
    young = client.create_run(experiment_id, tags=tags, start_time=now_ms)
    ahead = claims.first_ahead(client, experiment_id, "k1", "c1")
    assert ahead is not None and ahead.info.run_id == young.info.run_id
    assert claims.first_ahead(client, experiment_id, "k1", "other code") is None
    for run in (old, young):
        client.set_terminated(run.info.run_id, "KILLED")


def _claim_runs(tmp_path, monkeypatch):
    """A store with a younger run of job k1 (another host's, so this one takes it as worked on)
    and an older one whose creation waited on the store: its start time 5 s before the younger
    one's, its arrival in the store after it (a busy sqlite file)."""
    from mlflow.tracking import MlflowClient

    from pruneflow.tracking import claims

    monkeypatch.setattr(claims, "SETTLE_S", 0.2)
    monkeypatch.setattr(claims, "POLL_S", 0.1)
    uri = store_uri(tmp_path)
    experiment_id = prepare_store(uri, "pruneflow", tmp_path / "mlruns")
    client = MlflowClient(tracking_uri=uri)
    tags = {results.JOB_KEY_TAG: "k1", results.CODE_TAG: "c1", results.PID_TAG: "1"}
    now_ms = int(time.time() * 1000)
    young = client.create_run(
        experiment_id, tags={**tags, results.HOST_TAG: "another-machine"}, start_time=now_ms - 3000
    )
    older = client.create_run(
        experiment_id, tags={**tags, results.HOST_TAG: "this"}, start_time=now_ms - 8000
    )
    claim = claims.Claim(client, experiment_id, "k1", "c1", older.info.run_id)
    return client, claims, claim, young.info.run_id, older.info.run_id


def test_an_older_run_the_store_took_late_yields_to_a_younger_one_that_claimed(
    tmp_path, monkeypatch
):
    """What CI met once (two sweeps of the same jobs, each job trained twice): the younger run
    passed its second look before the older one was in the store, so it goes on (claimed); the
    older one yields to it, whatever their start times."""
    client, claims, claim, young, older = _claim_runs(tmp_path, monkeypatch)
    client.set_tag(young, results.CLAIMED_TAG, "true")
    with pytest.raises(claims.Behind) as behind:
        claim.first()
    assert behind.value.ahead.info.run_id == young


@pytest.mark.parametrize("younger", ["claims", "withdraws"])
def test_an_older_run_the_store_took_late_waits_until_the_younger_one_decides(
    tmp_path, monkeypatch, younger, caplog
):
    """The younger run (not claimed yet) may not have seen the older one: the older waits at its
    second look until the younger claims (the older yields) or withdraws (the older claims)."""
    import threading

    client, claims, claim, young, older = _claim_runs(tmp_path, monkeypatch)
    claim.first()  # older by start time: it goes on, as far as this look can tell

    def decide():
        time.sleep(1.0)
        if younger == "claims":
            client.set_tag(young, results.CLAIMED_TAG, "true")
        else:
            client.set_terminated(young, "FAILED")

    started = time.monotonic()
    threading.Thread(target=decide).start()
    caplog.set_level(logging.INFO, logger=claims.__name__)
    if younger == "claims":
        with pytest.raises(claims.Behind):
            claim.settled()
        assert results.CLAIMED_TAG not in client.get_run(older).data.tags
    else:
        claim.settled()
        assert client.get_run(older).data.tags[results.CLAIMED_TAG] == "true"
    assert time.monotonic() - started >= 1.0  # it waited for the younger run's decision
    assert f"run {young} of this config started after this one" in caplog.text


def test_a_younger_run_started_with_it_is_not_waited_for(tmp_path, monkeypatch, caplog):
    """A younger run whose start is within SETTLE_S of the older one's arrival in the store
    surely saw it at its second look (and withdraws): the older one claims at once. (2 s: the
    younger's creation and the older's first look, under load, stay well within it; a run
    taken as undecided would be waited for forever here, as nothing decides it.)"""
    from mlflow.tracking import MlflowClient

    from pruneflow.tracking import claims

    monkeypatch.setattr(claims, "SETTLE_S", 2.0)
    uri = store_uri(tmp_path)
    experiment_id = prepare_store(uri, "pruneflow", tmp_path / "mlruns")
    client = MlflowClient(tracking_uri=uri)
    tags = {results.JOB_KEY_TAG: "k1", results.CODE_TAG: "c1", results.PID_TAG: "1"}
    older = client.create_run(experiment_id, tags={**tags, results.HOST_TAG: "this"})
    client.create_run(experiment_id, tags={**tags, results.HOST_TAG: "another-machine"})
    claim = claims.Claim(client, experiment_id, "k1", "c1", older.info.run_id)
    claim.first()
    monkeypatch.setattr(claims, "POLL_S", 0.1)
    with caplog.at_level(logging.INFO, logger=claims.__name__):
        waits = threading.Thread(target=claim.settled, daemon=True)  # a failure, not a hang
        waits.start()
        waits.join(60)
    assert not waits.is_alive() and "may not have seen it" not in caplog.text  # no wait
    assert client.get_run(older.info.run_id).data.tags[results.CLAIMED_TAG] == "true"
