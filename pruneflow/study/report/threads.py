"""The threads study in report.md (``pruneflow -m +experiment=threads``, or any sweep of
``delegate.threads``): latency, and energy per image where runs measured it, against the thread
count, a row per configuration and variant, a column per count. Only where the runs used two
thread counts or more; the ``.tflite`` variants only (TensorFlow does not take LiteRT's count).
Read from summary.csv (:func:`~.summary.summary`: the thread count is part of a
configuration), so each cell is a configuration's mean over its runs, with its 95% interval
where there is one."""

from __future__ import annotations

from pruneflow import results
from pruneflow.study.interleaved import APART
from pruneflow.study.report import columns as col
from pruneflow.study.report.document import Report
from pruneflow.study.report.energy import MJ, has_energy, with_interval
from pruneflow.study.report.selection import DIMENSION_COLUMNS, PARAMS


def thread_counts(values) -> list[str]:
    """The distinct thread counts of ``values`` (runs.csv's ``threads``: ``1``, ``2``,
    ``default`` ...), numbers in order, then the others; ``–`` (Keras) left out."""
    found = {str(v) for v in values if str(v) != "–"}
    numbers = sorted((c for c in found if c.isdigit()), key=int)
    return numbers + sorted(found - set(numbers))


def threads_section(r: Report) -> list[str]:
    """Latency p50 (ms) and, where measured, energy per image (mJ) against the thread count,
    each the mean over a configuration's runs with its 95% interval (its seeds: t over the
    runs; one run's energy: its own interval; one run's p50: none), a column per count."""
    summary = r.summary[r.summary[col.VARIANT] != results.KERAS]
    counts = thread_counts(summary[col.THREADS]) if col.THREADS in summary else []
    if len(counts) < 2:
        return []
    p50 = col.LATENCY_P50
    lines = [
        "",
        "## Threads (delegate.threads): latency and energy against threads",
        "",
        "A column per thread count (`default`: the runtime's own, one thread for LiteRT's "
        "Python interpreter), a row per configuration and variant: the mean over its runs, its "
        "95% interval in brackets where there is one (several seeds; a run's energy has its "
        "own).",
        "",
        f"{APART}; `pruneflow compare` interleaves each count with its own dense model, not "
        "the counts with each other.",
        "",
        "p50 per image, ms:",
        "",
        *_grid(r, summary, counts, p50, ".3f"),
    ]
    if has_energy(summary):
        lines += ["", "Energy per image, mJ:", "", *_grid(r, summary, counts, results.ENERGY, MJ)]
    return lines


def _grid(r: Report, summary, counts: list[str], stem: str, spec: str) -> list[str]:
    """The table of ``<stem>_mean`` (with its interval) of ``summary``'s rows: a row per
    configuration but its threads and variant, a column per count of ``counts``."""
    swept = [c for c in summary if c.startswith(PARAMS)]
    head = ["model", "sparsity", *(d.column for d in r.dims)]
    head += [c[len(PARAMS) :] for c in swept] + ["variant", *counts]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    # every dimension in the key: runs at one sparsity with other channels or clusters are
    # never one row
    keys = [col.MODEL, col.TARGET_SPARSITY, *DIMENSION_COLUMNS, *swept, col.VARIANT]
    for _, g in summary.groupby(keys, sort=False, dropna=False):
        at = {str(t): s for t, (_, s) in zip(g[col.THREADS], g.iterrows(), strict=True)}
        first = g.iloc[0]
        cells = [first[col.MODEL], f"{first[col.TARGET_SPARSITY]:g}"]
        cells += [f"{first[d.column]:g}" for d in r.dims] + [str(first[c]) for c in swept]
        cells.append(first[col.VARIANT])
        for count in counts:
            s = at.get(count)
            cells.append(
                "–"
                if s is None
                else with_interval(
                    s[col.mean(stem)], s[col.ci_low(stem)], s[col.ci_high(stem)], spec
                )
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines
