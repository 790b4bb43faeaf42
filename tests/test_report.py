"""`pruneflow report` and `pruneflow ui` on a real store filled by a small real sweep, the best
sparsity rule on constructed runs, and bad input; channels (prune.channels) and clusters
(cluster.clusters) beside sparsity on runs made directly in a store."""

from __future__ import annotations

import math
import shutil
import signal
import socket
import subprocess
import sys
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
    sweep_store,
)
from helpers.machine import system_tool
from helpers.servers import CHROMIUM_FLAGS
from helpers.sshd import free_port
from pruneflow import results
from pruneflow.results import REPORT_MD, RUNS_CSV, SUMMARY_CSV, model_name
from pruneflow.study.report import (
    CHANNEL_PLOTS,
    CLUSTER_PLOTS,
    PLOTS,
    best_sparsity,
    plot_names,
    report_sweep,
    select,
    summary,
    write_report,
)
from pruneflow.study.report.plots_threads import THREAD_PLOTS
from pruneflow.study.report.selection import UNIQUE_WEIGHTS
from pruneflow.study.report.tables import best_line, best_variant, has_clusters


@pytest.fixture
def swept(console_sweep):
    """`pruneflow -m prune.sparsity=0.5,0.9`, the session's (conftest.py: test_e2e.py reads the
    same sweep)."""
    return console_sweep


def test_a_sweep_ends_with_its_report_in_the_parent_run(swept):
    tmp, proc = swept
    client, (parent,) = read_runs(tmp, parents=True)
    folder = tmp / "multirun" / "report"
    assert f"report: {folder / REPORT_MD}" in proc.stdout
    for name in (REPORT_MD, RUNS_CSV, *PLOTS):
        assert (folder / name).stat().st_size > 0, name
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {f"report/{n}" for n in (REPORT_MD, RUNS_CSV, *PLOTS)} <= logged
    assert parent.data.tags[results.BEST_TAG].startswith("digits-cnn: keras ")


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
    assert (  # latency, size, and one over the seeds (a single seed here: no seed column)
        sum(line.startswith("| digits-cnn | 0.9 | tflite_int8 |") for line in md.splitlines()) == 3
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


def test_a_run_pruneflow_did_not_make_is_skipped_and_counted(swept, tmp_path):
    """A run logged by plain MLflow into the experiment (no pruneflow tags, no variants):
    `report --all` and `compare` skip it, say so in one line, and report pruneflow's runs
    (the report's summary table crashed with a TypeError)."""
    tmp, _ = swept
    (tmp_path / "mlruns").mkdir()  # a copy of the sweep's store: the module's stays as it was
    shutil.copy(tmp / "mlruns" / "mlflow.db", tmp_path / "mlruns" / "mlflow.db")
    plain = (
        "import mlflow; mlflow.set_experiment('pruneflow')\n"
        "with mlflow.start_run(): mlflow.log_metric('x', 1)"
    )
    env = {**clean_env(), "MLFLOW_TRACKING_URI": store_uri(tmp_path)}
    made = subprocess.run(
        [sys.executable, "-c", plain], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr[-2000:]
    said = "skipped 1 run that pruneflow did not make"
    proc = run_cli(["report", "--all", "--out", str(tmp_path / "all")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert sum(said in line for line in proc.stdout.splitlines()) == 1, proc.stdout
    assert len(pd.read_csv(tmp_path / "all" / RUNS_CSV)) == 10  # the sweep's 2 runs x 5
    proc = run_cli(["report", "--filter", "metrics.x = 1"], cwd=tmp_path)  # it alone
    assert proc.returncode == 1 and said in proc.stderr and "no runs to report" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


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


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("command", ["report", "compare"])
def test_ctrl_c_is_one_line_and_status_130(tmp_path, command, sent):
    """A real SIGINT (or SIGTERM: before, it killed the command at once) to the console
    script while it waits on a tracking server that accepted the connection and never
    answers (a real listening socket: the test knows the command is inside its work, no
    sleep): one line, exit 130, not a KeyboardInterrupt traceback."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(120)
        uri = f"http://127.0.0.1:{server.getsockname()[1]}"
        proc = subprocess.Popen(
            [*pruneflow_command(), command, "--tracking-uri", uri],
            cwd=tmp_path,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            conn, _ = server.accept()  # it asks the server: now it is inside its work
            with conn:
                proc.send_signal(sent)
                out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip() == "pruneflow: interrupted", err


@pytest.mark.parametrize("command", ["report", "compare"])
def test_an_out_that_cannot_be_made_is_one_line_before_the_store(tmp_path, command):
    """`--out` on a read-only file system (a real read-only tmpfs; we run as root, so a
    mode would not stop us): exit 2, one line naming the path, before the store is read
    (there is none here: reading it would say so and exit 1)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)])
    if mounted.returncode != 0:
        pytest.skip("this machine cannot mount a tmpfs (not root?)")
    try:
        out = ro / "report"
        proc = run_cli([command, "--out", str(out)], cwd=tmp_path, command=pruneflow_command())
    finally:
        subprocess.run(["umount", str(ro)], check=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"pruneflow {command}: error: --out={out} is not a writable")
    assert "Read-only file system" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


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


def test_ui_on_another_host_than_loopback_warns_in_one_line(swept):
    """`--host 0.0.0.0`: MLflow's UI, which has no authentication, open to other machines:
    one warning line before it starts (the real UI, stopped by its process group)."""
    import os
    import signal

    tmp, _ = swept
    port = free_port()
    proc = subprocess.Popen(
        [*pruneflow_command(), "ui", "--host", "0.0.0.0", "--port", str(port)],
        cwd=tmp,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the UI's server and its workers: one group to stop
    )
    try:
        started = proc.stdout.readline()
        warning = proc.stderr.readline()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
    assert started.startswith("MLflow UI for "), started
    assert warning.startswith(
        "pruneflow ui: warning: --host 0.0.0.0 lets other machines reach MLflow's UI, which "
        f"has no authentication: whoever reaches port {port} can read"
    ), warning
    quiet = run_cli(["ui", "--port", "99999"], cwd=tmp)  # loopback: no warning (a bad port)
    assert "warning" not in quiet.stderr


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
                ("t", "keras", 0.7, 0.97, 0.97),  # two runs of one configuration: their mean
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
    assert best[("t", "keras")]["accuracy"] == pytest.approx(0.9725)
    assert best[("t", "keras")]["n_runs"] == 2
    # no paired metrics in these rows: the point rule, said so
    assert {b.get("rule") for b in best.values()} == {"point", None}
    assert (
        best_sparsity(_table([("m", "keras", 0.9, 0.94, 0.96)]), tolerance=2.5)[("m", "keras")][
            "sparsity"
        ]
        == 0.9
    )


CHROMIUM = system_tool("chromium")


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


# -- channels (prune.channels) beside sparsity: runs made directly in a store, no training ------
CHANNEL_VARIANTS = ("keras", "tflite_int8")
BASE_MACS = 5e6


def _log_run(
    client,
    experiment_id,
    parent_id,
    model,
    sparsity,
    channels,
    accuracy,
    threads=1,
    clusters=None,
    extra=None,
):
    """One finished job run as pruneflow logs it (the names of pruneflow.results), and its
    LoggedModels; ``channels`` None: a run made before prune.channels (no param, no MACs);
    ``clusters`` None: a run made before cluster.clusters (no param, no unique weights);
    ``extra``: {metric: value} beside (or instead of) those."""
    from mlflow.entities import Metric, Param

    name = f"{model}-s{sparsity:g}" + (f"-c{channels:g}" if channels else "")
    name += f"-cl{clusters}" if clusters else ""
    tags = {
        results.MODEL_TAG: model,
        results.PARENT_TAG: parent_id,
        results.MADE_BY_TAG: "0.0.test",  # a run pruneflow made (a report skips others)
        results.kernels_tag("tflite_int8"): "xnnpack",
    }
    run = client.create_run(experiment_id, tags=tags, run_name=name)
    params = {"prune.sparsity": str(sparsity), "delegate.threads": str(threads)}
    metrics = {
        results.SPARSITY: sparsity,
        results.BASELINE_ACCURACY: 0.97,
        results.VAL_IMAGES: 360,
        results.PARAMS_TOTAL: 10000 * (1 - (channels or 0)),
    }
    if channels is not None:
        params["prune.channels"] = str(channels)
        metrics |= {
            results.CHANNELS: channels * 0.98,  # measured: a little below the target
            results.MACS: BASE_MACS * (1 - channels) ** 2,
            results.BASELINE_MACS: BASE_MACS,
        }
    if clusters is not None:
        params["cluster.clusters"] = str(clusters)
    thin = (1 - (channels or 0)) ** 2
    # clustered: fewer distinct weights compress better (16 clusters: half the gzip file)
    packed = math.log2(clusters) / 8 if clusters else 1.0
    for i, variant in enumerate(CHANNEL_VARIANTS):
        metrics[results.metric(variant, results.ACCURACY)] = accuracy
        metrics[results.metric(variant, results.SIZE)] = 40000.0 * thin / (i + 1)
        metrics[results.metric(variant, results.GZIP)] = (
            40000.0 * thin * (1 - sparsity) * packed / (i + 1)
        )
        for measure in results.LATENCY:
            metrics[results.metric(variant, measure)] = 0.2 * thin / threads
        if clusters:
            metrics[results.metric(variant, UNIQUE_WEIGHTS)] = clusters
    metrics |= extra or {}
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
    )
    for variant in CHANNEL_VARIANTS:
        logged_as = model_name(model, sparsity, variant, channels or 0.0, clusters or 0)
        logged = client.create_logged_model(
            experiment_id,
            name=logged_as,
            source_run_id=run.info.run_id,
            params={"variant": variant},
        )
        client.finalize_logged_model(logged.model_id, "READY")
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def _store(tmp, runs, sweep: str = "sweep-thin") -> tuple[str, str]:
    """A store at ``tmp``/mlruns (where `pruneflow report` run in ``tmp`` looks) with one
    sweep's parent run and ``runs`` (model, sparsity, channels, accuracy[, threads[, clusters]])
    under it; returns (uri, parent run id)."""
    uri, client, experiment_id, parent = sweep_store(tmp, sweep)
    for model, sparsity, channels, accuracy, *more in runs:
        _log_run(
            client, experiment_id, parent.info.run_id, model, sparsity, channels, accuracy, *more
        )
    client.set_terminated(parent.info.run_id, "FINISHED")
    return uri, parent.info.run_id


CHANNEL_RUNS = [  # baseline accuracy 0.97, the default tolerance 1 point: 0.96 holds
    ("digits-cnn", 0.5, None, 0.970),  # before prune.channels: channels 0, no MACs
    ("digits-cnn", 0.5, None, 0.970, 2),
    ("digits-cnn", 0.5, 0.5, 0.965),  # the same sparsity, half the channels: 1/4 of the MACs
    ("digits-cnn", 0.5, 0.5, 0.965, 2),
    ("digits-cnn", 0.9, 0.0, 0.966),  # the param 0.0 (channel pruning off), MACs logged
    ("digits-cnn", 0.9, 0.5, 0.950),  # fewer MACs still, but does not hold
    ("digits-mlp", 0.25, 0.0, 0.970),  # a model without channel runs: the highest sparsity
    ("digits-mlp", 0.5, 0.0, 0.965),  # that holds (its file larger than digits-cnn's pick)
    ("digits-mlp", 0.9, 0.0, 0.950),
]


@pytest.fixture(scope="module")
def channel_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("channels")
    uri, parent_id = _store(tmp, CHANNEL_RUNS)
    return tmp, uri, parent_id


def _lines(md: str, start: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith(start)]


def test_rows_have_channels_beside_sparsity_and_old_runs_read_as_none_removed(channel_store):
    from pruneflow.study.report.selection import rows

    _, uri, _ = channel_store
    table = rows(select(uri, all_runs=True))
    assert len(table) == len(CHANNEL_RUNS) * len(CHANNEL_VARIANTS)
    for column in ("channels", "measured_channels", "macs", "baseline_macs", "params_total"):
        assert column in table, column
    cnn = table[table["model"] == "digits-cnn"]
    # sorted by model, sparsity, channels, variant, threads
    assert list(cnn["target_sparsity"]) == [0.5] * 8 + [0.9] * 4
    assert list(cnn["channels"]) == [0.0] * 4 + [0.5] * 4 + [0.0, 0.0, 0.5, 0.5]
    assert list(cnn["variant"][:4]) == ["keras", "keras", "tflite_int8", "tflite_int8"]
    assert list(cnn["threads"][2:4]) == ["1", "2"]
    old = cnn[cnn["run_name"] == "digits-cnn-s0.5"]
    assert len(old) == 4 and (old["channels"] == 0.0).all()  # no param: none removed
    assert old["measured_channels"].isna().all() and old["macs"].isna().all()
    thin = cnn[cnn["run_name"] == "digits-cnn-s0.5-c0.5"]
    assert list(thin["measured_channels"]) == pytest.approx([0.49] * 4)
    assert (thin["macs"] == BASE_MACS / 4).all() and (thin["baseline_macs"] == BASE_MACS).all()
    assert (thin["params_total"] == 5000).all()
    assert set(table["model"]) == {"digits-cnn", "digits-mlp"}  # the -c suffix is no model


def test_a_sweeps_runs_are_read_page_after_page(channel_store):
    """A search returns one page of runs (1,000 by default): a sweep of more is read whole."""
    from pruneflow.study.report.selection import all_runs
    from pruneflow.tracking.runs import store_client

    _, uri, parent_id = channel_store
    client = store_client(uri)
    experiment_id = client.get_run(parent_id).info.experiment_id
    where = f"tags.`{results.PARENT_TAG}` = '{parent_id}'"
    paged = [r.info.run_id for r in all_runs(client, experiment_id, where, page=2)]
    assert len(paged) == len(set(paged)) == len(CHANNEL_RUNS)


def test_report_tables_and_plots_keep_channels_apart(channel_store, tmp_path):
    _, uri, _ = channel_store
    table, best = write_report(select(uri, all_runs=True), tmp_path)
    md = (tmp_path / REPORT_MD).read_text()
    # the best configuration: of those within 1 point, the fewest MACs (s0.5/c0.5, 1.25 M);
    # s0.9/c0.5 has fewer still but does not hold; digits-mlp keeps the highest sparsity
    assert (
        "## Best configuration per model (Table 5): the fewest MACs non-inferior to the "
        "baseline within 1 " in md
    )
    for variant in CHANNEL_VARIANTS:
        b = best[("digits-cnn", variant)]
        assert (b["sparsity"], b["channels"], b["accuracy"]) == (0.5, 0.5, 0.965)
        assert best[("digits-mlp", variant)]["sparsity"] == 0.5
        assert best[("digits-mlp", variant)]["channels"] == 0.0
    assert best_line(best) == (
        "digits-cnn: keras 0.5/c0.5, tflite_int8 0.5/c0.5; digits-mlp: keras 0.5, tflite_int8 0.5"
    )
    assert _lines(md, "| digits-cnn | tflite_int8 | 0.9700 | 0.5 | 0.5 | 1.250 | ")
    # Table 8: a channels column beside sparsity and MMACs, one row per run
    assert (
        "| model | sparsity | channels | measured sparsity | measured channels | images | MMACs "
        "| keras | tflite_int8 |" in md
    )
    assert len(_lines(md, "| digits-cnn | 0.5 | 0 | 0.500 | – | 360 | – | 0.9700 |")) == 2
    assert len(_lines(md, "| digits-cnn | 0.5 | 0.5 | 0.500 | 0.490 | 360 | 1.250 | 0.9650 |")) == 2
    assert len(_lines(md, "| digits-cnn | 0.9 | 0 | 0.900 | 0.000 | 360 | 5.000 | 0.9660 |")) == 1
    # latency (a row per run), threads (one for both runs), sizes (a row per run): the two
    # configurations at sparsity 0.5 apart, never one row
    assert len(_lines(md, "| digits-cnn | 0.5 | 0 | tflite_int8 | ")) == 2 + 1 + 2
    assert len(_lines(md, "| digits-cnn | 0.5 | 0.5 | tflite_int8 | ")) == 2 + 1 + 2
    assert _lines(md, "| digits-cnn | 0.5 | 0 | tflite_int8 | 0.200 | 0.100 |")  # threads
    assert _lines(md, "| digits-cnn | 0.5 | 0.5 | tflite_int8 | 0.050 | 0.025 |")
    assert "| model | sparsity | channels | variant | raw | gzip |" in md
    assert _lines(md, "| digits-cnn | 0.5 | 0.5 | keras | 9.8 | 4.9 |")  # KB: a quarter
    # the plots: the four of every study, and against channels
    # runs at 1 and 2 threads: latency against threads too
    assert plot_names(table) == (*PLOTS, *CHANNEL_PLOTS, *THREAD_PLOTS)
    for name in (*PLOTS, *CHANNEL_PLOTS, *THREAD_PLOTS):
        with Image.open(tmp_path / name) as img:
            img.load()
            assert img.size[0] >= 550 and img.size[1] >= 400, (name, img.size)
        assert f"[{name}]({name})" in md
    # no run clustered: no clusters column, no unique weights, no plot against clusters
    assert not has_clusters(table) and (table["clusters"] == 0).all()
    assert "clusters" not in md and "unique weights" not in md
    assert not (tmp_path / CLUSTER_PLOTS[0]).exists()
    csv = pd.read_csv(tmp_path / RUNS_CSV)
    assert list(csv["channels"]) == list(table["channels"])
    # the deploy pick: the smallest gzip file at the best configurations
    pick = best_variant(table, best)
    assert (pick["model"], pick["variant"], pick["target_sparsity"], pick["channels"]) == (
        "digits-cnn",
        "tflite_int8",
        0.5,
        0.5,
    )


def test_a_sweep_with_channels_tags_its_parent_with_sparsity_and_channels(channel_store, tmp_path):
    from mlflow.tracking import MlflowClient

    _, uri, parent_id = channel_store
    line = report_sweep(uri, "pruneflow", parent_id, tmp_path)
    tag = MlflowClient(tracking_uri=uri).get_run(parent_id).data.tags[results.BEST_TAG]
    assert tag == line and tag.startswith("digits-cnn: keras 0.5/c0.5, tflite_int8 0.5/c0.5;")


def test_report_register_picks_the_channel_pruned_logged_model(channel_store, tmp_path):
    tmp, _, _ = channel_store
    proc = run_cli(["report", "--all", "--register", "thin", "--out", str(tmp_path)], cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert (
        "best sparsity/channels (non-inferior within 1 accuracy points): digits-cnn: keras 0.5/c0.5"
        in (proc.stdout)
    )
    assert f"{', '.join(CHANNEL_PLOTS)}" in proc.stdout
    assert "(digits-cnn, sparsity 0.5, channels 0.5, accuracy 0.9650" in proc.stdout
    client, _ = read_runs(tmp)
    (version,) = client.search_model_versions("name = 'thin'")
    model = client.get_logged_model(version.source.removeprefix("models:/"))
    assert model.name == model_name("digits-cnn", 0.5, "tflite_int8", channels=0.5)
    assert model.name == "digits-cnn-s50-c50-tflite_int8"


def test_a_study_without_channel_runs_reports_as_before(tmp_path):
    """Every run before prune.channels, or with it 0: today's tables, wording and plots."""
    _, parent_id = _store(
        tmp_path / "store",
        [("digits-cnn", 0.5, None, 0.97), ("digits-cnn", 0.9, 0.0, 0.965)],
    )
    uri = store_uri(tmp_path / "store")
    out = tmp_path / "report"
    table, best = write_report(select(uri, sweep=parent_id), out)
    assert (table["channels"] == 0.0).all()
    md = (out / REPORT_MD).read_text()
    assert (
        "## Best sparsity per model (Table 5): the highest non-inferior to the baseline within "
        "1 accuracy points\n\n" in md
    )
    assert (
        "| model | variant | baseline accuracy | best sparsity | accuracy there | Δ points "
        "| paired 95% CI, points | runs | rule | unresolved |\n" in md
    )
    # runs without the paired metrics: the point rule, said so
    assert _lines(md, "| digits-cnn | tflite_int8 | 0.9700 | 0.9 | 0.9650 | -0.50 | – | 1 | point")
    assert "- digits-cnn: one image = 0.278 points on 360 images" in md
    assert "channels" not in md and "clusters" not in md
    assert "| model | sparsity | measured | images | MMACs | keras | tflite_int8 |" in md
    assert _lines(md, "| digits-cnn | 0.9 | tflite_int8 | 1 | ")
    assert best_line(best) == "digits-cnn: keras 0.9, tflite_int8 0.9"
    assert plot_names(table) == PLOTS
    assert sorted(p.name for p in out.glob("*.png")) == sorted(PLOTS)


def test_best_configuration_with_channels_on_constructed_rows():
    def table(rows):
        cols = ["model", "variant", "target_sparsity", "channels", "macs", "accuracy"]
        return pd.DataFrame([dict(zip(cols, r, strict=True), baseline_accuracy=0.96) for r in rows])

    best = best_sparsity(
        table(
            [
                ("m", "keras", 0.9, 0.0, 4e6, 0.96),
                ("m", "keras", 0.5, 0.5, 1e6, 0.955),  # the fewest MACs that hold
                ("m", "keras", 0.9, 0.75, 0.25e6, 0.90),  # fewer, but lost
                ("t", "keras", 0.5, 0.5, 1e6, 0.96),  # a tie on MACs: the higher sparsity
                ("t", "keras", 0.8, 0.5, 1e6, 0.955),
                ("u", "keras", 0.5, 0.5, math.nan, 0.96),  # no MACs: after the known ones
                ("u", "keras", 0.2, 0.25, 3e6, 0.96),
                ("x", "keras", 0.5, 0.5, 1e6, 0.90),  # none holds
            ]
        )
    )
    assert (best[("m", "keras")]["sparsity"], best[("m", "keras")]["channels"]) == (0.5, 0.5)
    assert best[("t", "keras")]["sparsity"] == 0.8
    assert (best[("u", "keras")]["sparsity"], best[("u", "keras")]["channels"]) == (0.2, 0.25)
    assert best[("x", "keras")]["why"] == "no (sparsity, channels) within 1 points of the baseline"
    assert best_line(best).startswith("m: keras 0.5/c0.5; t: keras 0.8/c0.5;")
    # the old rule's table (no channels column) still works: the highest sparsity
    assert best_sparsity(_table([("m", "keras", 0.9, 0.955, 0.96)]))[("m", "keras")]["sparsity"]


# -- clusters (cluster.clusters) beside sparsity: runs made directly in a store, no training ----
CLUSTER_RUNS = [  # (model, sparsity, channels, accuracy, threads, clusters); baseline 0.97
    ("digits-cnn", 0.5, None, 0.970),  # before cluster.clusters (and prune.channels): clusters 0
    ("digits-cnn", 0.5, 0.0, 0.968, 1, 16),  # the same sparsity, clustered: another row
    ("digits-cnn", 0.9, 0.0, 0.966, 1, 0),  # the param 0 (clustering off)
    ("digits-cnn", 0.9, 0.0, 0.950, 1, 8),  # the smallest file, but it does not hold
    ("digits-cnn", 0.9, 0.0, 0.964, 1, 16),  # holds, half the gzip file: the pick
    ("digits-cnn", 0.9, 0.0, 0.965, 1, 32),  # holds, more accurate, but a larger file
    ("digits-mlp", 0.5, 0.0, 0.965, 1, 0),  # a model without clustered runs: no clusters label
    ("digits-mlp", 0.9, 0.0, 0.950, 1, 0),
]


@pytest.fixture(scope="module")
def cluster_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clusters")
    uri, parent_id = _store(tmp, CLUSTER_RUNS, sweep="sweep-packed")
    return tmp, uri, parent_id


@pytest.fixture(scope="module")
def cluster_report(cluster_store, tmp_path_factory):
    _, uri, _ = cluster_store
    out = tmp_path_factory.mktemp("cluster-report")
    table, best = write_report(select(uri, all_runs=True), out)
    return out, table, best


def test_rows_have_clusters_and_unique_weights_and_old_runs_read_as_not_clustered(
    cluster_report,
):
    out, table, _ = cluster_report
    assert len(table) == len(CLUSTER_RUNS) * len(CHANNEL_VARIANTS)
    assert has_clusters(table)
    cnn = table[table["model"] == "digits-cnn"]
    # sorted by model, sparsity, channels, clusters, variant
    assert list(cnn["clusters"]) == [0] * 2 + [16] * 2 + [0] * 2 + [8] * 2 + [16] * 2 + [32] * 2
    assert list(cnn["target_sparsity"]) == [0.5] * 4 + [0.9] * 8
    old = cnn[cnn["run_name"] == "digits-cnn-s0.5"]
    assert len(old) == 2 and (old["clusters"] == 0).all()  # no param: not clustered
    assert old[UNIQUE_WEIGHTS].isna().all()
    packed = cnn[cnn["run_name"] == "digits-cnn-s0.9-cl16"]
    assert list(packed[UNIQUE_WEIGHTS]) == [16, 16]
    assert cnn[cnn["run_name"] == "digits-cnn-s0.9"][UNIQUE_WEIGHTS].isna().all()  # off
    assert set(table["model"]) == {"digits-cnn", "digits-mlp"}  # the -cl suffix is no model
    csv = pd.read_csv(out / RUNS_CSV)
    assert list(csv["clusters"]) == list(table["clusters"])
    assert list(csv[UNIQUE_WEIGHTS].fillna(0)) == list(table[UNIQUE_WEIGHTS].fillna(0))
    # summary.csv: runs differing only in clusters are configurations of their own
    summary = pd.read_csv(out / SUMMARY_CSV)
    at = summary[(summary["model"] == "digits-cnn") & (summary["variant"] == "tflite_int8")]
    assert list(zip(at["target_sparsity"], at["clusters"], strict=True)) == [
        (0.5, 0),
        (0.5, 16),
        (0.9, 0),
        (0.9, 8),
        (0.9, 16),
        (0.9, 32),
    ]
    assert (at["n_runs"] == 1).all()


def test_the_best_configuration_prefers_the_smaller_gzip_where_only_clusters_differ(
    cluster_report,
):
    _, table, best = cluster_report
    # 0.9 holds at 0, 16 and 32 clusters (8 does not): the smallest gzip file of those, 16,
    # though 0 and 32 are more accurate; digits-mlp never clustered: sparsity alone
    for variant in CHANNEL_VARIANTS:
        b = best[("digits-cnn", variant)]
        assert (b["sparsity"], b["channels"], b["clusters"], b["accuracy"]) == (
            0.9,
            0.0,
            16,
            0.964,
        )
        assert b["with_clusters"] and not b["with_channels"]
        mlp = best[("digits-mlp", variant)]
        assert (mlp["sparsity"], mlp["clusters"], mlp["with_clusters"]) == (0.5, 0, False)
    assert best[("digits-cnn", "tflite_int8")]["gzip"] == pytest.approx(40000 * 0.1 * 0.5 / 2)
    assert best_line(best) == (
        "digits-cnn: keras 0.9/cl16, tflite_int8 0.9/cl16; digits-mlp: keras 0.5, tflite_int8 0.5"
    )
    # the deploy pick: the smallest gzip file at the best configurations
    pick = best_variant(table, best)
    assert (pick["model"], pick["variant"], pick["target_sparsity"], pick["clusters"]) == (
        "digits-cnn",
        "tflite_int8",
        0.9,
        16,
    )
    assert pick["run_name"] == "digits-cnn-s0.9-cl16"


def test_report_tables_have_a_clusters_column_and_unique_weights(cluster_report):
    out, _, _ = cluster_report
    md = (out / REPORT_MD).read_text()
    assert (
        "## Best configuration per model (Table 5): the highest sparsity non-inferior to the "
        "baseline within 1 accuracy points, then the smallest gzip file\n" in md
    )
    assert "Of the (sparsity, clusters) configurations that hold" in md
    assert (
        "| model | variant | baseline accuracy | best sparsity | clusters | gzip KB "
        "| accuracy there | Δ points |" in md
    )
    assert _lines(md, "| digits-cnn | tflite_int8 | 0.9700 | 0.9 | 16 | 1.0 | 0.9640 | ")
    assert _lines(md, "| digits-mlp | tflite_int8 | 0.9700 | 0.5 | 0 | 9.8 | 0.9650 | ")
    # the table over seeds, Table 8 and latency: a clusters column beside sparsity
    assert "| model | sparsity | clusters | variant | runs | seeds | accuracy |" in md
    assert "| model | sparsity | clusters | measured | images | MMACs | keras | tflite_int8 |" in md
    assert len(_lines(md, "| digits-cnn | 0.5 | 0 | 0.500 | 360 | – | 0.9700 |")) == 1
    assert len(_lines(md, "| digits-cnn | 0.5 | 16 | 0.500 | 360 | 5.000 | 0.9680 |")) == 1
    assert "| model | sparsity | clusters | variant | threads | first |" in md
    # latency, the table over seeds and sizes: one row each for the two runs at 0.5, apart
    for clusters in (0, 16):
        assert len(_lines(md, f"| digits-cnn | 0.5 | {clusters} | tflite_int8 | ")) == 3
    # sizes: the unique weights of a clustered file, `–` for the others
    assert "| model | sparsity | clusters | variant | raw | gzip | unique weights |" in md
    assert _lines(md, "| digits-cnn | 0.9 | 16 | tflite_int8 | 19.5 | 1.0 | 16 |")
    assert _lines(md, "| digits-cnn | 0.9 | 0 | tflite_int8 | 19.5 | 2.0 | – |")
    assert "channels" not in md  # no run removed channels


def test_gzip_vs_clusters_is_plotted_when_a_run_clustered(cluster_report):
    out, table, _ = cluster_report
    assert plot_names(table) == (*PLOTS, *CLUSTER_PLOTS) == (*PLOTS, "gzip_vs_clusters.png")
    md = (out / REPORT_MD).read_text()
    for name in (*PLOTS, *CLUSTER_PLOTS):
        with Image.open(out / name) as img:
            img.load()
            assert img.size[0] >= 550 and img.size[1] >= 400, (name, img.size)
        assert f"[{name}]({name})" in md
    assert sorted(p.name for p in out.glob("*.png")) == sorted((*PLOTS, *CLUSTER_PLOTS))


def test_report_register_picks_the_clustered_logged_model(cluster_store, tmp_path):
    tmp, _, _ = cluster_store
    proc = run_cli(["report", "--all", "--register", "packed", "--out", str(tmp_path)], cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert "digits-cnn: keras 0.9/cl16, tflite_int8 0.9/cl16;" in proc.stdout
    assert "gzip_vs_clusters.png" in proc.stdout
    client, _ = read_runs(tmp)
    (version,) = client.search_model_versions("name = 'packed'")
    model = client.get_logged_model(version.source.removeprefix("models:/"))
    assert model.name == "digits-cnn-s90-cl16-tflite_int8"
    assert client.get_run(version.run_id).info.run_name == "digits-cnn-s0.9-cl16"


def test_a_sweep_with_clusters_tags_its_parent_with_them(cluster_store, tmp_path):
    from mlflow.tracking import MlflowClient

    _, uri, parent_id = cluster_store
    line = report_sweep(uri, "pruneflow", parent_id, tmp_path)
    tag = MlflowClient(tracking_uri=uri).get_run(parent_id).data.tags[results.BEST_TAG]
    assert tag == line and tag.startswith("digits-cnn: keras 0.9/cl16, tflite_int8 0.9/cl16;")


def test_best_configuration_with_channels_and_clusters_on_constructed_rows():
    def table(rows):
        cols = ["model", "variant", "target_sparsity", "channels", "clusters", "macs"]
        cols += [results.GZIP, "accuracy"]
        return pd.DataFrame([dict(zip(cols, r, strict=True), baseline_accuracy=0.96) for r in rows])

    best = best_sparsity(
        table(
            [
                ("m", "keras", 0.5, 0.5, 0, 1e6, 4000, 0.96),
                ("m", "keras", 0.5, 0.5, 16, 1e6, 2000, 0.955),  # the same MACs, a smaller file
                ("m", "keras", 0.5, 0.5, 8, 1e6, 1500, 0.90),  # smaller still, but lost
                ("m", "keras", 0.5, 0.25, 16, 2e6, 1000, 0.96),  # the smallest: more MACs
                ("x", "keras", 0.5, 0.0, 16, 4e6, 1000, 0.90),  # none holds
            ]
        )
    )
    b = best[("m", "keras")]
    assert (b["sparsity"], b["channels"], b["clusters"]) == (0.5, 0.5, 16)
    assert best[("x", "keras")]["why"] == "no (sparsity, clusters) within 1 points of the baseline"
    assert best_line(best) == "m: keras 0.5/c0.5/cl16; x: keras –"


# -- the pick within a budget (--budget): runs made directly in a store, no training -----------
INVOKE, TRAIN_S = results.invoke("p50"), results.stage_time("train")


def _timed(keras_invoke, int8_invoke, int8_accuracy, train_s):
    """A run's metrics beside _log_run's: each variant's invoke p50, tflite_int8's own
    accuracy, its file's stored zeros (<variant>/sparsity) and the training time."""
    return {
        results.metric("keras", INVOKE): keras_invoke,
        results.metric("tflite_int8", INVOKE): int8_invoke,
        results.metric("tflite_int8", results.ACCURACY): int8_accuracy,
        results.metric("tflite_int8", results.FILE_SPARSITY): 0.5,
        TRAIN_S: train_s,
    }


# name: (sparsity, channels, keras accuracy, clusters, metrics); gzip: keras 20000 at 0.5,
# 4000 at 0.9, 500 for e (half the channels, 16 clusters); tflite_int8 half keras's
BUDGET_RUNS = {
    "a": (0.5, None, 0.98, None, _timed(1.5, 0.5, 0.975, 30)),  # the most accurate
    "b": (0.9, None, 0.97, None, _timed(1.2, 0.3, 0.965, 60)),
    "c": (0.9, None, 0.95, None, _timed(1.0, 0.3, 0.95, 100)),  # c and d: the same numbers
    "d": (0.9, None, 0.95, None, _timed(1.0, 0.3, 0.95, 100)),
    "e": (0.9, 0.5, 0.96, 16, _timed(0.9, 0.2, 0.96, 200)),  # the only run with MACs
}


@pytest.fixture(scope="module")
def budget_store(tmp_path_factory):
    """(folder, uri, {name: run id}) of a store with BUDGET_RUNS under one sweep."""
    tmp = tmp_path_factory.mktemp("budget")
    uri, client, experiment_id, parent = sweep_store(tmp, "sweep-budget")
    ids = {
        name: _log_run(
            client,
            experiment_id,
            parent.info.run_id,
            "digits-cnn",
            sparsity,
            channels,
            accuracy,
            clusters=clusters,
            extra=extra,
        )
        for name, (sparsity, channels, accuracy, clusters, extra) in BUDGET_RUNS.items()
    }
    client.set_terminated(parent.info.run_id, "FINISHED")
    return tmp, uri, ids


@pytest.fixture(scope="module")
def budget_runs(budget_store):
    """(table, search_runs, {name: run id}) of every run of the budget store."""
    from pruneflow.study.report.selection import rows

    _, uri, ids = budget_store
    selection = select(uri, all_runs=True)
    return rows(selection), selection.runs, ids


def _within(budget_runs, text):
    from pruneflow.study.report.budget import parse_budget, pick_within

    table, runs, _ = budget_runs
    return pick_within(table, runs, parse_budget(text))


@pytest.mark.parametrize(
    "text, parsed, written",
    [
        (
            "tflite_int8/invoke_p50_ms<=2",
            [("tflite_int8/invoke_p50_ms", "<=", 2.0)],
            "tflite_int8/invoke_p50_ms<=2",
        ),
        (
            " tflite_int8/invoke_p50_ms <= 2 ,tflite_int8/gzip_bytes>=6e4 ",
            [("tflite_int8/invoke_p50_ms", "<=", 2.0), ("tflite_int8/gzip_bytes", ">=", 6e4)],
            "tflite_int8/invoke_p50_ms<=2, tflite_int8/gzip_bytes>=60000",
        ),
        (
            "time/train_s<100, macs>-1.5",
            [("time/train_s", "<", 100.0), ("macs", ">", -1.5)],
            "time/train_s<100, macs>-1.5",
        ),
    ],
)
def test_budget_parses_constraints(text, parsed, written):
    from pruneflow.study.report.budget import parse_budget

    constraints = parse_budget(text)
    assert [(c.metric, c.op, c.bound) for c in constraints] == parsed
    assert ", ".join(map(str, constraints)) == written


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no constraint: the form is METRIC<=NUMBER or METRIC>=NUMBER, comma-separated"),
        ("accuracy=0.9", "'accuracy=0.9' is not a constraint: the form is METRIC<=NUMBER"),
        ("accuracy==0.9", "'accuracy==0.9' is not a constraint"),
        ("accuracy=>0.9", "'accuracy=>0.9' is not a constraint"),
        ("<=2", "'<=2' is not a constraint"),
        ("macs<=two", "'two' in 'macs<=two' is not a number: the form is METRIC<=NUMBER"),
        ("macs<=", "'' in 'macs<=' is not a number"),
        ("macs<=<=2", "'<=2' in 'macs<=<=2' is not a number"),
        ("macs<=nan", "'nan' in 'macs<=nan' is not a number"),
        ("macs<=2 ms", "'2 ms' in 'macs<=2 ms' is not a number"),
        ("macs<=2,,accuracy>=0.9", "an empty constraint between commas"),
    ],
)
def test_budget_that_does_not_parse_says_the_form(text, message):
    from pruneflow.study.report.budget import BadBudget, parse_budget

    with pytest.raises(BadBudget) as raised:
        parse_budget(text)
    assert message in str(raised.value)


def test_budget_with_a_variant_prefix_picks_among_that_variant_only(budget_runs):
    _, _, ids = budget_runs
    pick = _within(budget_runs, "tflite_int8/invoke_p50_ms<=2")
    assert (pick["run_id"], pick["variant"], pick["accuracy"]) == (ids["a"], "tflite_int8", 0.975)
    assert pick["met"] == [(INVOKE, 0.5)]
    # the same bound bare: each variant's own, keras's (1.5 ms) too, more accurate
    pick = _within(budget_runs, f"{INVOKE}<=2")
    assert (pick["run_id"], pick["variant"]) == (ids["a"], "keras")


def test_budget_with_a_bare_measure_reads_each_variants_own(budget_runs):
    _, _, ids = budget_runs
    pick = _within(budget_runs, f"{INVOKE}<=1.3")  # a's keras takes 1.5 ms, its int8 0.5
    assert (pick["run_id"], pick["variant"]) == (ids["a"], "tflite_int8")
    pick = _within(budget_runs, "gzip_bytes <= 5000, accuracy >= 0.9")
    assert (pick["run_id"], pick["variant"]) == (ids["b"], "keras")
    assert pick[results.GZIP] == pytest.approx(4000)
    assert pick["met"] == []  # accuracy and gzip: the line has them already


def test_budget_with_a_run_level_metric_applies_to_every_variant(budget_runs):
    _, _, ids = budget_runs
    pick = _within(budget_runs, "time/train_s<=40")
    assert (pick["run_id"], pick["variant"], pick["met"]) == (ids["a"], "keras", [(TRAIN_S, 30)])
    # sparsity: the run's measured sparsity (keras's too), not the file's tflite_int8/sparsity
    pick = _within(budget_runs, f"{results.SPARSITY}>=0.8")
    assert (pick["run_id"], pick["variant"]) == (ids["b"], "keras")
    assert pick["met"] == [("measured sparsity", 0.9)]
    pick = _within(budget_runs, f"{results.MACS}<=2e6, {results.BASELINE_MACS}>=1")  # only e
    assert (pick["run_id"], pick["variant"]) == (ids["e"], "tflite_int8")  # the smaller file


def test_budget_ties_go_to_the_smaller_gzip_file_then_the_run_id(budget_runs):
    from pruneflow.study.report.budget import pick_line

    _, _, ids = budget_runs
    # c and d: the same accuracy and sizes in both variants; tflite_int8's file is half keras's
    pick = _within(budget_runs, "time/train_s>=100, time/train_s<=150")
    assert (pick["run_id"], pick["variant"]) == (min(ids["c"], ids["d"]), "tflite_int8")
    assert pick_line(pick) == (
        f"digits-cnn tflite_int8 of run {pick['run_id']} (sparsity 0.9, accuracy 0.9500, "
        "time/train_s 100, gzip 2.0 KB)"
    )
    e = _within(budget_runs, "macs<=2e6")  # channels and clusters, nonzero: named
    assert pick_line(e) == (
        f"digits-cnn tflite_int8 of run {ids['e']} (sparsity 0.9, channels 0.5, 16 clusters, "
        "accuracy 0.9600, macs 1.25e+06, gzip 0.2 KB)"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "tflite_int8/invoke_p50_ms<=0.1, accuracy>=0.5",
            "nothing within the budget: no (run, variant) of the 10 meets "
            "tflite_int8/invoke_p50_ms<=0.1 (the closest: 0.2)",
        ),
        (
            "accuracy>=0.99, macs<=1e6",
            "nothing within the budget: no (run, variant) of the 10 meets accuracy>=0.99 (the "
            "closest: 0.98) nor macs<=1000000 (the closest: 1.25e+06)",
        ),
        (
            "accuracy>=0.975, gzip_bytes<=5000",
            "nothing within the budget: each constraint is met by some (run, variant) of the "
            "10, never all together (accuracy>=0.975 by 2, gzip_bytes<=5000 by 8)",
        ),
    ],
)
def test_budget_nothing_meets_says_which_constraint_or_how_many_meet_each(
    budget_runs, text, message
):
    from pruneflow.study.report.budget import BudgetError

    with pytest.raises(BudgetError) as raised:
        _within(budget_runs, text)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "text, nearest",
    [
        ("invoke_p50<=1", "invoke_p50_ms"),
        ("tflite_int8/invoke_p50<=1", "tflite_int8/invoke_p50_ms"),
        ("tflite_int8_qat/accuracy>=0.9", "tflite_int8/accuracy"),  # a variant the runs lack
        ("time/training_s<=1", TRAIN_S),
    ],
)
def test_budget_metric_no_run_logs_names_the_nearest(budget_runs, text, nearest):
    from pruneflow.study.report.budget import BadBudget

    with pytest.raises(BadBudget) as raised:
        _within(budget_runs, text)
    name = text.split("<")[0].split(">")[0]
    assert str(raised.value).startswith(
        f"no selected run logs a metric {name!r}: the nearest are {nearest}"
    ), str(raised.value)


def test_pruneflow_report_budget_prints_and_writes_the_pick(budget_store, tmp_path):
    tmp, _, ids = budget_store
    budget = "tflite_int8/invoke_p50_ms<=2, tflite_int8/gzip_bytes<=60000"
    proc = run_cli(
        ["report", "--all", "--budget", budget, "--out", str(tmp_path)],
        cwd=tmp,
        command=pruneflow_command(),
    )
    assert proc.returncode == 0, proc.stderr
    pick = (
        f"digits-cnn tflite_int8 of run {ids['a']} (sparsity 0.5, accuracy 0.9750, "
        "invoke_p50_ms 0.5, gzip 9.8 KB)"
    )
    assert f"within budget ({budget}): {pick}\n" in proc.stdout
    assert "best sparsity" in proc.stdout  # the rest of the report as ever
    md = (tmp_path / REPORT_MD).read_text()
    assert (
        "## Within the budget\n\nThe most accurate run variant that meets every constraint of "
        f"`{budget}` (ties: the smaller gzip file, then the run id): {pick}.\n" in md
    )


@pytest.mark.parametrize(
    "budget, in_store, status, message",
    [  # a budget that does not parse: refused before any store is read (here there is none)
        ("accuracy=0.9", False, 2, "--budget 'accuracy=0.9': 'accuracy=0.9' is not a constraint"),
        ("invoke_p50<=1", True, 2, "--budget 'invoke_p50<=1': no selected run logs a metric "),
        ("accuracy>=0.99", True, 1, "nothing within the budget: no (run, variant) of the 10 "),
    ],
)
def test_pruneflow_report_bad_budget_is_one_line_and_writes_nothing(
    budget_store, tmp_path, budget, in_store, status, message
):
    tmp, _, _ = budget_store
    out = tmp_path / "report"
    proc = run_cli(
        ["report", "--all", "--budget", budget, "--out", str(out)],
        cwd=tmp if in_store else tmp_path,
    )
    assert proc.returncode == status, proc.stderr
    assert proc.stderr.startswith(f"pruneflow report: error: {message}"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists() and proc.stdout == ""


def test_pruneflow_report_register_with_a_budget_registers_its_pick(budget_store, tmp_path):
    tmp, _, ids = budget_store
    proc = run_cli(
        [
            "report",
            "--all",
            "--budget",
            "time/train_s>=100, time/train_s<=150",
            "--register",
            "digits-budget",
            "--out",
            str(tmp_path),
        ],
        cwd=tmp,
    )
    assert proc.returncode == 0, proc.stderr
    run_id = min(ids["c"], ids["d"])
    assert (
        f"registered digits-budget version 1: tflite_int8 of run {run_id} (digits-cnn, sparsity "
        "0.9, accuracy 0.9500, gzip 2.0 KB)" in proc.stdout
    )
    client, _ = read_runs(tmp)
    (version,) = client.search_model_versions("name = 'digits-budget'")
    assert version.run_id == run_id
    model = client.get_logged_model(version.source.removeprefix("models:/"))
    assert (model.source_run_id, model.params["variant"]) == (run_id, "tflite_int8")
    assert model.name == model_name("digits-cnn", 0.9, "tflite_int8")


def _interleaved_table():
    """Configurations whose runs (seeds) lie apart in the table, a configuration first met
    second in the table but sorting first, a run without accuracy, one without the paired
    metrics, a NaN sparsity, and MACs on some runs only."""
    nan = math.nan
    cols = [
        "model",
        "target_sparsity",
        "variant",
        "threads",
        "seed",
        "accuracy",
        "baseline_accuracy",
        results.latency("p50"),
        "vs_baseline_delta",
        "vs_baseline_ci_low",
        "vs_baseline_ci_high",
        "val_images",
        "macs",
    ]
    rows = [
        ("m", 0.9, "keras", "–", 1, 0.95, 0.96, 2.0, -0.01, -0.03, 0.01, 540.0, 10.0),
        ("m", 0.5, "keras", "–", 1, 0.96, 0.96, 1.0, 0.0, -0.02, 0.02, 540.0, nan),
        ("m", 0.9, "keras", "–", 2, 0.93, 0.95, 3.0, -0.02, -0.04, 0.0, 540.0, 30.0),
        ("m", 0.5, "keras", "–", 2, nan, 0.95, 5.0, nan, nan, nan, 540.0, 20.0),
        ("m", nan, "keras", "–", 1, 0.5, 0.96, 1.0, nan, nan, nan, nan, nan),
        ("m", 0.9, "keras", "–", 3, 0.94, 0.97, 4.0, nan, nan, nan, 540.0, nan),
        ("m", 0.5, "keras", "–", 3, 0.97, 0.97, 1.5, 0.0, -0.01, 0.01, 540.0, 40.0),
    ]
    table = pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])
    table["seed"] = table["seed"].astype("Int64")
    return table


def test_summary_keeps_the_tables_order_and_aggregates_each_configurations_runs():
    """summary.csv's rows and numbers, against pandas's own group means: one row per
    configuration in the order the table first has it, its runs gathered from wherever they lie
    (the report's own summary reads the rows by position, not a frame per configuration)."""
    table = _interleaved_table()
    got = summary(table)
    assert [(s if s == s else "nan") for s in got["target_sparsity"]] == [0.9, 0.5, "nan"]
    assert list(got["n_runs"]) == [3, 2, 1]
    assert list(got["seeds"]) == ["1 2 3", "1 3", "1"]
    ok = table[table["accuracy"].notna()]
    for _, row in got.iloc[:2].iterrows():
        runs = table[table["target_sparsity"] == row["target_sparsity"]]
        mine = ok[ok["target_sparsity"] == row["target_sparsity"]]
        assert row["accuracy_mean"] == mine["accuracy"].mean()
        assert row["baseline_accuracy_mean"] == mine["baseline_accuracy"].mean()
        assert row["latency_p50_mean"] == runs[results.latency("p50")].mean()  # every run's
        assert row["macs"] == runs["macs"].median()
        paired = mine[mine["vs_baseline_ci_low"].notna()]
        assert row["vs_baseline_n"] == len(paired)
        assert row["vs_baseline_delta_mean"] == paired["vs_baseline_delta"].mean()
    # 0.5: two paired runs that agree on the delta: the mean of their own bounds
    assert got.iloc[1]["vs_baseline_ci_low"] == pytest.approx(-0.015, abs=1e-15)
    assert got.iloc[1]["vs_baseline_ci_high"] == pytest.approx(0.015, abs=1e-15)
    # the NaN sparsity is a configuration of its own, without MACs or images
    assert math.isnan(got.iloc[2]["macs"]) and math.isnan(got.iloc[2]["val_images"])
    assert got.iloc[2]["vs_baseline_n"] == 0 and math.isnan(got.iloc[2]["vs_baseline_ci_low"])


def test_best_sparsity_on_a_given_summary_is_the_same_and_leaves_it_as_it_is():
    table = _interleaved_table()
    configs = summary(table)
    before = configs.copy()
    given = best_sparsity(table, 1.0, configs)
    pd.testing.assert_frame_equal(configs, before)  # write_report writes it after
    assert given.keys() == best_sparsity(table, 1.0).keys()
    for key, b in best_sparsity(table, 1.0).items():
        assert given[key].keys() == b.keys()
        for name, value in b.items():
            assert given[key][name] == value or (value != value and given[key][name] != value)
