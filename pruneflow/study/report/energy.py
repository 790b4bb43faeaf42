"""Energy per image in report.md (issue #29, ``device.energy``): its columns in the table over
seeds (:func:`summary_head`, :func:`summary_cells`) and its own section beside the latency
(:func:`energy_table`), only where some run measured it: a study without energy reads as
before. The runs' measures are read in :func:`~.selection.rows` (runs.csv) and aggregated in
:func:`~.summary.summary` (summary.csv)."""

from __future__ import annotations

import math

from pruneflow import results
from pruneflow.study.report import columns as col
from pruneflow.study.report.document import Report, config_cells, config_head
from pruneflow.study.report.tables import fmt, interval

MJ, WATTS = ".4g", ".3f"  # energy per image (mJ: from microjoules to joules), power (W)


def has_energy(table) -> bool:
    """Whether some row of ``table`` (runs.csv, or summary.csv) has an energy per image."""
    for column in (results.ENERGY, col.mean(results.ENERGY)):
        if column in table and bool(table[column].notna().any()):
            return True
    return False


def with_interval(value, low, high, spec: str) -> str:
    """``1.234 [1.2 – 1.3]``: a value and its 95% interval (the value alone where the interval
    is missing; ``–`` where the value is)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    bounds = interval(low, high, spec)
    return fmt(value, spec) + ("" if bounds == "–" else f" [{bounds}]")


def summary_head(summary) -> list[str]:
    """The table over seeds' energy heads, where some configuration measured it."""
    return ["energy mJ", "95% CI"] if has_energy(summary) else []


def summary_cells(summary, s) -> list[str]:
    """A configuration's (``s``, a row of summary.csv) energy cells: the mean over its runs and
    its 95% interval (:func:`~.summary.summary`), where the study measured energy."""
    if not has_energy(summary):
        return []
    e = results.ENERGY
    return [fmt(s[col.mean(e)], MJ), interval(s[col.ci_low(e)], s[col.ci_high(e)], MJ)]


def energy_table(r: Report) -> list[str]:
    """Each run variant's energy per image with its 95% interval, beside its p50 latency, what
    running adds to idling, the power running and idle, the samples, the window and what
    measured it; then why runs that asked for energy have none (their notes)."""
    table, dims, several = r.table, r.dims, r.several
    measured = has_energy(table)
    notes = _notes(table)
    if not measured and not notes:
        return []
    lines = [
        "",
        "## Energy per image, mJ (device.energy)",
        "",
        "Measured after each variant's latency pass, so no latency number changes: power "
        "sampled while the device idles, then while it runs the variant back to back for a "
        "window; energy per image is the mean power running times the window over the images "
        "run in it, with its 95% interval; `above idle` is what running adds to idling. p50 is "
        "the latency table's, beside it; `source` what measured the power.",
        "",
        r.note,
    ]
    if measured:
        lines += [
            "",
            f"| model | {config_head(dims, several)}variant | threads | p50 ms | energy mJ "
            "| 95% CI | above idle mJ | power W | idle W | samples | window s | source |",
            "|" + "---|" * (13 + len(dims) + several),
        ]
        for _, row in table[table[results.ENERGY].notna()].iterrows():
            lines.append(
                f"| {row[col.MODEL]} | {config_cells(row, dims, several)} | {row[col.VARIANT]} "
                f"| {row[col.THREADS]} | {fmt(row[col.P50], '.3f')} | "
                + " | ".join(_measured(row))
                + f" | {row[col.ENERGY_SOURCE] or '–'} |"
            )
    if notes:
        lines += ["", "Runs without an energy number (why, as each run says):", ""]
        lines += [f"- {name} ({run_id}): {note}" for run_id, name, note in notes]
    return lines


def _measured(row) -> list[str]:
    """A measured row's energy cells, from the energy per image to the window."""
    e = results
    return [
        fmt(row[e.ENERGY], MJ),
        interval(row[e.ENERGY_CI_LOW], row[e.ENERGY_CI_HIGH], MJ),
        fmt(row[e.ENERGY_ABOVE_IDLE], MJ),
        fmt(row[e.POWER], WATTS),
        fmt(row[e.IDLE_POWER], WATTS),
        f"{fmt(row[e.POWER_SAMPLES], '.0f')} / {fmt(row[e.IDLE_SAMPLES], '.0f')} idle",
        fmt(row[e.ENERGY_WINDOW], ".3g"),
    ]


def _notes(table) -> list[tuple[str, str, str]]:
    """(run id, run name, note) of each run with an energy note, once per run."""
    if col.ENERGY_NOTE not in table:
        return []
    noted = table[table[col.ENERGY_NOTE].fillna("").astype(str).str.strip() != ""]
    noted = noted.drop_duplicates(col.RUN_ID)
    return [(r[col.RUN_ID], r[col.RUN_NAME], r[col.ENERGY_NOTE]) for _, r in noted.iterrows()]
