"""The end of a sweep in one table: a row per job (overrides, status, baseline accuracy, the
headline numbers or the error), printed, written beside the sweep and logged to its parent."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from pruneflow import results
from pruneflow.errors import clip
from pruneflow.pipeline import headline
from pruneflow.progress import duration
from pruneflow.study.interleaved import compare_command, note
from pruneflow.study.jobs import Parent, Sweep, swept
from pruneflow.tracking import provenance
from pruneflow.tracking.runs import finished_run, show_command


@dataclass
class Row:
    num: int | str
    overrides: str
    status: str
    run_id: str
    metrics: dict[str, float]
    error: str = ""
    replaces: str = ""  # the earlier run of its config, made by other code (REPLACES_TAG)


def rows(client, sweep: Sweep, parent: Parent, children: list) -> list[Row]:
    newest: dict[str, Any] = {}
    for run in children:  # newest first
        newest.setdefault(run.data.tags.get(results.JOB_KEY_TAG, run.info.run_id), run)
    rows = []
    for job in sweep.jobs:
        if (job.uri, job.experiment) != (parent.uri, parent.experiment):
            continue
        run = newest.pop(job.key, None)
        overrides = " ".join(swept(job.overrides, sweep.overrides))
        if run is not None:
            rows.append(_row(job.num, overrides, run))
            continue
        done = finished_run(parent.uri, parent.experiment_id, job.key, provenance.code_version())
        if done is not None:
            row = _row(job.num, overrides, done)
            row.status = "SKIPPED"
            rows.append(row)
        else:
            rows.append(Row(job.num, overrides, "NOT RUN", "", {}))
    for run in newest.values():  # jobs a sweeper chose as it went (not listed ahead)
        tags = run.data.tags
        rows.append(
            _row(tags.get(results.JOB_NUM_TAG, "?"), tags.get(results.JOB_OVERRIDES_TAG, ""), run)
        )
    return rows


def _row(num, overrides: str, run) -> Row:
    tags = run.data.tags
    return Row(
        num,
        overrides,
        run.info.status,
        run.info.run_id,
        dict(run.data.metrics),
        tags.get(results.ERROR_MESSAGE_TAG, ""),
        tags.get(results.REPLACES_TAG, ""),
    )


def summary(sweep: Sweep, parent: Parent, rows: list[Row], status: str) -> str:
    width = max([len("overrides"), *(len(r.overrides) for r in rows)])
    width = min(width, 60)
    lines = [
        f"{'job':>4}  {'overrides':<{width}}  {'status':<9}{'baseline':>9}  result",
    ]
    for r in rows:
        base = r.metrics.get(results.BASELINE_ACCURACY, math.nan)
        shown = "-" if math.isnan(base) else f"{base:.4f}"  # a job that never got one
        if r.status in ("FINISHED", "SKIPPED"):
            what = headline(r.metrics)
        else:
            what = clip(r.error, 120) or ("" if r.status != "NOT RUN" else "never started")
        if r.run_id:
            what += f"  (run {r.run_id[:12]})" if what else f"(run {r.run_id[:12]})"
        ov = r.overrides if len(r.overrides) <= width else r.overrides[: width - 1] + "~"
        lines.append(f"{r.num!s:>4}  {ov:<{width}}  {r.status:<9}{shown:>9}  {what}")
    if sum(r.status in ("FINISHED", "SKIPPED") for r in rows) > 1:  # p50s side by side
        command = compare_command(parent.uri, parent.experiment, parent.run_id)
        at_end = f"the compare at this sweep's end ({results.REPORT_DIR}/{results.COMPARE_CSV})"
        lines.append(note(command, at_end if sweep.compare_rounds else None))
    again = [r for r in rows if r.replaces]
    if again:
        lines.append("")
    for r in again:  # a sweep reuses only runs of the same code: these ran again
        lines.append(
            f"job {r.num} ran again: the finished run {r.replaces} of its config was made "
            "by other code (runs are reused only from the same code)"
        )
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status.lower()] = counts.get(r.status.lower(), 0) + 1
    elapsed = time.time() - sweep.started
    said = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no jobs"
    lines += [
        "",
        f"{sweep.name} {status}: {said} in {duration(elapsed)} (folder {sweep.folder})",
        f"results: parent run {parent.run_id}, experiment {parent.experiment!r} in "
        f"{parent.uri}; see them with: {show_command(parent.uri)}",
    ]
    return "\n".join(lines)
