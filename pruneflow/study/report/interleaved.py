"""What the report says beside latencies of different jobs (:mod:`pruneflow.study.interleaved`),
and its section of interleaved ratios where a compare of the sweep was logged (compare.csv)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pruneflow import results
from pruneflow.study.interleaved import compare_command, compare_table, note
from pruneflow.study.report.selection import TAGS, Selection
from pruneflow.study.report.tables import fmt, interval

SECTION = "Latency ratios from interleaved rounds"  # report.md's section of compare.csv


@dataclass(frozen=True)
class Interleaved:
    """A report's word on latencies of different jobs: the compare of its sweep (compare.csv's
    rows, None where none was logged), the line beside its tables and the one under its
    latency plots."""

    table: object
    line: str
    plot_line: str


def interleaved(selection: Selection) -> Interleaved:
    """The compare of the report's sweep (its parent run, or the one parent all its runs
    share) and the notes that point to it, or that name the command that makes it."""
    parent = selection.parent_id or _one_parent(selection.runs)
    command = compare_command(selection.uri, selection.experiment, parent)
    table = compare_table(selection.uri, parent)
    if table is None:
        return Interleaved(None, note(command), note(command))
    return Interleaved(
        table,
        note(command, f'the section "{SECTION}" ({results.COMPARE_CSV})'),
        note(command, f"{results.COMPARE_PLOT} ({results.COMPARE_CSV})"),
    )


def _one_parent(runs) -> str | None:
    parents = runs.get(TAGS + results.PARENT_TAG)
    found = set(parents.dropna()) if parents is not None else set()
    return found.pop() if len(found) == 1 else None


def section(r) -> list[str]:
    """report.md's section of compare.csv (``r``: the :class:`~.document.Report`), the rows
    of the report's runs and their dense baselines; none where no compare was logged."""
    table = r.interleaved.table
    if table is None:
        return []
    from pruneflow.study.compare import COLUMNS, TAIL

    ids = set(r.table["run_id"])
    rows = table[(table["dense"] == 1) | table["run_id"].isin(ids)]
    settings = [c for c in table.columns if c not in (*COLUMNS, *TAIL)]
    rounds = ", ".join(str(n) for n in sorted(set(rows["rounds"])))
    energy = bool(rows[results.ENERGY].notna().any()) if results.ENERGY in rows else False
    head = ["model", "sparsity", "channels", *settings, "variant", "run", "p50 ms"]
    head += ["ratio to dense", "95% CI"] + ["mJ/image (own pass)", "mJ ratio"] * energy
    lines = [
        "",
        f"## {SECTION} ({results.COMPARE_CSV})",
        "",
        f"`pruneflow compare` timed every run's `.tflite` variants and the same variants of its "
        f"dense baseline in {rounds} interleaved rounds (each round every model once, shuffled): "
        "the invoke p50 over the rounds and each model's ratio to its dense baseline with its "
        "95% paired interval. These ratios, not those of the tables below, are the ones drift "
        f"does not move. `{results.COMPARE_PLOT}` plots them."
        + (
            " mJ/image is each run's own energy pass, not interleaved; its ratio is to the "
            "sweep's unpruned run (sparsity 0) where that measured one."
            if energy
            else ""
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for _, c in rows.iterrows():
        cells = [str(c["model"]), fmt(c["sparsity"], "g"), fmt(c["channels"], "g")]
        cells += ["–" if _missing(c[k]) else str(c[k]) for k in settings]
        cells.append(str(c["variant"]))
        cells.append("dense" if c["dense"] == 1 else str(c["run_id"])[:12])
        cells += [fmt(float(c["p50_ms"]), ".4f"), fmt(float(c["ratio_to_dense"]), ".3f")]
        cells.append(interval(float(c["ratio_ci_low"]), float(c["ratio_ci_high"]), ".3f"))
        if energy:
            cells += [fmt(float(c[results.ENERGY]), ".3f")]
            cells += [fmt(float(c["energy_ratio_to_dense"]), ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
