"""The threads study (`pruneflow -m +experiment=threads`) and energy per image in the report, on
one real tiny sweep through the console script on device=local.

The energy measurement itself (device.energy: the samples, the arithmetic, the runner's pass)
is tested elsewhere (its own tests); here known energy values are logged into the sweep's real
runs with MlflowClient, as the energy pass logs them (the names of pruneflow.results), and the
tests check the report's reading of them: runs.csv, summary.csv, report.md, the plot."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest
from PIL import Image

from helpers.cli import pruneflow_command, read_runs, run_cli, sweep_cli
from pruneflow import results
from pruneflow.results import REPORT_MD, RUNS_CSV, SUMMARY_CSV
from pruneflow.stats import t_interval
from pruneflow.study.report import PLOTS, summary
from pruneflow.study.report.plots_energy import ENERGY_PLOTS
from pruneflow.study.report.plots_threads import THREAD_PLOTS

COUNTS = ("1", "2", "4")  # the preset's thread counts
THREADS_HEAD = "## Threads (delegate.threads): latency and energy against threads"
ENERGY_HEAD = "## Energy per image, mJ (device.energy)"
ENERGY_COLUMNS = {*results.ENERGY_MEASURES, "energy_source", "energy_note"}


@pytest.fixture(scope="module")
def threads_sweep(tmp_path_factory):
    """(folder, console) of `pruneflow -m +experiment=threads` (the preset as it ships: 1, 2
    and 4 threads, three jobs, about a minute) with the tiny budget on this machine."""
    tmp = tmp_path_factory.mktemp("threads")
    proc = sweep_cli(tmp, "+experiment=threads")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp, proc


def _lines(md: str, start: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith(start)]


def _tables_well_formed(md: str) -> None:
    """Every markdown table of ``md`` has as many cells in each row as in its head."""
    width = None
    for line in md.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        cells = line.count("|") - 1
        width = cells if width is None else width
        assert cells == width, line


def _report(cwd, out) -> str:
    """`pruneflow report --out OUT` in ``cwd`` (the latest sweep of its store); report.md."""
    proc = run_cli(["report", "--out", str(out)], cwd=cwd, command=pruneflow_command())
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (out / REPORT_MD).read_text()
    _tables_well_formed(md)
    return md


def _copy(threads_sweep, tmp_path):
    """The sweep's store copied to ``tmp_path``/mlruns (its artifacts stay where they are, read
    only), so what a test logs into its runs leaves the sweep's own as they are; (client,
    job runs oldest first)."""
    shutil.copytree(threads_sweep[0] / "mlruns", tmp_path / "mlruns")
    return read_runs(tmp_path)


def _tflite(runs) -> list[str]:
    """The .tflite variants the runs logged an accuracy of."""
    found = {k.split("/")[0] for r in runs for k in r.data.metrics if k.endswith("/accuracy")}
    return sorted(v for v in found if v.startswith("tflite_"))


def test_the_threads_preset_reports_latency_against_threads_and_no_energy(threads_sweep):
    """The sweep's own report: a threads section whose cells are each configuration's p50 at 1,
    2 and 4 threads (one run each: its p50, no interval), a row per .tflite variant; and, as
    no run measured energy, no energy column, section or plot anywhere."""
    tmp, proc = threads_sweep
    folder = tmp / "multirun" / "report"
    _, runs = read_runs(tmp)
    assert sorted(r.data.params["delegate.threads"] for r in runs) == list(COUNTS)
    assert "3 finished" in proc.stdout
    md = (folder / REPORT_MD).read_text()
    _tables_well_formed(md)
    assert THREADS_HEAD in md
    section = md[md.index(THREADS_HEAD) :].split("\n## ")[0]
    assert "| model | sparsity | variant | 1 | 2 | 4 |" in section
    assert "Energy per image" not in section
    table = pd.read_csv(folder / RUNS_CSV)
    variants = _tflite(runs)
    assert variants and "keras" not in section
    for variant in variants:
        rows = table[table["variant"] == variant].set_index("threads")
        sparsity = float(rows["target_sparsity"].iloc[0])
        p50 = " | ".join(f"{rows.loc[t, results.latency('p50')]:.3f}" for t in COUNTS)
        assert f"| digits-cnn | {sparsity:g} | {variant} | {p50} |" in section
    # no energy: not a column of runs.csv or summary.csv, no section, no plot
    assert not ENERGY_COLUMNS & set(table.columns)
    assert not {c for c in pd.read_csv(folder / SUMMARY_CSV) if c.startswith("energy")}
    assert ENERGY_HEAD not in md and "energy mJ" not in md
    assert not (folder / ENERGY_PLOTS[0]).exists() and ENERGY_PLOTS[0] not in md
    assert {p.name for p in folder.glob("*.png")} == {*PLOTS, *THREAD_PLOTS}
    assert f"[{THREAD_PLOTS[0]}]({THREAD_PLOTS[0]})" in md


# Known energy of each .tflite variant at each thread count: (energy mJ, interval low, high,
# above idle mJ, power W, idle power W); the window and samples alike for all
def _known(threads: int, n: int) -> tuple[float, ...]:
    energy = 2.0 / threads + 0.125 * n
    return (energy, energy - 0.0625, energy + 0.0625, energy / 2, 3.5 + threads / 4, 2.75)


def _log_energy(client, run, variants) -> None:
    """What the energy pass logs into a run: each .tflite variant's energy measures and the
    source tag (the Keras model has none)."""
    from mlflow.entities import Metric

    threads = int(run.data.params["delegate.threads"])
    metrics = []
    for n, variant in enumerate(variants):
        energy, low, high, above, power, idle = _known(threads, n)
        values = {
            results.ENERGY: energy,
            results.ENERGY_CI_LOW: low,
            results.ENERGY_CI_HIGH: high,
            results.ENERGY_ABOVE_IDLE: above,
            results.POWER: power,
            results.IDLE_POWER: idle,
            results.POWER_SAMPLES: 100,
            results.IDLE_SAMPLES: 30,
            results.ENERGY_WINDOW: 10.0,
            results.ENERGY_IMAGES: 5000,
        }
        metrics += [Metric(results.metric(variant, k), v, 0, 0) for k, v in values.items()]
    client.log_batch(run.info.run_id, metrics=metrics)
    client.set_tag(run.info.run_id, results.ENERGY_SOURCE_TAG, "pmic")


def test_energy_per_image_is_reported_beside_latency(threads_sweep, tmp_path):
    """Energy measured in every run: runs.csv holds each variant's energy measures and source,
    summary.csv each configuration's energy (one run: its own interval), report.md the energy
    beside the p50 in the table over seeds, its own section and against threads, and
    energy_vs_accuracy.png is drawn."""
    client, runs = _copy(threads_sweep, tmp_path)
    variants = _tflite(runs)
    for run in runs:
        _log_energy(client, run, variants)
    out = tmp_path / "report"
    md = _report(tmp_path, out)

    table = pd.read_csv(out / RUNS_CSV)
    assert ENERGY_COLUMNS - {"energy_note"} <= set(table.columns)
    assert "energy_note" not in table  # no run has a note
    keras = table[table["variant"] == "keras"]
    assert keras[results.ENERGY].isna().all() and keras["energy_source"].isna().all()
    over_seeds = pd.read_csv(out / SUMMARY_CSV)
    for n, variant in enumerate(variants):
        for threads in map(int, COUNTS):
            energy, low, high, above, power, idle = _known(threads, n)
            at = (table["variant"] == variant) & (table["threads"].astype(str) == str(threads))
            row = table[at].iloc[0]
            assert (row[results.ENERGY], row[results.ENERGY_CI_LOW]) == (energy, low)
            assert (row[results.POWER], row["energy_source"]) == (power, "pmic")
            config = over_seeds["threads"].astype(str) == str(threads)
            s = over_seeds[(over_seeds["variant"] == variant) & config].iloc[0]
            assert (s["energy_mj_mean"], s["energy_mj_ci_low"], s["energy_mj_ci_high"]) == (
                energy,
                low,
                high,
            )
            assert math.isnan(s["energy_mj_std"])  # one run: no spread over runs
            assert (s["energy_above_idle_mj_mean"], s["power_w_mean"]) == (above, power)
            assert s["idle_power_w_mean"] == idle
            sparsity = f"{row['target_sparsity']:g}"
            p50 = f"{row[results.latency('p50')]:.3f}"
            # its own section: a row per run variant, the p50 beside the energy
            assert (
                f"| digits-cnn | {sparsity} | {variant} | {threads} | {p50} | {energy:.4g} | "
                f"{low:.4g} – {high:.4g} | {above:.4g} | {power:.3f} | {idle:.3f} | 100 / 30 idle "
                "| 10 | pmic |" in md
            )
            # the table over seeds: the energy and its interval after the p50's
            start = f"| digits-cnn | {sparsity} | {threads} | {variant} | 1 | "
            assert [
                line
                for line in _lines(md, start)
                if line.endswith(f"| {energy:.4g} | {low:.4g} – {high:.4g} |")
            ]
    assert ENERGY_HEAD in md
    assert "| p50 ms | 95% CI | std | energy mJ | 95% CI |" in md
    # against threads: a second grid, the energy with its interval
    section = md[md.index(THREADS_HEAD) :].split("\n## ")[0]
    grid = section[section.index("Energy per image, mJ:") :]
    for n, variant in enumerate(variants):
        known = (_known(int(t), n) for t in COUNTS)
        cells = " | ".join(f"{e:.4g} [{lo:.4g} – {hi:.4g}]" for e, lo, hi, *_ in known)
        assert f"| {variant} | {cells} |" in grid
    # a budget on energy: the variant of the run whose energy per image meets it
    proc = run_cli(
        ["report", "--out", str(tmp_path / "budget"), "--budget", "energy_mj<=0.6"],
        cwd=tmp_path,
        command=pruneflow_command(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (four,) = [r for r in runs if r.data.params["delegate.threads"] == "4"]
    assert _known(4, 0)[0] <= 0.6 < _known(4, 1)[0]  # only the first variant at 4 threads
    assert (
        f"within budget (energy_mj<=0.6): digits-cnn {variants[0]} of run {four.info.run_id} "
        in proc.stdout
    )
    # the plots, listed in report.md: accuracy against energy, energy against threads
    for name in (*ENERGY_PLOTS, "energy_vs_threads.png", *THREAD_PLOTS):
        with Image.open(out / name) as img:
            img.load()
            assert img.size[0] >= 550 and img.size[1] >= 400
        assert f"[{name}]({name})" in md


def test_a_note_without_energy_is_listed_and_makes_no_empty_column(threads_sweep, tmp_path):
    """A run that asked for energy and could not measure it has a note (energy.note): report.md
    lists it, runs.csv has the note, and no empty energy measure column nor plot."""
    client, runs = _copy(threads_sweep, tmp_path)
    note = "pmic: no vcgencmd on the device (a Raspberry Pi 5 has it; a Pi 4 needs a meter)"
    client.set_tag(runs[0].info.run_id, results.ENERGY_NOTE_TAG, note)
    out = tmp_path / "report"
    md = _report(tmp_path, out)
    table = pd.read_csv(out / RUNS_CSV)
    assert not set(results.ENERGY_MEASURES) & set(table.columns)
    mine = table[table["run_id"] == runs[0].info.run_id]
    assert set(mine["energy_note"]) == {note}
    assert table[table["run_id"] != runs[0].info.run_id]["energy_note"].isna().all()
    assert ENERGY_HEAD in md and "| energy mJ |" not in md
    name = runs[0].data.tags[results.RUN_NAME_TAG]
    assert f"- {name} ({runs[0].info.run_id}): {note}" in md
    assert not (out / ENERGY_PLOTS[0]).exists()


def test_energy_over_seeds_is_the_t_interval_of_the_runs():
    """summary.csv: a configuration's energy over several runs (seeds) is their mean with its
    Student t interval; a configuration of one run keeps that run's own interval; a table
    without energy has no energy column."""
    cols = ["model", "variant", "target_sparsity", "threads", "seed", "accuracy"]
    base = [
        ("m", "tflite_int8", 0.5, "1", 1, 0.9),
        ("m", "tflite_int8", 0.5, "1", 2, 0.9),
        ("m", "tflite_int8", 0.5, "2", 1, 0.9),
    ]
    table = pd.DataFrame([dict(zip(cols, r, strict=True)) for r in base])
    assert not [c for c in summary(table) if c.startswith("energy")]
    energy = table.assign(
        **{
            results.ENERGY: [1.0, 2.0, 3.0],
            results.ENERGY_CI_LOW: [0.9, 1.9, 2.5],
            results.ENERGY_CI_HIGH: [1.1, 2.1, 3.5],
            results.POWER: [4.0, 5.0, 6.0],
        }
    )
    s = summary(energy).set_index("threads")
    t = t_interval([1.0, 2.0])
    assert s.loc["1", "energy_mj_mean"] == 1.5 and s.loc["1", "power_w_mean"] == 4.5
    assert (s.loc["1", "energy_mj_ci_low"], s.loc["1", "energy_mj_ci_high"]) == (
        t["ci_low"],
        t["ci_high"],
    )
    assert s.loc["1", "energy_mj_std"] == t["std"]
    assert tuple(s.loc["2", ["energy_mj_mean", "energy_mj_ci_low", "energy_mj_ci_high"]]) == (
        3.0,
        2.5,
        3.5,
    )
    assert math.isnan(s.loc["2", "energy_above_idle_mj_mean"])  # not logged
