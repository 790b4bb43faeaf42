"""The report as markdown: the paper's tables (accuracy, latency with its interval, size) and
the best sparsity per model."""

from __future__ import annotations

import math

from pruneflow import results
from pruneflow.study.report.plots import PLOTS
from pruneflow.study.report.selection import Selection
from pruneflow.study.report.tables import fmt as _fmt

Z95 = 1.959964  # two-sided 95% normal quantile: the mean's confidence interval


def markdown(selection: Selection, table, best, tolerance: float) -> str:
    lines = [
        f"# pruneflow report: {selection.title}",
        "",
        f"Store {selection.uri}, experiment {selection.experiment!r}: "
        f"{table['run_id'].nunique()} runs, {table['model'].nunique()} models. Accuracy is top-1 "
        "on the whole validation split; latency per image (the first apart), statistics over "
        "the rest; `–` marks a value the run does not have (failed or partial runs).",
        "",
        f"## Best sparsity per model (Table 5): the highest within {tolerance:g} accuracy points "
        "of the baseline",
        "",
        "| model | variant | baseline accuracy | best sparsity | accuracy there |",
        "|---|---|---|---|---|",
    ]
    for (model, variant), b in best.items():
        chosen = _fmt(b["sparsity"], "g") if not b["why"] else b["why"]
        lines.append(
            f"| {model} | {variant} | {_fmt(b.get('baseline'))} | {chosen} | "
            f"{_fmt(b.get('accuracy', math.nan))} |"
        )
    lines += ["", "## Accuracy per variant (Table 8)", ""]
    variants = list(dict.fromkeys(table["variant"]))
    lines += [
        "| model | sparsity | measured | images | " + " | ".join(variants) + " |",
        "|---|---|---|---|" + "---|" * len(variants),
    ]
    for (model, sparsity, _), g in table.groupby(
        ["model", "target_sparsity", "run_id"], sort=False
    ):
        acc = dict(zip(g["variant"], g["accuracy"], strict=True))
        first = g.iloc[0]
        lines.append(
            f"| {model} | {_fmt(sparsity, 'g')} | {_fmt(first['measured_sparsity'], '.3f')} | "
            f"{_fmt(first['val_images'], '.0f')} | "
            + " | ".join(_fmt(acc.get(v, math.nan)) for v in variants)
            + " |"
        )
    lines += [
        "",
        "## Latency per image (Tables 6, 7 and 9), ms",
        "",
        "Per image from the file to the class, as the paper times it; `decode` (read, decode, "
        "preprocess) and `invoke` (set_tensor, invoke, get_tensor) are the p50 of its two parts; "
        "`timed on` is the device, or `host` for a model timed on this machine beside a remote "
        "device; peak RSS is the model's own runner process.",
        "",
        "| model | sparsity | variant | threads | first | mean | std | ste | 95% CI of the mean "
        "| p50 | p99 | decode | invoke | peak RSS MB | timed on | kernels |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        mean, ste = r[results.latency("mean")], r[results.latency("ste")]
        ci = (
            f"{mean - Z95 * ste:.3f} – {mean + Z95 * ste:.3f}"
            if not (math.isnan(mean) or math.isnan(ste))
            else "–"
        )
        lines.append(
            f"| {r['model']} | {_fmt(r['target_sparsity'], 'g')} | {r['variant']} | "
            f"{r['threads']} | "
            + " | ".join(
                _fmt(r[results.latency(m)], ".3f") for m in ("first", "mean", "std", "ste")
            )
            + f" | {ci} | {_fmt(r[results.latency('p50')], '.3f')} | "
            f"{_fmt(r[results.latency('p99')], '.3f')} | "
            f"{_fmt(r[results.decode('p50')], '.3f')} | {_fmt(r[results.invoke('p50')], '.3f')} | "
            f"{_fmt(r[results.PEAK_RSS], '.1f')} | {r['timed_on'] or '–'} | "
            f"{r['kernels'] or '–'} |"
        )
    lines += _threads_table(table)
    lines += [
        "",
        "## Sizes, KB (raw and gzip-compressed: what pruning's zeros save)",
        "",
        "| model | sparsity | variant | raw | gzip |",
        "|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['model']} | {_fmt(r['target_sparsity'], 'g')} | {r['variant']} | "
            f"{_fmt(r[results.SIZE] / 1024, '.1f')} | {_fmt(r[results.GZIP] / 1024, '.1f')} |"
        )
    unfinished = table[table["status"] != "FINISHED"].drop_duplicates("run_id")
    if len(unfinished):
        lines += ["", "## Runs that did not finish", ""]
        for _, r in unfinished.iterrows():
            lines.append(f"- {r['run_name']} ({r['run_id']}): {r['status']} {r['error']}".rstrip())
    lines += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in PLOTS), ""]
    return "\n".join(lines)


def _threads_table(table) -> list[str]:
    """p50 per thread count side by side, when the runs swept delegate.threads (the .tflite
    variants: the Keras model does not take LiteRT's thread count)."""
    table = table[table["variant"] != results.KERAS]  # TensorFlow ignores delegate.threads
    counts = list(dict.fromkeys(table["threads"]))
    if len(counts) < 2:
        return []
    lines = [
        "",
        "## Threads (delegate.threads): p50 per image, ms",
        "",
        "| model | sparsity | variant | timed on | " + " | ".join(counts) + " |",
        "|---|---|---|---|" + "---|" * len(counts),
    ]
    p50 = results.latency("p50")
    for (model, sparsity, variant, timed_on), g in table.groupby(
        ["model", "target_sparsity", "variant", "timed_on"], sort=False
    ):
        by = dict(zip(g["threads"], g[p50], strict=True))
        lines.append(
            f"| {model} | {_fmt(sparsity, 'g')} | {variant} | {timed_on or '–'} | "
            + " | ".join(_fmt(by.get(c, math.nan), ".3f") for c in counts)
            + " |"
        )
    return lines


# -- plots ----------------------------------------------------------------------------------------
