"""How long `pruneflow report` takes on RUNS runs (issue #9's target: < 10 s on 100; issue
#21's: `report --all` < 20 s on 1,000), where its time goes, and `pruneflow ui` on that store.

Fills a real MLflow sqlite store with one sweep: a parent run and RUNS job runs of 4 models x
RUNS/4 sparsities, each with what a real job logs for the report (params, tags, 5 variants x
every measure, the run-level metrics); the values are synthetic (drawn, not measured), the
store, MLflow and the report code are the real ones; the parent holds the sweep's job list
(sweep_jobs.json), which `report --sweep` reads to find the runs of jobs it resumed. Then
times the command as a user runs it, `python -m pruneflow report --sweep <id>` and `--all`,
ROUNDS times each; medians.

``--phases``: one more report in a fresh process, timed step by step as ``write_report`` runs
them (imports, reading the store, the table, summary and best configuration, report.md, plots,
the CSVs). ``--ui``: ``pruneflow ui`` on the store, timed from its start to its first
``/health`` answer, then the runs page's request (``POST /ajax-api/2.0/mlflow/runs/search``
for the experiment, 100 and RUNS at a time) ROUNDS times each over plain HTTP, and with
``--browser`` one load of the runs page by headless Chromium; the server (its whole process
group) is stopped at the end. ``--store DIR``: fill the store in DIR once and reuse it in later
invocations with the same RUNS (the fill of 1,000 runs takes 30-45 s).

    python bench/report_speed.py [ROUNDS] [RUNS] [--store DIR] [--phases] [--ui [--browser]]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sweeps import clean_env

from helpers.servers import CHROMIUM_FLAGS
from pruneflow import results
from pruneflow.tracking.runs import prepare_store, resolve_uri

VARIANTS = ["keras", "tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]
MODELS = [("digits", "cnn"), ("mnist", "cnn"), ("svhn", "cnn"), ("tf_flowers", "mobilenetv2")]
MARKER = "report_speed_store.json"  # in a --store folder: the runs it holds and its parent


def fill(folder: Path, runs: int = 100) -> str:
    """A store in ``folder/mlruns`` with one sweep of ``runs`` job runs; returns its parent."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    uri = resolve_uri(None, folder / "mlruns")
    experiment_id = prepare_store(uri, "pruneflow", folder / "mlruns")
    client = MlflowClient(tracking_uri=uri)
    parent = client.create_run(
        experiment_id, run_name="sweep-bench", tags={results.SWEEP_TAG: "sweep-bench"}
    ).info.run_id
    rng = random.Random(0)
    now = int(time.time() * 1000)
    per_model = runs // len(MODELS)
    jobs = []  # the parent's job list, as a sweep logs it (the report reads it: resumed jobs)
    for dataset, backbone in MODELS:
        for i in range(per_model):
            sparsity = round(0.25 + 0.74 * i / max(1, per_model - 1), 3)
            key = f"{dataset}{backbone}{i}"
            run_id = client.create_run(
                experiment_id,
                run_name=f"{dataset}-{backbone}-s{sparsity:g}",
                tags={
                    results.PARENT_TAG: parent,
                    results.JOB_KEY_TAG: key,
                    results.DATASET_TAG: dataset,
                    results.BACKBONE_TAG: backbone,
                    "device": "local",
                },
            ).info.run_id
            metrics = {
                results.BASELINE_ACCURACY: 0.97,
                results.SPARSITY: sparsity,
                results.VAL_IMAGES: 540.0,
                "val/loss": rng.uniform(0.05, 0.5),
            }
            for v in VARIANTS:
                for m in results.VARIANT_MEASURES:
                    metrics[results.metric(v, m)] = rng.uniform(0.1, 1.0) * (
                        1e5 if "bytes" in m else 1
                    )
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param("prune.sparsity", str(sparsity))],
                tags=[RunTag(results.kernels_tag(v), "xnnpack") for v in VARIANTS],
            )
            client.set_terminated(run_id, "FINISHED")
            overrides = [f"dataset={dataset}", f"backbone={backbone}", f"prune.sparsity={sparsity}"]
            jobs.append(
                {
                    "num": len(jobs),
                    "overrides": overrides,
                    "key": key,
                    "uri": uri,
                    "experiment": "pruneflow",
                }
            )
    client.log_text(parent, json.dumps(jobs, indent=2), results.JOBS_FILE)
    client.set_terminated(parent, "FINISHED")
    return parent


def store(folder: Path, runs: int) -> str:
    """The sweep's parent in ``folder``: filled now, or the one an earlier invocation with the
    same ``runs`` filled there."""
    marker = folder / MARKER
    if marker.exists():
        made = json.loads(marker.read_text())
        if made["runs"] != runs:
            sys.exit(f"{folder} holds a store of {made['runs']} runs, not {runs}: another --store")
        print(f"reusing the store of {runs} runs in {folder}", flush=True)
        return made["parent"]
    if folder.exists() and any(folder.iterdir()):
        sys.exit(f"{folder} is not empty and holds no store of this benchmark: another --store")
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    parent = fill(folder, runs)
    marker.write_text(json.dumps({"runs": runs, "parent": parent}))
    print(f"filled {runs} runs in {time.perf_counter() - t0:.1f} s", flush=True)
    return parent


def time_reports(folder: Path, parent: str, rounds: int, rows: int) -> dict[str, list[float]]:
    walls: dict[str, list[float]] = {"--sweep": [], "--all": []}
    with tempfile.TemporaryDirectory() as outs:
        for i in range(rounds):
            for which, args in (("--sweep", ["--sweep", parent]), ("--all", ["--all"])):
                out = Path(outs) / f"r{i}{which}"
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "pruneflow", "report", *args, "--out", str(out)],
                    cwd=folder,
                    env=clean_env(),
                    capture_output=True,
                    text=True,
                )
                walls[which].append(time.perf_counter() - t0)
                assert proc.returncode == 0, proc.stderr
                got = sum(1 for _ in open(out / "runs.csv")) - 1
                assert got == rows, got
                print(f"round {i + 1} report {which:<8} {walls[which][-1]:5.1f} s", flush=True)
    return walls


# One `report --all` in a fresh process, timed step by step as write_report runs them.
PHASES = """
import json, sys, tempfile, time
from pathlib import Path
t = [time.perf_counter()]
import mlflow, pandas, matplotlib.pyplot
from pruneflow.study import report as r
from pruneflow.study.report.markdown import markdown
from pruneflow.study.report.plots import plots
from pruneflow.study.report.summary import summary
from pruneflow.study.report.tables import best_sparsity
t.append(time.perf_counter())
selection = r.select(r.tracking.resolve_uri(None, "mlruns"), "pruneflow", all_runs=True)
t.append(time.perf_counter())
table = r.report_table(selection)
t.append(time.perf_counter())
over_seeds = summary(table)
best = best_sparsity(table, r.DEFAULT_TOLERANCE, over_seeds)
t.append(time.perf_counter())
text = markdown(selection, table, best, r.DEFAULT_TOLERANCE, over_seeds)
t.append(time.perf_counter())
out = Path(tempfile.mkdtemp())
plots(table, out, r.DEFAULT_TOLERANCE, over_seeds)
t.append(time.perf_counter())
table.drop(columns=["val_loss"]).to_csv(out / r.RUNS_CSV, index=False)
over_seeds.to_csv(out / r.SUMMARY_CSV, index=False)
(out / r.REPORT_MD).write_text(text)
t.append(time.perf_counter())
names = ["import", "read the store", "runs table", "summary + best", "report.md", "plots",
         "write csv + md"]
print(json.dumps(dict(zip(names, [b - a for a, b in zip(t, t[1:])]))))
"""


def time_phases(folder: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PHASES],
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    phases = json.loads(proc.stdout.strip().splitlines()[-1])
    phases["process start and the rest"] = wall - sum(phases.values())
    for name, seconds in phases.items():
        print(f"  {name:<28} {seconds:6.2f} s", flush=True)
    return phases


def time_ui(folder: Path, rounds: int, runs: int, browser: bool = False) -> dict:
    """``pruneflow ui`` on ``folder``'s store: seconds to the first /health answer, and to
    answer the runs page's search, 100 and ``runs`` at a time; with ``browser``, one load of
    the runs page by headless Chromium (its wall time; the page must name the sweep)."""
    from mlflow.tracking import MlflowClient

    uri = resolve_uri(None, folder / "mlruns")
    experiment = MlflowClient(uri).get_experiment_by_name("pruneflow").experiment_id
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pruneflow", "ui", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the server and its workers
    )
    out: dict = {"health_s": None, "search_s": {}}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=5).read()
                break
            except OSError:
                assert proc.poll() is None, f"pruneflow ui exited with {proc.returncode}"
                assert time.monotonic() < deadline, "no /health answer in 120 s"
                time.sleep(0.1)
        out["health_s"] = time.perf_counter() - t0
        print(f"ui: /health answered {out['health_s']:.1f} s after the start", flush=True)
        for size in (100, runs):
            body = json.dumps(
                {
                    "experiment_ids": [experiment],
                    "max_results": size,
                    "order_by": ["attributes.start_time DESC"],
                    "run_view_type": "ACTIVE_ONLY",
                }
            ).encode()
            walls = []
            for _ in range(rounds):
                request = urllib.request.Request(
                    f"{base}/ajax-api/2.0/mlflow/runs/search",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                t1 = time.perf_counter()
                with urllib.request.urlopen(request, timeout=120) as answer:
                    got = json.loads(answer.read())
                walls.append(time.perf_counter() - t1)
                assert len(got["runs"]) == min(size, runs + 1), len(got["runs"])  # + the parent
            out["search_s"][size] = walls
            print(
                f"ui: runs/search max_results={size}: "
                + ", ".join(f"{w:.2f}" for w in walls)
                + " s",
                flush=True,
            )
        if browser:
            out["browser_s"] = _browser_load(f"{base}/#/experiments/{experiment}/runs")
            print(f"ui: headless Chromium loaded the runs page in {out['browser_s']:.1f} s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    return out


def _browser_load(url: str) -> float:
    """Seconds headless Chromium takes to load ``url`` and dump its DOM."""
    chromium = shutil.which("chromium")
    assert chromium, "no chromium (apt-get install -y chromium)"
    with tempfile.TemporaryDirectory(prefix="chromium") as profile:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=180,
        )
        wall = time.perf_counter() - t0
    assert "sweep-bench" in proc.stdout, proc.stderr[-2000:]
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rounds", nargs="?", type=int, default=3)
    parser.add_argument("runs", nargs="?", type=int, default=100, help="a multiple of 4")
    parser.add_argument("--store", type=Path, help="fill the store here once, reuse it later")
    parser.add_argument("--phases", action="store_true", help="where one report's time goes")
    parser.add_argument("--ui", action="store_true", help="time pruneflow ui on the store")
    parser.add_argument("--browser", action="store_true", help="with --ui: one Chromium load")
    args = parser.parse_args()
    runs = args.runs // len(MODELS) * len(MODELS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.store.resolve() if args.store else Path(tmp)
        parent = store(folder, runs)
        walls = time_reports(folder, parent, args.rounds, runs * len(VARIANTS))
        phases = time_phases(folder) if args.phases else None
        ui = time_ui(folder, args.rounds, runs, args.browser) if args.ui else None
    result = {k: statistics.median(v) for k, v in walls.items()}
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    name = "report_speed.json" if runs == 100 else f"report_speed_{runs}.json"
    raw = {"runs": runs, "median_s": result, "all": walls, "phases_s": phases, "ui": ui}
    (out / name).write_text(json.dumps(raw, indent=2))
    print(
        f"pruneflow report on {runs} runs ({runs * len(VARIANTS)} rows), medians of "
        f"{args.rounds}: {result}"
    )


if __name__ == "__main__":
    main()
