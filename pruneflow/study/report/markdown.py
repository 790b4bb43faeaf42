"""The report as markdown: the paper's tables (accuracy, latency with its interval, size) and
the best sparsity per model; where runs removed channels (``prune.channels``), a channels
column beside every sparsity and the best (sparsity, channels) configuration instead."""

from __future__ import annotations

import math

from pruneflow import results
from pruneflow.study.report.plots import plot_names
from pruneflow.study.report.selection import Selection
from pruneflow.study.report.tables import fmt as _fmt
from pruneflow.study.report.tables import has_channels

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
    ]
    chan = has_channels(table)  # only then a channels column beside every sparsity
    lines += _best_table(table, best, tolerance)
    lines += ["", "## Accuracy per variant (Table 8)", ""]
    variants = list(dict.fromkeys(table["variant"]))
    macs = "macs" in table and bool(table["macs"].notna().any())  # MACs per run, where logged
    head = (
        ["model", "sparsity", "channels", "measured sparsity", "measured channels", "images"]
        if chan
        else ["model", "sparsity", "measured", "images"]
    ) + (["MMACs"] if macs else [])
    lines += [
        "| " + " | ".join(head + variants) + " |",
        "|" + "---|" * (len(head) + len(variants)),
    ]
    for (model, sparsity, _), g in table.groupby(
        ["model", "target_sparsity", "run_id"], sort=False
    ):
        acc = dict(zip(g["variant"], g["accuracy"], strict=True))
        first = g.iloc[0]
        cells = [model, _fmt(sparsity, "g")]
        if chan:
            cells.append(_fmt(first["channels"], "g"))
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
        f"| model | sparsity | {'channels | ' if chan else ''}variant | threads | first | mean "
        "| std | ste | 95% CI of the mean | p50 | p99 | decode | invoke | peak RSS MB | timed on "
        "| kernels |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * chan,
    ]
    for _, r in table.iterrows():
        mean, ste = r[results.latency("mean")], r[results.latency("ste")]
        ci = (
            f"{mean - Z95 * ste:.3f} – {mean + Z95 * ste:.3f}"
            if not (math.isnan(mean) or math.isnan(ste))
            else "–"
        )
        lines.append(
            f"| {r['model']} | {_config(r, chan)} | {r['variant']} | {r['threads']} | "
            + " | ".join(
                _fmt(r[results.latency(m)], ".3f") for m in ("first", "mean", "std", "ste")
            )
            + f" | {ci} | {_fmt(r[results.latency('p50')], '.3f')} | "
            f"{_fmt(r[results.latency('p99')], '.3f')} | "
            f"{_fmt(r[results.decode('p50')], '.3f')} | {_fmt(r[results.invoke('p50')], '.3f')} | "
            f"{_fmt(r[results.PEAK_RSS], '.1f')} | {r['timed_on'] or '–'} | "
            f"{r['kernels'] or '–'} |"
        )
    lines += _threads_table(table, chan)
    lines += [
        "",
        "## Sizes, KB (raw and gzip-compressed: what pruning's zeros save)",
        "",
        f"| model | sparsity | {'channels | ' if chan else ''}variant | raw | gzip |",
        "|---|---|---|---|---|" + "---|" * chan,
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['model']} | {_config(r, chan)} | {r['variant']} | "
            f"{_fmt(r[results.SIZE] / 1024, '.1f')} | {_fmt(r[results.GZIP] / 1024, '.1f')} |"
        )
    unfinished = table[table["status"] != "FINISHED"].drop_duplicates("run_id")
    if len(unfinished):
        lines += ["", "## Runs that did not finish", ""]
        for _, r in unfinished.iterrows():
            lines.append(f"- {r['run_name']} ({r['run_id']}): {r['status']} {r['error']}".rstrip())
    lines += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in plot_names(table)), ""]
    return "\n".join(lines)


def _config(r, chan: bool) -> str:
    """A row's sparsity cell, and its channels cell when the study removed channels."""
    sparsity = _fmt(r["target_sparsity"], "g")
    return f"{sparsity} | {_fmt(r['channels'], 'g')}" if chan else sparsity


def _best_table(table, best, tolerance: float) -> list[str]:
    """Table 5: the best sparsity per model and variant, or with channel runs the best
    (sparsity, channels) configuration (:func:`~pruneflow.study.report.tables.best_sparsity`)."""
    if not has_channels(table):
        lines = [
            f"## Best sparsity per model (Table 5): the highest within {tolerance:g} accuracy "
            "points of the baseline",
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
        return lines
    lines = [
        f"## Best configuration per model (Table 5): the fewest MACs within {tolerance:g} "
        "accuracy points of the baseline",
        "",
        "Of the (sparsity, channels) pairs whose accuracy holds, the one with the fewest "
        "multiply-accumulates per image (ties, or MACs not logged: the higher sparsity, then the "
        "more channels removed, then the better accuracy); a model without channel runs keeps "
        "the highest sparsity that holds. p50 is the median over the configuration's runs.",
        "",
        "| model | variant | baseline accuracy | best sparsity | channels | MMACs | p50 ms "
        "| accuracy there |",
        "|---|---|---|---|---|---|---|---|",
    ]
    p50 = results.latency("p50")
    for (model, variant), b in best.items():
        if b["why"]:
            chosen, cost = f"{b['why']} | – | –", "–"
        else:
            at = table[
                (table["model"] == model)
                & (table["variant"] == variant)
                & (table["target_sparsity"] == b["sparsity"])
                & (table["channels"] == b["channels"])
            ]
            chosen = f"{_fmt(b['sparsity'], 'g')} | {_fmt(b['channels'], 'g')} | "
            chosen += _fmt(b.get("macs", math.nan) / 1e6, ".3f")
            cost = _fmt(float(at[p50].median()), ".3f")
        lines.append(
            f"| {model} | {variant} | {_fmt(b.get('baseline'))} | {chosen} | {cost} | "
            f"{_fmt(b.get('accuracy', math.nan))} |"
        )
    return lines


def _threads_table(table, chan: bool = False) -> list[str]:
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
        f"| model | sparsity | {'channels | ' if chan else ''}variant | timed on | "
        + " | ".join(counts)
        + " |",
        "|---|---|---|---|" + "---|" * chan + "---|" * len(counts),
    ]
    p50 = results.latency("p50")
    # channels in the key: runs at one sparsity with different channels are never one row
    for (model, sparsity, channels, variant, timed_on), g in table.groupby(
        ["model", "target_sparsity", "channels", "variant", "timed_on"], sort=False
    ):
        by = dict(zip(g["threads"], g[p50], strict=True))
        config = _fmt(sparsity, "g") + (f" | {_fmt(channels, 'g')}" if chan else "")
        lines.append(
            f"| {model} | {config} | {variant} | {timed_on or '–'} | "
            + " | ".join(_fmt(by.get(c, math.nan), ".3f") for c in counts)
            + " |"
        )
    return lines
