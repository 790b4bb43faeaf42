"""The report's numbers over seeds: one row per configuration and variant (summary.csv), the
runs of different seeds (or repeats) of one configuration aggregated, each mean with a 95%
interval (:mod:`pruneflow.stats`).

A configuration is a model, target sparsity, its dimensions
(:data:`~pruneflow.study.report.selection.DIMENSIONS`: channels, clusters), every other setting
the runs sweep (:func:`~pruneflow.study.report.selection.swept_params`: ``params.<key>``
columns), and the thread count; what is left to differ between its runs is the seed (or
nothing: a rerun).
"""

from __future__ import annotations

import math

from pruneflow import results
from pruneflow.stats import t_interval
from pruneflow.study.report.selection import DIMENSION_COLUMNS, DIMENSIONS

P50 = results.latency("p50")
SUMMARY_COLUMNS = (  # after the configuration's own columns (:func:`config_columns`)
    "n_runs",
    "seeds",
    "accuracy_mean",
    "accuracy_std",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "latency_p50_mean",
    "latency_p50_std",
    "latency_p50_ci_low",
    "latency_p50_ci_high",
    "baseline_accuracy_mean",
    "vs_baseline_n",
    "vs_baseline_delta_mean",
    "vs_baseline_ci_low",
    "vs_baseline_ci_high",
    "val_images",
    "size_bytes_mean",
    "gzip_bytes_mean",
    "macs",
)


def config_columns(table) -> list[str]:
    """The columns that name a configuration and variant in ``table`` (those it has, and
    every dimension: :func:`summary` makes those a table lacks 0, off)."""
    swept = [c for c in table if c.startswith("params.")]
    wanted = ["model", "target_sparsity", *DIMENSION_COLUMNS, *swept, "threads", "variant"]
    return [c for c in wanted if c in table or c in DIMENSION_COLUMNS]


def _mean(s) -> float:
    s = s.dropna()
    return float(s.mean()) if len(s) else math.nan


def _first(s) -> float:
    s = s.dropna()
    return float(s.iloc[0]) if len(s) else math.nan


def summary(table):
    """One row per configuration and variant of ``table`` (:func:`rows`), with
    :data:`SUMMARY_COLUMNS`:

    - ``n_runs``: the runs with an accuracy; ``seeds`` their seeds (``1 2 3``);
    - ``accuracy_mean``, ``_std`` and the 95% interval: with several runs, Student's t over
      the runs (:func:`~pruneflow.stats.t_interval`); with one, the run's own Wilson interval
      over its images (NaN for a run made before it was logged);
    - ``latency_p50_mean``, ``_std`` and its t interval over the runs (one run: its p50, NaN
      interval);
    - the paired comparison with the baseline (``vs_baseline_*``) over the ``vs_baseline_n``
      runs that logged it: one run, its own Newcombe interval; several (seeds), the lower bound
      is the lower of two: the mean of the per-seed lower bounds (what one split can resolve)
      and the t interval's of the per-seed deltas (how much seeds disagree); the upper bound
      likewise the higher. A configuration holds only when both hold, so neither a split's few
      images nor two lucky seeds make it;
    - ``baseline_accuracy_mean`` (each seed has its own baseline), ``val_images``, the mean
      sizes and the median MACs.
    """
    import pandas as pd

    table = table.assign(  # a dimension the table lacks, or a run's missing value: 0, off
        **{
            d.column: table[d.column].fillna(0) if d.column in table else d.kind(0)
            for d in DIMENSIONS
        }
    )
    keys = config_columns(table)
    out = []
    for key, g in table.groupby(keys, sort=False, dropna=False):  # the table's order
        row = dict(zip(keys, key, strict=True))
        ok = g[g["accuracy"].notna()]
        acc = t_interval(ok["accuracy"])
        row["n_runs"] = acc["n"]
        seeds = ok["seed"].dropna() if "seed" in ok else []
        row["seeds"] = " ".join(str(int(s)) for s in sorted(set(seeds)))
        row["accuracy_mean"], row["accuracy_std"] = acc["mean"], acc["std"]
        if acc["n"] == 1:  # one run: its own interval over the validation images
            none = pd.Series([], dtype=float)  # a table without the intervals
            row["accuracy_ci_low"] = _first(ok.get(results.ACCURACY_CI_LOW, none))
            row["accuracy_ci_high"] = _first(ok.get(results.ACCURACY_CI_HIGH, none))
        else:
            row["accuracy_ci_low"], row["accuracy_ci_high"] = acc["ci_low"], acc["ci_high"]
        lat = t_interval(g[P50]) if P50 in g else t_interval([])
        row["latency_p50_mean"], row["latency_p50_std"] = lat["mean"], lat["std"]
        row["latency_p50_ci_low"], row["latency_p50_ci_high"] = lat["ci_low"], lat["ci_high"]
        row["baseline_accuracy_mean"] = _mean(ok["baseline_accuracy"])
        row.update(_paired(ok))
        row["val_images"] = _mean(g["val_images"]) if "val_images" in g else math.nan
        for measure in (results.SIZE, results.GZIP):
            row[f"{measure}_mean"] = _mean(g[measure]) if measure in g else math.nan
        row["macs"] = float(g["macs"].median()) if "macs" in g else math.nan
        out.append(row)
    return pd.DataFrame(out, columns=[*keys, *SUMMARY_COLUMNS])


def _paired(runs) -> dict[str, float]:
    """The ``vs_baseline_*`` of a configuration's runs (see :func:`summary`)."""
    low_col, high_col = results.VS_BASELINE["ci_low"], results.VS_BASELINE["ci_high"]
    delta_col = results.VS_BASELINE["delta"]
    runs = runs.assign(**{c: math.nan for c in (low_col, high_col, delta_col) if c not in runs})
    paired = runs[runs[low_col].notna()]
    n = len(paired)
    row = {"vs_baseline_n": n, "vs_baseline_delta_mean": _mean(paired[delta_col])}
    if n <= 1:
        row["vs_baseline_ci_low"] = _first(paired[low_col])
        row["vs_baseline_ci_high"] = _first(paired[high_col])
        return row
    seeds = t_interval(paired[delta_col])
    row["vs_baseline_ci_low"] = min(_mean(paired[low_col]), seeds["ci_low"])
    row["vs_baseline_ci_high"] = max(_mean(paired[high_col]), seeds["ci_high"])
    return row
