"""The report as markdown: the paper's tables (accuracy, latency with its interval, size) and
the best sparsity per model with its evidence, the numbers over seeds (summary.csv); where runs
removed channels (``prune.channels``), a channels column beside every sparsity and the best
(sparsity, channels) configuration instead; where runs clustered weights
(``cluster.clusters``), a clusters column likewise, the best configuration with its clusters and
the sizes with their unique weights; where runs have several seeds, a seed column in every
per-run table.

report.md is :data:`SECTIONS` in order, each one function of the :class:`Report` that returns
its lines (none where it does not apply): adding a table is a function and its place there."""

from __future__ import annotations

import math

from pruneflow import results
from pruneflow.study.report import columns as col
from pruneflow.study.report import energy
from pruneflow.study.report.best_table import best_table
from pruneflow.study.report.budget import pick_line
from pruneflow.study.report.document import Report
from pruneflow.study.report.document import config_cells as _config
from pruneflow.study.report.document import config_head as _config_head
from pruneflow.study.report.interleaved import interleaved as _interleaved
from pruneflow.study.report.interleaved import section as interleaved_table
from pruneflow.study.report.plots import plot_names
from pruneflow.study.report.selection import (
    PARAMS,
    UNIQUE_WEIGHTS,
    Selection,
)
from pruneflow.study.report.summary import summary as summarize
from pruneflow.study.report.tables import (
    dimensions,
    has_channels,
    has_clusters,
)
from pruneflow.study.report.tables import fmt as _fmt
from pruneflow.study.report.tables import interval as _interval
from pruneflow.study.report.threads import threads_section

Z95 = 1.959964  # two-sided 95% normal quantile: the mean's confidence interval


def seeds(table) -> list[int]:
    """The runs' distinct seeds (``params.seed``), sorted; none for runs without it."""
    return sorted({int(s) for s in table[col.SEED].dropna()}) if col.SEED in table else []


def markdown(
    selection: Selection, table, best, tolerance: float, summary=None, within=None, said=None
) -> str:
    """The report; ``within``: the pick within a budget (:func:`~.budget.pick_within`), its
    section first; ``said``: its word on different jobs' latencies (:func:`~.interleaved.
    interleaved`, read from the store when not given)."""
    report = Report(
        selection,
        table,
        best,
        tolerance,
        summarize(table) if summary is None else summary,
        within,
        dimensions(table),
        seeds(table),
        _interleaved(selection) if said is None else said,
    )
    return "\n".join(line for section in SECTIONS for line in section(report))


# -- the sections, in report.md's order ------------------------------------------------------------
def intro(r: Report) -> list[str]:
    """The title, what the report covers and how it measures, and the runs' seeds."""
    table, selection, found = r.table, r.selection, r.seeds
    lines = [
        f"# pruneflow report: {selection.title}",
        "",
        f"Store {selection.uri}, experiment {selection.experiment!r}: "
        f"{table[col.RUN_ID].nunique()} runs, {table[col.MODEL].nunique()} models. Accuracy is "
        "top-1 on the whole validation split; latency per image (the first apart), statistics "
        "over the rest; `–` marks a value the run does not have (failed or partial runs).",
        "",
    ]
    if r.several:
        lines += [
            f"Runs of {len(found)} seeds ({', '.join(map(str, found))}): the "
            f"best configuration and the table over seeds ({results.SUMMARY_CSV}) aggregate a "
            "configuration's runs; every per-run table has a `seed` column.",
            "",
        ]
    elif found:
        lines += [f"Every run has seed {found[0]}.", ""]
    return lines


def within_budget(r: Report) -> list[str]:
    """The pick within a budget (``pruneflow report --budget``), when there is one."""
    if r.within is None:
        return []
    return [
        "## Within the budget",
        "",
        f"The most accurate run variant that meets every constraint of `{r.within['budget']}` "
        f"(ties: the smaller gzip file, then the run id): {pick_line(r.within)}.",
        "",
    ]


def summary_table(r: Report) -> list[str]:
    """Every configuration and variant over its runs (summary.csv): the mean accuracy and p50
    with their 95% intervals; a column per dimension the study varies."""
    summary, dims = r.summary, r.dims
    swept = [c for c in summary if c.startswith(PARAMS)]
    threads = summary[col.THREADS].nunique() > 2 if col.THREADS in summary else False  # "–" + 2
    head = ["model", "sparsity", *(d.column for d in dims), *(c[len(PARAMS) :] for c in swept)]
    head += [*(["threads"] if threads else []), "variant", "runs", "seeds"]
    head += ["accuracy", "95% CI", "std", "p50 ms", "95% CI", "std", *energy.summary_head(summary)]
    lines = [
        "",
        f"## Accuracy and latency over seeds ({results.SUMMARY_CSV})",
        "",
        "Each configuration's runs together (its seeds): the mean, its 95% interval (Student's "
        "t over the runs; with one run, its accuracy's Wilson interval over the images and no "
        "latency interval) and the runs' standard deviation.",
        "",
        r.note,
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    acc, p50 = results.ACCURACY, col.LATENCY_P50
    for _, s in summary.iterrows():
        cells = [s[col.MODEL], _config(s, dims)]
        cells += [str(s[c]) for c in swept]
        if threads:
            cells.append(str(s[col.THREADS]))
        cells += [s[col.VARIANT], str(s[col.N_RUNS]), s[col.SEEDS] or "–"]
        cells += [
            _fmt(s[col.mean(acc)]),
            _interval(s[col.ci_low(acc)], s[col.ci_high(acc)]),
            _fmt(s[col.std(acc)]),
            _fmt(s[col.mean(p50)], ".3f"),
            _interval(s[col.ci_low(p50)], s[col.ci_high(p50)], ".3f"),
            _fmt(s[col.std(p50)], ".3f"),
            *energy.summary_cells(summary, s),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def accuracy_table(r: Report) -> list[str]:
    """Table 8: each run's accuracy per variant, beside its measured sparsity (and channels),
    its validation images and MACs (where logged)."""
    table, dims, several = r.table, r.dims, r.several
    chan = has_channels(table)  # then the measured channels beside the measured sparsity
    variants = list(dict.fromkeys(table[col.VARIANT]))
    macs = col.MACS in table and bool(table[col.MACS].notna().any())  # per run, where logged
    head = (
        ["model", "sparsity", *(d.column for d in dims)]
        + (["seed"] if several else [])
        + (["measured sparsity", "measured channels"] if chan else ["measured"])
        + ["images"]
        + (["MMACs"] if macs else [])
    )
    lines = [
        "",
        "## Accuracy per variant (Table 8)",
        "",
        "| " + " | ".join(head + variants) + " |",
        "|" + "---|" * (len(head) + len(variants)),
    ]
    by_run = [col.MODEL, col.TARGET_SPARSITY, col.RUN_ID]
    for (model, _, _), g in table.groupby(by_run, sort=False):
        acc = dict(zip(g[col.VARIANT], g[results.ACCURACY], strict=True))
        first = g.iloc[0]
        cells = [model, _config(first, dims, several)]
        cells.append(_fmt(first[col.MEASURED_SPARSITY], ".3f"))
        if chan:
            cells.append(_fmt(first[col.MEASURED_CHANNELS], ".3f"))
        cells.append(_fmt(first[col.VAL_IMAGES], ".0f"))
        if macs:
            cells.append(_fmt(first[col.MACS] / 1e6, ".3f"))
        cells += [_fmt(acc.get(v, math.nan)) for v in variants]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def latency_table(r: Report) -> list[str]:
    """Tables 6, 7 and 9: each run variant's latency per image (the mean's 95% interval, the
    parts of the time, the runner's memory), where it was timed and what kernels ran it."""
    dims, several = r.dims, r.several
    lines = [
        "",
        "## Latency per image (Tables 6, 7 and 9), ms",
        "",
        "Per image from the file to the class, as the paper times it; `decode` (read, decode, "
        "preprocess) and `invoke` (set_tensor, invoke, get_tensor) are the p50 of its two parts; "
        "`timed on` is the device, or `host` for a model timed on this machine beside a remote "
        "device; peak RSS is the model's own runner process.",
        "",
        r.note,
        "",
        f"| model | {_config_head(dims, several)}variant | threads | first | mean "
        "| std | ste | 95% CI of the mean | p50 | p99 | decode | invoke | peak RSS MB | timed on "
        "| kernels |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        + "---|" * (len(dims) + several),
    ]
    latency = results.latency
    for _, row in r.table.iterrows():
        mean, ste = row[latency("mean")], row[latency("ste")]
        ci = (
            f"{mean - Z95 * ste:.3f} – {mean + Z95 * ste:.3f}"
            if not (math.isnan(mean) or math.isnan(ste))
            else "–"
        )
        lines.append(
            f"| {row[col.MODEL]} | {_config(row, dims, several)} | {row[col.VARIANT]} | "
            f"{row[col.THREADS]} | "
            + " | ".join(_fmt(row[latency(m)], ".3f") for m in ("first", "mean", "std", "ste"))
            + f" | {ci} | {_fmt(row[latency('p50')], '.3f')} | "
            f"{_fmt(row[latency('p99')], '.3f')} | "
            f"{_fmt(row[results.decode('p50')], '.3f')} | "
            f"{_fmt(row[results.invoke('p50')], '.3f')} | "
            f"{_fmt(row[results.PEAK_RSS], '.1f')} | {row[col.TIMED_ON] or '–'} | "
            f"{row[col.KERNELS] or '–'} |"
        )
    return lines


def sizes_table(r: Report) -> list[str]:
    """Each run variant's file size, raw and gzip-compressed, and with clustered runs its
    unique weights."""
    dims, several = r.dims, r.several
    clustered = has_clusters(r.table)  # then each file's unique weights beside its sizes
    lines = [
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
    for _, row in r.table.iterrows():
        lines.append(
            f"| {row[col.MODEL]} | {_config(row, dims, several)} | {row[col.VARIANT]} | "
            f"{_fmt(row[results.SIZE] / 1024, '.1f')} | {_fmt(row[results.GZIP] / 1024, '.1f')} |"
            + (f" {_fmt(row[UNIQUE_WEIGHTS], '.0f')} |" if clustered else "")
        )
    return lines


def unfinished_runs(r: Report) -> list[str]:
    """The runs that did not finish, with their status and error, when there are any."""
    table = r.table
    unfinished = table[table[col.STATUS] != "FINISHED"].drop_duplicates(col.RUN_ID)
    if not len(unfinished):
        return []
    lines = ["", "## Runs that did not finish", ""]
    for _, row in unfinished.iterrows():
        lines.append(
            f"- {row[col.RUN_NAME]} ({row[col.RUN_ID]}): {row[col.STATUS]} "
            f"{row[col.ERROR]}".rstrip()
        )
    return lines


def plot_list(r: Report) -> list[str]:
    """Links to the plots (:func:`~.plots.plot_names`)."""
    return ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in plot_names(r.table)), ""]


SECTIONS = (
    intro,
    within_budget,
    best_table,  # Table 5: the best configuration, with its evidence (best_table.py)
    interleaved_table,  # compare.csv's ratios, where a compare of the sweep was logged
    summary_table,
    accuracy_table,
    latency_table,
    energy.energy_table,  # where runs measured energy (energy.py)
    threads_section,  # where runs swept delegate.threads (threads.py)
    sizes_table,
    unfinished_runs,
    plot_list,
)
