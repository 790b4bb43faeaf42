"""The report: runs read back from the MLflow store as the paper's tables, a CSV of the runs,
one of the configurations over their seeds (:mod:`~pruneflow.study.report.summary`), plots and
the best sparsity per model with its evidence (the best (sparsity, channels, clusters)
configuration where runs removed channels with ``prune.channels`` or clustered weights with
``cluster.clusters``: only the dimensions the study varies); energy per image beside the
latency where runs measured it (:mod:`~.energy`), latency and energy against threads where
runs swept ``delegate.threads`` (:mod:`~.threads`).

``pruneflow report`` (:mod:`pruneflow.cli.report`) and the end of every sweep
(:func:`report_sweep`, into the parent run) use it. It reads runs with MLflow's
``search_runs`` (pandas) and names every column once (:mod:`~.columns`, from
:mod:`pruneflow.results`'s names); report.md is one function per section (:mod:`~.markdown`),
the PNGs one function per plot (:mod:`~.plots`), matplotlib (Agg).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from pruneflow import results
from pruneflow.process import interrupt_point, process_alive
from pruneflow.results import REPORT_MD, RUNS_CSV, SUMMARY_CSV
from pruneflow.study.report import columns as col
from pruneflow.study.report.interleaved import interleaved
from pruneflow.study.report.markdown import markdown
from pruneflow.study.report.plots import CHANNEL_PLOTS, CLUSTER_PLOTS, PLOTS, plot_names, plots
from pruneflow.study.report.selection import ReportError, Selection, rows, select
from pruneflow.study.report.summary import summary
from pruneflow.study.report.tables import DEFAULT_TOLERANCE, best_line, best_sparsity
from pruneflow.tracking.runs import store_client

__all__ = [
    "CHANNEL_PLOTS",
    "CLUSTER_PLOTS",
    "DEFAULT_TOLERANCE",
    "PLOTS",
    "ReportError",
    "best_sparsity",
    "plot_names",
    "report_sweep",
    "report_table",
    "select",
    "summary",
    "write_report",
]


def report_table(selection: Selection):
    """The report's table of ``selection`` (:func:`rows`); :class:`ReportError` when no run
    has an accuracy."""
    table = rows(selection)
    if table.empty or table[results.ACCURACY].notna().sum() == 0:
        raise ReportError(f"the runs of {selection.title} have no accuracy to report (all failed?)")
    return table


def write_report(
    selection: Selection,
    out: Path,
    tolerance: float = DEFAULT_TOLERANCE,
    table=None,
    within: dict | None = None,
):
    """Write runs.csv, summary.csv (:func:`summary`: a row per configuration and variant over
    its seeds), report.md and the PNGs (:func:`plot_names`) into ``out``, all at once
    (:func:`staged`); returns the table
    (``table``, or :func:`report_table`) and the best sparsity map (:func:`best_sparsity`).
    ``within``: the pick within a budget (:func:`~.budget.pick_within`), a section of
    report.md."""
    table = report_table(selection) if table is None else table
    with staged(out, last=REPORT_MD) as stage:  # a report cut short never looks whole
        table.drop(columns=[col.VAL_LOSS]).to_csv(stage / RUNS_CSV, index=False)
        over_seeds = summary(table)
        over_seeds.to_csv(stage / SUMMARY_CSV, index=False)
        best = best_sparsity(table, tolerance, over_seeds)  # the summary is made once
        said = interleaved(selection)  # the compare of its sweep, or the command for one
        md = markdown(selection, table, best, tolerance, over_seeds, within, said)
        (stage / REPORT_MD).write_text(md)
        plots(table, stage, tolerance, over_seeds, said.plot_line)
    return table, best


PARTIAL = ".partial-"  # a report being written: <out>/.partial-<pid>


@contextlib.contextmanager
def staged(out: Path, last: str):
    """A hidden folder in ``out`` to write files into; once the block ends they are moved into
    ``out``, ``last`` (the file that makes it look whole) after the others, which replace
    theirs; ``last`` is removed first. A report cut short (a signal, a full disk) so leaves
    the previous whole report or none (an interrupted block removes its folder; a killed
    one leaves it, and the next report into ``out`` removes it). Inside ``out``, not beside
    it: ``--out .`` needs no write access to the folder above."""
    out.mkdir(parents=True, exist_ok=True)
    for left in out.glob(f"{PARTIAL}*"):
        pid = left.name[len(PARTIAL) :]
        if not pid.isdigit() or not process_alive(int(pid)):
            shutil.rmtree(left, ignore_errors=True)
    stage = out / f"{PARTIAL}{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        interrupt_point()  # a Ctrl-C or SIGTERM swallowed while it was written: not published
        (out / last).unlink(missing_ok=True)
        for path in sorted(stage.iterdir(), key=lambda p: p.name == last):
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def report_sweep(uri: str, experiment: str, parent_id: str, out: Path) -> str:
    """The report of a sweep that just ended, logged to its parent run; returns the best line."""
    selection = select(uri, experiment, sweep=parent_id)
    _, best = write_report(selection, out)
    client = store_client(uri)
    client.log_artifacts(parent_id, str(out), results.REPORT_DIR)
    line = best_line(best)
    client.set_tag(parent_id, results.BEST_TAG, line[:5000])
    return line
