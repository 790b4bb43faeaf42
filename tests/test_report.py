"""`pruneflow report` and `pruneflow ui` on a real store filled by a small real sweep, the best
sparsity rule on constructed runs, and bad input."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
from PIL import Image

from helpers.cli import (
    TINY,
    clean_env,
    outputs_to,
    pruneflow_command,
    read_runs,
    run_cli,
    store_uri,
)
from helpers.sshd import free_port
from pruneflow import results
from pruneflow.report import BEST_TAG, PLOTS, REPORT_MD, RUNS_CSV, best_sparsity


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    proc = run_cli(
        ["-m", "prune.sparsity=0.5,0.9", *TINY, *outputs_to(tmp)],
        cwd=tmp,
        command=pruneflow_command(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc


def test_a_sweep_ends_with_its_report_in_the_parent_run(swept):
    tmp, proc = swept
    client, (parent,) = read_runs(tmp, parents=True)
    folder = tmp / "multirun" / "report"
    assert f"report: {folder / REPORT_MD}" in proc.stdout
    for name in (REPORT_MD, RUNS_CSV, *PLOTS):
        assert (folder / name).stat().st_size > 0, name
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {f"report/{n}" for n in (REPORT_MD, RUNS_CSV, *PLOTS)} <= logged
    assert parent.data.tags[BEST_TAG].startswith("digits-cnn: keras ")


def test_runs_csv_holds_the_runs_metrics(swept, tmp_path):
    tmp, _ = swept
    proc = run_cli(["report", "--out", str(tmp_path)], cwd=tmp, command=pruneflow_command())
    assert proc.returncode == 0, proc.stderr
    assert "best sparsity" in proc.stdout
    table = pd.read_csv(tmp_path / RUNS_CSV)
    _, runs = read_runs(tmp)
    variants = ["keras", "tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]
    assert len(table) == len(runs) * len(variants)
    for run in runs:
        mine = table[table["run_id"] == run.info.run_id]
        assert sorted(mine["variant"]) == sorted(variants)
        for _, row in mine.iterrows():
            for measure in results.VARIANT_MEASURES:
                expected = run.data.metrics[results.metric(row["variant"], measure)]
                assert row[measure] == pytest.approx(expected, rel=1e-12), measure
            assert row["target_sparsity"] == float(run.data.params["prune.sparsity"])
            assert row["measured_sparsity"] == pytest.approx(run.data.metrics["sparsity"])
            assert row["kernels"] == run.data.tags[results.kernels_tag(row["variant"])]
            assert row["val_images"] == run.data.metrics[results.VAL_IMAGES] > 0
    md = (tmp_path / REPORT_MD).read_text()
    for table_name in ("Table 5", "Table 8", "Tables 6, 7 and 9", "Sizes"):
        assert table_name in md
    # one accuracy row per run, one latency and one size row per run and variant
    assert sum(line.startswith("| digits-cnn | 0.5 | 0.500 |") for line in md.splitlines()) == 1
    assert (
        sum(line.startswith("| digits-cnn | 0.9 | tflite_int8 |") for line in md.splitlines()) == 2
    )
    for name, width in zip(PLOTS, (550, 550, 550, 1200), strict=True):
        with Image.open(tmp_path / name) as img:
            img.load()
            assert img.size[0] == width and img.size[1] >= 400, (name, img.size)


def test_all_filter_and_a_named_sweep_select_runs(swept, tmp_path):
    tmp, _ = swept
    _, (parent,) = read_runs(tmp, parents=True)
    for args, rows in (
        (["--sweep", parent.info.run_id], 10),
        (["--all"], 10),
        (["--filter", "params.`prune.sparsity` = '0.9'"], 5),
    ):
        out = tmp_path / str(rows) / args[0]
        proc = run_cli(["report", *args, "--out", str(out)], cwd=tmp)
        assert proc.returncode == 0, proc.stderr
        assert len(pd.read_csv(out / RUNS_CSV)) == rows, args


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sweep", "0123456789abcdef"], "no run '0123456789abcdef'"),
        (["--experiment", "nope"], "no experiment 'nope'"),
        (["--filter", "this is not a filter"], "is not an MLflow filter"),
        (["--tolerance", "-1"], "--tolerance=-1.0 is invalid"),
    ],
)
def test_bad_input_is_one_line(swept, args, message):
    tmp, _ = swept
    proc = run_cli(["report", *args], cwd=tmp)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_store_here_is_one_line(tmp_path):
    proc = run_cli(["report"], cwd=tmp_path)
    assert proc.returncode == 1 and "no MLflow store at" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli(["ui"], cwd=tmp_path)
    assert proc.returncode == 1 and "no MLflow store at" in proc.stderr, proc.stderr


def _table(rows):
    cols = ["model", "variant", "target_sparsity", "accuracy", "baseline_accuracy"]
    return pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])


def test_best_sparsity_is_the_highest_within_tolerance():
    best = best_sparsity(
        _table(
            [
                ("m", "keras", 0.5, 0.95, 0.96),
                ("m", "keras", 0.8, 0.951, 0.96),  # exactly at the edge of 1 point
                ("m", "keras", 0.9, 0.94, 0.96),
                ("m", "int8", 0.5, 0.90, 0.96),  # none within
                ("n", "keras", 0.5, 0.90, math.nan),  # no baseline
                ("t", "keras", 0.7, 0.97, 0.97),  # a tie at the same sparsity: the better one
                ("t", "keras", 0.7, 0.975, 0.97),
            ]
        )
    )
    assert best[("m", "keras")]["sparsity"] == 0.8
    assert (
        math.isnan(best[("m", "int8")]["sparsity"])
        and "no sparsity within" in best[("m", "int8")]["why"]
    )
    assert best[("n", "keras")]["why"] == "no baseline accuracy"
    assert best[("t", "keras")]["accuracy"] == 0.975
    assert (
        best_sparsity(_table([("m", "keras", 0.9, 0.94, 0.96)]), tolerance=2.5)[("m", "keras")][
            "sparsity"
        ]
        == 0.9
    )


def test_pruneflow_ui_serves_this_folders_store(swept):
    tmp, _ = swept
    port = free_port()
    proc = subprocess.Popen(
        [*pruneflow_command(), "ui", "--port", str(port)],
        cwd=tmp,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith(
            f"MLflow UI for {store_uri(tmp)} at http://127.0.0.1:{port}"
        )
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=pruneflow"
        deadline = time.monotonic() + 90
        while True:
            try:
                body = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except (TimeoutError, OSError):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
        assert '"name": "pruneflow"' in body or '"name":"pruneflow"' in body
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert sys.executable
