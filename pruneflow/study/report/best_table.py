"""Table 5 of report.md: the best configuration per model and variant
(:func:`~pruneflow.study.report.tables.best_sparsity`) with its evidence: the difference with
the baseline, its paired interval, the runs it rests on, the rule that judged it, what the
split cannot resolve; and the words that say how it was chosen."""

from __future__ import annotations

import math

from pruneflow.study.report import columns as col
from pruneflow.study.report.document import Report
from pruneflow.study.report.tables import (
    at_config,
    fmt,
    has_channels,
    has_clusters,
    interval,
    resolution,
)

EVIDENCE_HEAD = "| Δ points | paired 95% CI, points | runs | rule | unresolved |"


def best_table(r: Report) -> list[str]:
    """Table 5: the best sparsity per model and variant, or with channel runs or clustered ones
    the best (sparsity, channels, clusters) configuration, showing only the dimensions the study
    varies (:func:`~pruneflow.study.report.tables.best_sparsity`), with its evidence, and what
    one image is worth."""
    worth = [f"- {line}" for line in resolution(r.table)]
    if worth:
        worth = ["Resolution of the validation split:", "", *worth, ""]
    chan, clustered = has_channels(r.table), has_clusters(r.table)
    head = ["best sparsity", *(d.column for d in r.dims)]
    head += ["gzip KB"] * clustered + ["MMACs", "p50 ms"] * chan  # what the choice rests on
    title, text = _best_heading(r, chan, clustered)
    lines = [
        f"## {title}",
        "",
        *text,
        *_rule_text(r.tolerance),
        "",
        *([r.note, ""] if chan else []),  # its p50 column: different jobs' latencies
        *worth,
        "| model | variant | baseline accuracy | "
        + " | ".join(head)
        + " | accuracy there "
        + EVIDENCE_HEAD,
        "|---|---|---|" + "---|" * (len(head) + 6),
    ]
    for (model, variant), b in r.best.items():
        if b["why"]:
            cells = [b["why"], *["–"] * (len(head) - 1)]
        else:
            cells = _best_cells(r, model, variant, b, chan, clustered)
        lines.append(
            f"| {model} | {variant} | {fmt(b.get('baseline'))} | {' | '.join(cells)} | "
            f"{fmt(b.get('accuracy', math.nan))} | " + " | ".join(_evidence(b)) + " |"
        )
    return lines


def _best_heading(r: Report, chan: bool, clustered: bool) -> tuple[str, list[str]]:
    """Table 5's title and what its order of preference is, for a study with channel runs,
    clustered ones, or neither."""
    tolerance = r.tolerance
    pairs = f"({', '.join(['sparsity', *(d.column for d in r.dims)])})"
    by_gzip = "where only the clusters differ, the smaller gzip file (what clustering is for), "
    if chan:
        title = (
            "Best configuration per model (Table 5): the fewest MACs non-inferior to the "
            f"baseline within {tolerance:g} accuracy points"
        )
        text = [
            f"Of the {pairs} configurations that hold, the one with the fewest "
            "multiply-accumulates per image (ties, or MACs not logged: the higher sparsity, then "
            f"the more channels removed, then {by_gzip if clustered else ''}the better "
            "accuracy); a model without channel runs keeps the highest sparsity that holds. p50 "
            "is the median over the configuration's runs.",
            "",
        ]
    elif clustered:
        title = (
            "Best configuration per model (Table 5): the highest sparsity non-inferior to the "
            f"baseline within {tolerance:g} accuracy points, then the smallest gzip file"
        )
        text = [
            f"Of the {pairs} configurations that hold, the highest sparsity, then {by_gzip}then "
            "the better accuracy. Clusters 0: not clustered.",
            "",
        ]
    else:
        title = (
            "Best sparsity per model (Table 5): the highest non-inferior to the baseline "
            f"within {tolerance:g} accuracy points"
        )
        text = []
    return title, text


def _rule_text(tolerance: float) -> list[str]:
    return [
        "A configuration holds when it is non-inferior to the baseline: the lower bound of the "
        "paired 95% interval of its accuracy minus the baseline's on the same images "
        f"(Newcombe's) is above -{tolerance:g} points; with several seeds the lower of the mean "
        "of the per-seed bounds and the t interval of the per-seed differences. Runs without "
        "the paired metrics (made before them) fall back to the point rule, the mean accuracy "
        f"at least the baseline's minus {tolerance:g} points, and say so (`rule`). `unresolved` "
        "names a pick that rests on differences the split cannot resolve: the point rule picks "
        "otherwise, or the pick (or a configuration preferred to it) holds (misses) by less "
        "than one image.",
    ]


def _best_cells(r: Report, model: str, variant: str, b: dict, chan: bool, clustered: bool):
    """A best configuration's cells: its sparsity and dimensions, and what the choice rests on
    (the gzip size with clustered runs, the MACs and the median p50 there with channel runs)."""
    cells = [fmt(b["sparsity"], "g"), *(fmt(b[d.column], "g") for d in r.dims)]
    if clustered:
        cells.append(fmt(b.get("gzip", math.nan) / 1024, ".1f"))
    if chan:
        cells.append(fmt(b.get(col.MACS, math.nan) / 1e6, ".3f"))
        at = at_config(r.table, model, variant, b)
        cells.append(fmt(float(at[col.P50].median()), ".3f"))
    return cells


def _evidence(b) -> list[str]:
    """A best configuration's evidence cells: the difference with the baseline in points, its
    paired 95% interval, the runs it rests on, the rule that judged it, what is unresolved."""
    unresolved = "; ".join(b.get("unresolved", [])) or "–"
    if b["why"]:
        return ["–", "–", "–", b.get("rule", "–"), unresolved]
    rule = "non-inferior" if b["rule"] == "non-inferiority" else "point (no paired metrics)"
    runs = str(b["n_runs"]) + (f" (seeds {b['seeds']})" if " " in b["seeds"] else "")
    return [
        _points(b["delta"]),
        interval(b["ci_low"], b["ci_high"], "+.2f", 100),
        runs,
        rule,
        unresolved,
    ]


def _points(v, spec: str = "+.2f") -> str:
    """A difference of accuracies (a fraction) in points: ``-0.37``."""
    return fmt(v * 100 if isinstance(v, float) else math.nan, spec)
