"""`pruneflow report` and `pruneflow ui` on a real store filled by a small real sweep, the best
sparsity rule on constructed runs, and bad input."""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pandas as pd
import pytest
from PIL import Image

from helpers.cli import (
    clean_env,
    pruneflow_command,
    read_runs,
    run_cli,
    store_uri,
    sweep_cli,
)
from helpers.sshd import free_port
from pruneflow import results
from pruneflow.results import model_name
from pruneflow.study.report import BEST_TAG, PLOTS, REPORT_MD, RUNS_CSV, best_sparsity


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    proc = sweep_cli(tmp, "prune.sparsity=0.5,0.9")
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


@pytest.mark.parametrize("out", ["taken.md", "taken.md/report"])
def test_an_out_that_is_a_file_is_one_line_naming_out(swept, tmp_path, out):
    """`--out` an existing file (or a path inside one): refused before the store is read,
    the file untouched."""
    tmp, _ = swept
    (tmp_path / "taken.md").write_text("mine\n")
    proc = run_cli(["report", "--out", str(tmp_path / out)], cwd=tmp, command=pruneflow_command())
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"pruneflow report: error: --out {tmp_path / out} is ")
    assert "valid values are a folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert (tmp_path / "taken.md").read_text() == "mine\n"


def test_no_store_here_is_one_line(tmp_path):
    proc = run_cli(["report"], cwd=tmp_path)
    assert proc.returncode == 1 and "no MLflow store at" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli(["ui"], cwd=tmp_path)
    assert proc.returncode == 1 and "no MLflow store at" in proc.stderr, proc.stderr


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_ui_with_a_port_out_of_range_is_one_line_naming_it(swept, port):
    """In a folder with a real store: refused before MLflow starts (MLflow itself printed an
    OverflowError's traceback and exited 0)."""
    tmp, _ = swept
    proc = run_cli(["ui", "--port", port], cwd=tmp, command=pruneflow_command(), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        f"pruneflow ui: error: --port {port} is invalid: valid values are 1 to 65535\n"
    )
    assert proc.stdout == ""  # not even the "MLflow UI for ..." line


def test_ui_on_a_port_in_use_is_one_line_saying_so(swept):
    tmp, _ = swept
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli(
            ["ui", "--port", str(port)], cwd=tmp, command=pruneflow_command(), timeout=120
        )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(f"pruneflow ui: error: port {port} is in use on 127.0.0.1")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == ""


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


CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = [  # ../shared/STACK.md: what Debian's chromium needs here, headless
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=30000",
    "--window-size=2400,1400",  # wide enough for the Models tab's first metric columns
]


def _dom(url: str) -> str:
    """The page as headless Chromium renders it (the DOM after the UI's scripts ran)."""
    profile = tempfile.mkdtemp(prefix="chromium")
    try:
        proc = subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return proc.stdout


@pytest.mark.needs("chromium")
def test_pruneflow_ui_shows_runs_metrics_models_and_the_report_in_a_browser(swept):
    """`pruneflow ui` in the sweep's folder, read by a real browser: the runs, a run's
    `<variant>/<measure>` metrics, the logged models with their metrics, the report's PNG."""
    tmp, _ = swept
    client, runs = read_runs(tmp)
    _, (parent,) = read_runs(tmp, parents=True)
    experiment = client.get_experiment_by_name("pruneflow").experiment_id
    port = free_port()
    proc = subprocess.Popen(
        [*pruneflow_command(), "ui", "--port", str(port)],
        cwd=tmp,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout.readline().startswith(f"MLflow UI for {store_uri(tmp)} at {base}")
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=5).read()
                break
            except (TimeoutError, OSError):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
        home = f"{base}/#/experiments/{experiment}"
        assert parent.info.run_name in _dom(f"{home}/runs")
        run_page = _dom(f"{home}/runs/{runs[0].info.run_id}")
        for name in ("tflite_int8/accuracy", "tflite_int8/latency_p50_ms", "keras/gzip_bytes"):
            assert name in run_page, name
        models = _dom(f"{home}/models")
        assert model_name("digits-cnn", 0.5, "tflite_int8") in models
        # the models' own metrics are columns (the first ones fit the window)
        assert "accuracy" in models and "size_bytes" in models
        accuracy = runs[0].data.metrics["tflite_int8/accuracy"]
        assert repr(accuracy) in models  # the same value, now a model's column
        report = _dom(f"{home}/runs/{parent.info.run_id}/artifacts/report/accuracy_vs_sparsity.png")
        assert 'alt="report/accuracy_vs_sparsity.png"' in report
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_every_variant_is_a_logged_model_with_its_measures(swept):
    tmp, _ = swept
    client, runs = read_runs(tmp)
    experiment = client.get_experiment_by_name("pruneflow").experiment_id
    models = client.search_logged_models(experiment_ids=[experiment])
    assert len(models) == len(runs) * 5
    for m in models:
        run = next(r for r in runs if r.info.run_id == m.source_run_id)
        variant = m.params["variant"]
        sparsity = float(run.data.params["prune.sparsity"])
        assert m.name == model_name("digits-cnn", sparsity, variant) and "." not in m.name
        assert "READY" in str(m.status)
        assert m.params["kernels"] == run.data.tags[results.kernels_tag(variant)]
        measures = {x.key: x.value for x in m.metrics}
        for measure in results.VARIANT_MEASURES:
            assert measures[measure] == run.data.metrics[results.metric(variant, measure)]
        files = [f.path for f in client.list_logged_model_artifacts(m.model_id)]
        assert files == [("keras.keras" if variant == "keras" else f"{variant}.tflite")]


def test_register_puts_the_reports_pick_in_the_model_registry(swept, tmp_path):
    tmp, _ = swept
    proc = run_cli(["report", "--register", "digits-best", "--out", str(tmp_path)], cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert "registered digits-best version 1:" in proc.stdout
    table = pd.read_csv(tmp_path / RUNS_CSV)
    best = best_sparsity(table)
    # the pick: the smallest gzip file among the variants at their best sparsity
    at_best = pd.concat(
        [
            table[
                (table["model"] == m)
                & (table["variant"] == v)
                & (table["target_sparsity"] == b["sparsity"])
            ]
            for (m, v), b in best.items()
            if not b["why"]
        ]
    )
    pick = at_best.sort_values(results.GZIP).iloc[0]
    client, _ = read_runs(tmp)
    (version,) = client.search_model_versions("name = 'digits-best'")
    assert version.run_id == pick["run_id"]
    model = client.get_logged_model(version.source.removeprefix("models:/"))
    assert model.params["variant"] == pick["variant"]
    assert model.source_run_id == pick["run_id"]
