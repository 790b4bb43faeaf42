"""Latency ratios a reader can trust (issue #29): beside every table or line that sets different
jobs' latencies side by side, one line says they were timed apart and names the `pruneflow
compare` command of that sweep (or, once a compare of it was logged, points to its interleaved
numbers); `pruneflow compare` shows each run's measured energy per image beside its latency
ratio. A real tiny sweep by the console script; timings are never asserted."""

from __future__ import annotations

import math
import shlex

import pandas as pd
import pytest

from helpers.cli import pruneflow_command, read_runs, run_cli, store_uri, sweep_cli
from pruneflow import results
from pruneflow.study.compare.output import ENERGY_NOTE
from pruneflow.study.interleaved import APART
from pruneflow.study.report.interleaved import SECTION
from pruneflow.tracking.config import COMPARE_ROUNDS_KEY

VARIANTS = ("tflite_fp32", "tflite_int8")  # stage=int8's
# Energy per image (mJ, low, high) logged onto the runs below: the energy pass itself (device.
# energy, the runner's sampling and its arithmetic) is tested in its own tests; here only what
# compare does with the metrics a run has
ENERGY = {
    (0.0, "tflite_fp32"): (2.0, 1.8, 2.2),
    (0.0, "tflite_int8"): (1.0, 0.9, 1.1),
    (0.9, "tflite_fp32"): (1.5, 1.4, 1.6),
    # (0.9, "tflite_int8"): not measured
}


@pytest.fixture(scope="module")
def apart(tmp_path_factory):
    """Two jobs: the unpruned model (sparsity 0) and a pruned one, timed one after the other."""
    tmp = tmp_path_factory.mktemp("trust")
    proc = sweep_cli(tmp, "prune.sparsity=0,0.9", "stage=int8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc


def _command(tmp) -> str:
    _, (parent,) = read_runs(tmp, parents=True)
    return f"pruneflow compare --tracking-uri {store_uri(tmp)} --sweep {parent.info.run_id}"


def test_the_summary_and_the_report_say_the_latencies_are_apart_and_name_compare(apart):
    tmp, proc = apart
    line = f"{APART}: interleaved ratios with `{_command(tmp)}`"
    summary = (tmp / "multirun" / results.SUMMARY_FILE).read_text()
    assert line in summary.splitlines() and line in proc.stdout.splitlines()
    report = (tmp / "multirun" / results.REPORT_DIR / results.REPORT_MD).read_text()
    for table in ("## Accuracy and latency over seeds", "## Latency per image"):
        section = report.split(table)[1].split("\n## ")[0]
        assert line in section.splitlines(), section  # beside the table, before the next
    assert f"## {SECTION}" not in report  # no compare yet


def test_a_report_of_all_runs_names_the_sweep_they_share(apart, tmp_path):
    """`report --all` of runs that are one sweep's: its command; no compare yet."""
    tmp, _ = apart
    out = tmp_path / "all"
    proc = run_cli(
        ["report", "--all", "--tracking-uri", store_uri(tmp), "--out", str(out)],
        cwd=tmp_path,
        command=pruneflow_command(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = f"{APART}: interleaved ratios with `{_command(tmp)}`"
    assert line in (out / results.REPORT_MD).read_text().splitlines()


def test_the_named_command_compares_and_the_report_then_shows_its_numbers(apart, tmp_path):
    tmp, _ = apart
    client, runs = read_runs(tmp)
    by_sparsity = {float(r.data.params["prune.sparsity"]): r for r in runs}
    for (sparsity, variant), values in ENERGY.items():
        run_id = by_sparsity[sparsity].info.run_id
        measures = (results.ENERGY, results.ENERGY_CI_LOW, results.ENERGY_CI_HIGH)
        for measure, value in zip(measures, values, strict=True):
            client.log_metric(run_id, results.metric(variant, measure), value)

    # the command the note names, as a user copies it (console script, another folder)
    argv = shlex.split(_command(tmp))
    assert argv[:2] == ["pruneflow", "compare"]
    proc = run_cli([*argv[1:], "--rounds", "2"], cwd=tmp_path, command=pruneflow_command())
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp / "multirun" / results.REPORT_DIR
    table = pd.read_csv(folder / results.COMPARE_CSV)

    # each run's own energy beside its ratio, and its ratio to the unpruned run's energy
    assert ENERGY_NOTE.format(metric=results.ENERGY) in proc.stdout
    head = [line for line in proc.stdout.splitlines() if line.startswith("model ")]
    assert head and "mJ/image" in head[-1], proc.stdout[-3000:]
    for _, row in table[table["dense"] == 0].iterrows():
        sparsity, variant = float(row["sparsity"]), row["variant"]
        mj = ENERGY.get((sparsity, variant), (math.nan,) * 3)
        got = (row[results.ENERGY], row[results.ENERGY_CI_LOW], row[results.ENERGY_CI_HIGH])
        assert got == pytest.approx(mj, nan_ok=True), (sparsity, variant)
        dense = ENERGY[(0.0, variant)][0] if (0.0, variant) in ENERGY else math.nan
        assert row["energy_ratio_to_dense"] == pytest.approx(mj[0] / dense, nan_ok=True)
    pruned = table[(table["sparsity"] == 0.9) & (table["variant"] == "tflite_fp32")]
    assert pruned["energy_ratio_to_dense"].item() == pytest.approx(0.75)  # 1.5 / 2.0
    dense = table[table["dense"] == 1].set_index("variant")
    assert dense.loc["tflite_fp32", results.ENERGY] == 2.0  # the unpruned run's, measured
    assert dense.loc["tflite_int8", "energy_ratio_to_dense"] == 1.0

    # the report of the sweep now shows the interleaved numbers and points to them
    proc = run_cli(
        ["report", "--tracking-uri", store_uri(tmp), "--out", str(tmp_path / "report")],
        cwd=tmp_path,
        command=pruneflow_command(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (tmp_path / "report" / results.REPORT_MD).read_text()
    section = report.split(f"## {SECTION} ({results.COMPARE_CSV})")[1].split("\n## ")[0]
    for _, row in table.iterrows():
        cells = f"| {row['variant']} | " + ("dense" if row["dense"] else row["run_id"][:12])
        cells += f" | {row['p50_ms']:.4f} | {row['ratio_to_dense']:.3f} | "
        cells += f"{row['ratio_ci_low']:.3f} – {row['ratio_ci_high']:.3f} |"
        assert cells in section, (cells, section)
    assert "| 1.500 | 0.750 |" in section  # the pruned fp32's own energy and its ratio
    pointer = f'{APART}: interleaved ratios in the section "{SECTION}" ({results.COMPARE_CSV})'
    latency = report.split("## Latency per image")[1].split("\n## ")[0]
    assert pointer in latency.splitlines() and "pruneflow compare --tracking-uri" not in latency


def test_a_sweep_whose_compare_cannot_run_ends_with_one_line(tmp_path):
    """No job finished (the device check refuses its Python): the sweep-end compare is one
    line, the parent ends, no traceback."""
    proc = sweep_cli(tmp_path, "device.python=/nonexistent/python3", f"{COMPARE_ROUNDS_KEY}=2")
    assert proc.returncode != 0
    _, (parent,) = read_runs(tmp_path, parents=True)
    assert parent.info.status == "FAILED"
    said = [line for line in proc.stderr.splitlines() if "no compare" in line]
    assert said == [f"pruneflow: no compare for {parent.info.run_name}: no job finished"], said
    assert "Traceback" not in proc.stderr


def test_a_password_in_the_tracking_uri_never_reaches_a_note_or_a_report():
    """The note's command and the UI hint are written into report.md and the sweep summary:
    the store's password is left out of them (PostgreSQL then reads PGPASSWORD or ~/.pgpass)."""
    from pruneflow.study.interleaved import compare_command
    from pruneflow.tracking.runs import show_command

    uri = "postgresql+psycopg2://me:s3cret@db:5432/mlflow"
    for text in (compare_command(uri, "pruneflow", "abc"), show_command(uri)):
        assert "s3cret" not in text and "me@db:5432/mlflow" in text, text
    assert "u@h:5000" in show_command("http://u:pw@h:5000")
    assert compare_command("sqlite:///m.db", "x", None).startswith(
        "pruneflow compare --tracking-uri sqlite:///m.db --experiment x --sweep PARENT_RUN_ID"
    )
