"""The report as markdown: the paper's tables (accuracy, latency with its interval, size) and
the best sparsity per model with its evidence, the numbers over seeds (summary.csv); where runs
removed channels (``prune.channels``), a channels column beside every sparsity and the best
(sparsity, channels) configuration instead; where runs clustered weights
(``cluster.clusters``), a clusters column likewise, the best configuration with its clusters and
the sizes with their unique weights; where runs have several seeds, a seed column in every
per-run table."""

from __future__ import annotations

import math

import pandas as pd

from pruneflow import results
from pruneflow.study.report.budget import pick_line
from pruneflow.study.report.plots import plot_names
from pruneflow.study.report.selection import DIMENSION_COLUMNS, UNIQUE_WEIGHTS, Selection
from pruneflow.study.report.summary import summary as summarize
from pruneflow.study.report.tables import (
    at_config,
    dimensions,
    has_channels,
    has_clusters,
    resolution,
)
from pruneflow.study.report.tables import fmt as _fmt

Z95 = 1.959964  # two-sided 95% normal quantile: the mean's confidence interval


def seeds(table) -> list[int]:
    """The runs' distinct seeds (``params.seed``), sorted; none for runs without it."""
    return sorted({int(s) for s in table["seed"].dropna()}) if "seed" in table else []


def markdown(selection: Selection, table, best, tolerance: float, summary=None, within=None) -> str:
    """The report; ``within``: the pick within a budget (:func:`~.budget.pick_within`), its
    section first."""
    summary = summarize(table) if summary is None else summary
    several = len(seeds(table)) > 1  # then a seed column labels every per-run row
    lines = [
        f"# pruneflow report: {selection.title}",
        "",
        f"Store {selection.uri}, experiment {selection.experiment!r}: "
        f"{table['run_id'].nunique()} runs, {table['model'].nunique()} models. Accuracy is top-1 "
        "on the whole validation split; latency per image (the first apart), statistics over "
        "the rest; `–` marks a value the run does not have (failed or partial runs).",
        "",
    ]
    if several:
        lines += [
            f"Runs of {len(seeds(table))} seeds ({', '.join(map(str, seeds(table)))}): the "
            "best configuration and the table over seeds (summary.csv) aggregate a "
            "configuration's runs; every per-run table has a `seed` column.",
            "",
        ]
    elif seeds(table):
        lines += [f"Every run has seed {seeds(table)[0]}.", ""]
    if within is not None:
        lines += [
            "## Within the budget",
            "",
            f"The most accurate run variant that meets every constraint of `{within['budget']}` "
            f"(ties: the smaller gzip file, then the run id): {pick_line(within)}.",
            "",
        ]
    # only the dimensions some run uses (channels, clusters) have a column beside sparsity
    dims = dimensions(table)
    chan = has_channels(table)  # then the measured channels beside the measured sparsity
    lines += _best_table(table, best, tolerance)
    lines += _summary_table(summary, dims)
    lines += ["", "## Accuracy per variant (Table 8)", ""]
    variants = list(dict.fromkeys(table["variant"]))
    macs = "macs" in table and bool(table["macs"].notna().any())  # MACs per run, where logged
    head = (
        ["model", "sparsity", *(d.column for d in dims)]
        + (["seed"] if several else [])
        + (["measured sparsity", "measured channels"] if chan else ["measured"])
        + ["images"]
        + (["MMACs"] if macs else [])
    )
    lines += [
        "| " + " | ".join(head + variants) + " |",
        "|" + "---|" * (len(head) + len(variants)),
    ]
    for (model, _, _), g in table.groupby(["model", "target_sparsity", "run_id"], sort=False):
        acc = dict(zip(g["variant"], g["accuracy"], strict=True))
        first = g.iloc[0]
        cells = [model, _config(first, dims, several)]
        cells.append(_fmt(first["measured_sparsity"], ".3f"))
        if chan:
            cells.append(_fmt(first["measured_channels"], ".3f"))
        cells.append(_fmt(first["val_images"], ".0f"))
        if macs:
            cells.append(_fmt(first["macs"] / 1e6, ".3f"))
        cells += [_fmt(acc.get(v, math.nan)) for v in variants]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Latency per image (Tables 6, 7 and 9), ms",
        "",
        "Per image from the file to the class, as the paper times it; `decode` (read, decode, "
        "preprocess) and `invoke` (set_tensor, invoke, get_tensor) are the p50 of its two parts; "
        "`timed on` is the device, or `host` for a model timed on this machine beside a remote "
        "device; peak RSS is the model's own runner process.",
        "",
        f"| model | {_config_head(dims, several)}variant | threads | first | mean "
        "| std | ste | 95% CI of the mean | p50 | p99 | decode | invoke | peak RSS MB | timed on "
        "| kernels |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        + "---|" * (len(dims) + several),
    ]
    for _, r in table.iterrows():
        mean, ste = r[results.latency("mean")], r[results.latency("ste")]
        ci = (
            f"{mean - Z95 * ste:.3f} – {mean + Z95 * ste:.3f}"
            if not (math.isnan(mean) or math.isnan(ste))
            else "–"
        )
        lines.append(
            f"| {r['model']} | {_config(r, dims, several)} | {r['variant']} | {r['threads']} | "
            + " | ".join(
                _fmt(r[results.latency(m)], ".3f") for m in ("first", "mean", "std", "ste")
            )
            + f" | {ci} | {_fmt(r[results.latency('p50')], '.3f')} | "
            f"{_fmt(r[results.latency('p99')], '.3f')} | "
            f"{_fmt(r[results.decode('p50')], '.3f')} | {_fmt(r[results.invoke('p50')], '.3f')} | "
            f"{_fmt(r[results.PEAK_RSS], '.1f')} | {r['timed_on'] or '–'} | "
            f"{r['kernels'] or '–'} |"
        )
    lines += _threads_table(table, dims)
    clustered = has_clusters(table)  # then each file's unique weights beside its sizes
    lines += [
        "",
        "## Sizes, KB (raw and gzip-compressed: what pruning's zeros save)",
        "",
        *(
            [
                "`unique weights`: the most distinct values in any clustered weight tensor of "
                "the file (`–`: not clustered).",
                "",
            ]
            if clustered
            else []
        ),
        f"| model | {_config_head(dims, several)}variant | raw | gzip |"
        + (" unique weights |" if clustered else ""),
        "|---|---|---|---|---|" + "---|" * (len(dims) + several + clustered),
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['model']} | {_config(r, dims, several)} | {r['variant']} | "
            f"{_fmt(r[results.SIZE] / 1024, '.1f')} | {_fmt(r[results.GZIP] / 1024, '.1f')} |"
            + (f" {_fmt(r[UNIQUE_WEIGHTS], '.0f')} |" if clustered else "")
        )
    unfinished = table[table["status"] != "FINISHED"].drop_duplicates("run_id")
    if len(unfinished):
        lines += ["", "## Runs that did not finish", ""]
        for _, r in unfinished.iterrows():
            lines.append(f"- {r['run_name']} ({r['run_id']}): {r['status']} {r['error']}".rstrip())
    lines += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in plot_names(table)), ""]
    return "\n".join(lines)


def _config(r, dims, several: bool = False) -> str:
    """A row's sparsity cell, a cell per dimension the study varies (``dims``: channels,
    clusters), and its seed cell when the runs have several seeds."""
    cells = [_fmt(r["target_sparsity"], "g"), *(_fmt(r[d.column], "g") for d in dims)]
    if several:
        cells.append(_seed(r))
    return " | ".join(cells)


def _config_head(dims, several: bool) -> str:
    return "".join(f"{c} | " for c in ("sparsity", *(d.column for d in dims))) + (
        "seed | " if several else ""
    )


def _seed(r) -> str:
    seed = r.get("seed")
    return "–" if seed is None or seed is pd.NA or _isnan(seed) else str(int(seed))


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _points(v, spec: str = "+.2f") -> str:
    """A difference of accuracies (a fraction) in points: ``-0.37``."""
    return _fmt(v * 100 if isinstance(v, float) else math.nan, spec)


def _interval(low, high, spec: str = ".4f", scale: float = 1.0) -> str:
    if _isnan(low) or _isnan(high):
        return "–"
    return f"{format(low * scale, spec)} – {format(high * scale, spec)}"


def _evidence(b, tolerance: float) -> list[str]:
    """A best configuration's evidence cells: the difference with the baseline in points, its
    paired 95% interval, the runs it rests on, the rule that judged it, what is unresolved."""
    unresolved = "; ".join(b.get("unresolved", [])) or "–"
    if b["why"]:
        return ["–", "–", "–", b.get("rule", "–"), unresolved]
    rule = "non-inferior" if b["rule"] == "non-inferiority" else "point (no paired metrics)"
    runs = str(b["n_runs"]) + (f" (seeds {b['seeds']})" if " " in b["seeds"] else "")
    return [
        _points(b["delta"]),
        _interval(b["ci_low"], b["ci_high"], "+.2f", 100),
        runs,
        rule,
        unresolved,
    ]


EVIDENCE_HEAD = "| Δ points | paired 95% CI, points | runs | rule | unresolved |"


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


def _best_table(table, best, tolerance: float) -> list[str]:
    """Table 5: the best sparsity per model and variant, or with channel runs or clustered ones
    the best (sparsity, channels, clusters) configuration, showing only the dimensions the study
    varies (:func:`~pruneflow.study.report.tables.best_sparsity`), with its evidence, and what
    one image is worth."""
    worth = [f"- {line}" for line in resolution(table)]
    if worth:
        worth = ["Resolution of the validation split:", "", *worth, ""]
    dims = dimensions(table)
    chan, clustered = has_channels(table), has_clusters(table)
    pairs = f"({', '.join(['sparsity', *(d.column for d in dims)])})"
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
    head = ["best sparsity", *(d.column for d in dims)]
    head += ["gzip KB"] * clustered + ["MMACs", "p50 ms"] * chan  # what the choice rests on
    lines = [
        f"## {title}",
        "",
        *text,
        *_rule_text(tolerance),
        "",
        *worth,
        "| model | variant | baseline accuracy | "
        + " | ".join(head)
        + " | accuracy there "
        + EVIDENCE_HEAD,
        "|---|---|---|" + "---|" * (len(head) + 6),
    ]
    p50 = results.latency("p50")
    for (model, variant), b in best.items():
        if b["why"]:
            cells = [b["why"], *["–"] * (len(head) - 1)]
        else:
            cells = [_fmt(b["sparsity"], "g"), *(_fmt(b[d.column], "g") for d in dims)]
            if clustered:
                cells.append(_fmt(b.get("gzip", math.nan) / 1024, ".1f"))
            if chan:
                cells.append(_fmt(b.get("macs", math.nan) / 1e6, ".3f"))
                at = at_config(table, model, variant, b)
                cells.append(_fmt(float(at[p50].median()), ".3f"))
        lines.append(
            f"| {model} | {variant} | {_fmt(b.get('baseline'))} | {' | '.join(cells)} | "
            f"{_fmt(b.get('accuracy', math.nan))} | " + " | ".join(_evidence(b, tolerance)) + " |"
        )
    return lines


def _summary_table(summary, dims) -> list[str]:
    """Every configuration and variant over its runs (summary.csv): the mean accuracy and p50
    with their 95% intervals; a column per dimension the study varies (``dims``)."""
    swept = [c for c in summary if c.startswith("params.")]
    threads = summary["threads"].nunique() > 2 if "threads" in summary else False  # "–" + 2
    head = ["model", "sparsity", *(d.column for d in dims), *(c[7:] for c in swept)]
    head += [*(["threads"] if threads else []), "variant", "runs", "seeds"]
    head += ["accuracy", "95% CI", "std", "p50 ms", "95% CI", "std"]
    lines = [
        "",
        "## Accuracy and latency over seeds (summary.csv)",
        "",
        "Each configuration's runs together (its seeds): the mean, its 95% interval (Student's "
        "t over the runs; with one run, its accuracy's Wilson interval over the images and no "
        "latency interval) and the runs' standard deviation.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for _, r in summary.iterrows():
        cells = [r["model"], _config(r, dims)]
        cells += [str(r[c]) for c in swept]
        if threads:
            cells.append(str(r["threads"]))
        cells += [r["variant"], str(r["n_runs"]), r["seeds"] or "–"]
        cells += [
            _fmt(r["accuracy_mean"]),
            _interval(r["accuracy_ci_low"], r["accuracy_ci_high"]),
            _fmt(r["accuracy_std"]),
            _fmt(r["latency_p50_mean"], ".3f"),
            _interval(r["latency_p50_ci_low"], r["latency_p50_ci_high"], ".3f"),
            _fmt(r["latency_p50_std"], ".3f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _threads_table(table, dims=()) -> list[str]:
    """p50 per thread count side by side, when the runs swept delegate.threads (the .tflite
    variants: the Keras model does not take LiteRT's thread count); a column per dimension the
    study varies (``dims``)."""
    table = table[table["variant"] != results.KERAS]  # TensorFlow ignores delegate.threads
    counts = list(dict.fromkeys(table["threads"]))
    if len(counts) < 2:
        return []
    lines = [
        "",
        "## Threads (delegate.threads): p50 per image, ms",
        "",
        f"| model | {_config_head(dims, False)}variant | timed on | " + " | ".join(counts) + " |",
        "|---|---|---|---|" + "---|" * len(dims) + "---|" * len(counts),
    ]
    p50 = results.latency("p50")
    # every dimension in the key: runs at one sparsity with different channels or clusters are
    # never one row
    keys = ["model", "target_sparsity", *DIMENSION_COLUMNS, "variant", "timed_on"]
    for _, g in table.groupby(keys, sort=False):
        by = g.groupby("threads", sort=False)[p50].median()  # over seeds, if several
        first = g.iloc[0]
        lines.append(
            f"| {first['model']} | {_config(first, dims)} | {first['variant']} | "
            f"{first['timed_on'] or '–'} | "
            + " | ".join(_fmt(by.get(c, math.nan), ".3f") for c in counts)
            + " |"
        )
    return lines
