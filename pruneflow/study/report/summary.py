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

import numpy as np

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


def _dropna(v):
    return v[~np.isnan(v)]


def _mean(v) -> float:
    """The mean of ``v``'s numbers (NaN left out; none: NaN), summed as pandas does."""
    v = _dropna(v)
    return float(v.sum(dtype=np.float64) / np.float64(len(v))) if len(v) else math.nan


def _first(v) -> float:
    v = _dropna(v)
    return float(v[0]) if len(v) else math.nan


def _median(v) -> float:
    v = _dropna(v)
    return float(np.median(v)) if len(v) else math.nan


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
    # each group's rows as positions into numpy columns (a DataFrame per group cost seconds
    # on 1,000 runs), in the order of first appearance: the table's, as groupby(sort=False)
    codes = table.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(codes.max() + 2 if len(codes) else 1))
    numbers = (
        "accuracy",
        "seed",
        results.ACCURACY_CI_LOW,
        results.ACCURACY_CI_HIGH,
        P50,
        "baseline_accuracy",
        *(results.VS_BASELINE[k] for k in ("delta", "ci_low", "ci_high")),
        "val_images",
        results.SIZE,
        results.GZIP,
        "macs",
    )
    column = {
        c: table[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in numbers if c in table
    }
    key_values = [table[k].to_numpy() for k in keys]
    out = []
    for i in range(len(starts) - 1):
        at = order[starts[i] : starts[i + 1]]  # the group's rows, in the table's order
        row = {k: values[at[0]] for k, values in zip(keys, key_values, strict=True)}
        ok = at[~np.isnan(column["accuracy"][at])]

        def of(name: str, rows=at):
            """The column ``name`` at ``rows`` (empty where the table lacks it)."""
            return column[name][rows] if name in column else np.empty(0)

        acc = t_interval(of("accuracy", ok))
        row["n_runs"] = acc["n"]
        seeds = _dropna(of("seed", ok))
        row["seeds"] = " ".join(str(int(s)) for s in sorted(set(seeds)))
        row["accuracy_mean"], row["accuracy_std"] = acc["mean"], acc["std"]
        if acc["n"] == 1:  # one run: its own interval over the validation images
            row["accuracy_ci_low"] = _first(of(results.ACCURACY_CI_LOW, ok))
            row["accuracy_ci_high"] = _first(of(results.ACCURACY_CI_HIGH, ok))
        else:
            row["accuracy_ci_low"], row["accuracy_ci_high"] = acc["ci_low"], acc["ci_high"]
        lat = t_interval(of(P50))
        row["latency_p50_mean"], row["latency_p50_std"] = lat["mean"], lat["std"]
        row["latency_p50_ci_low"], row["latency_p50_ci_high"] = lat["ci_low"], lat["ci_high"]
        row["baseline_accuracy_mean"] = _mean(of("baseline_accuracy", ok))
        row.update(_paired(of, ok))
        row["val_images"] = _mean(of("val_images"))
        for measure in (results.SIZE, results.GZIP):
            row[f"{measure}_mean"] = _mean(of(measure))
        row["macs"] = _median(of("macs"))
        out.append(row)
    return pd.DataFrame(out, columns=[*keys, *SUMMARY_COLUMNS])


def _paired(of, runs) -> dict[str, float]:
    """The ``vs_baseline_*`` of a configuration's ``runs`` (positions; ``of(column, runs)``
    their values, see :func:`summary`)."""
    low_col, high_col = results.VS_BASELINE["ci_low"], results.VS_BASELINE["ci_high"]
    delta_col = results.VS_BASELINE["delta"]
    lows = of(low_col, runs)
    paired = runs[~np.isnan(lows)] if len(lows) else runs[:0]
    n = len(paired)

    def at(column: str):  # a column the table lacks: NaN for every run
        values = of(column, paired)
        return values if len(values) == n else np.full(n, math.nan)

    row = {"vs_baseline_n": n, "vs_baseline_delta_mean": _mean(at(delta_col))}
    if n <= 1:
        row["vs_baseline_ci_low"] = _first(at(low_col))
        row["vs_baseline_ci_high"] = _first(at(high_col))
        return row
    seeds = t_interval(at(delta_col))
    row["vs_baseline_ci_low"] = min(_mean(at(low_col)), seeds["ci_low"])
    row["vs_baseline_ci_high"] = max(_mean(at(high_col)), seeds["ci_high"])
    return row
