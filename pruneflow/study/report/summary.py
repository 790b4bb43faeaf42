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
from pruneflow.study.report import columns as col
from pruneflow.study.report.selection import DIMENSION_COLUMNS, DIMENSIONS

STATS = (col.mean, col.std, col.ci_low, col.ci_high)  # a mean, its spread, its interval
DELTA, LOW, HIGH = (results.VS_BASELINE[k] for k in ("delta", "ci_low", "ci_high"))
SUMMARY_COLUMNS = (  # after the configuration's own columns (:func:`config_columns`)
    col.N_RUNS,
    col.SEEDS,
    *(stat(results.ACCURACY) for stat in STATS),
    *(stat(col.LATENCY_P50) for stat in STATS),
    col.mean(col.BASELINE_ACCURACY),
    col.VS_BASELINE_N,
    col.mean(DELTA),
    LOW,  # the aggregated paired bounds keep the metrics' names
    HIGH,
    col.VAL_IMAGES,
    col.mean(results.SIZE),
    col.mean(results.GZIP),
    col.MACS,
)
# Beside them where some run measured energy (device.energy; no empty columns otherwise): the
# energy per image over the runs like the accuracy (one run: its own interval), the means of
# what it is made of (above idle, power running and idle)
ENERGY_SUMMARY = (
    *(stat(results.ENERGY) for stat in STATS),
    *(col.mean(m) for m in col.ENERGY_MEANS),
)
# The runs.csv columns a configuration's numbers are made of
NUMBERS = (
    results.ACCURACY,
    col.SEED,
    results.ACCURACY_CI_LOW,
    results.ACCURACY_CI_HIGH,
    col.P50,
    col.BASELINE_ACCURACY,
    DELTA,
    LOW,
    HIGH,
    col.VAL_IMAGES,
    results.SIZE,
    results.GZIP,
    col.MACS,
    results.ENERGY,
    results.ENERGY_CI_LOW,
    results.ENERGY_CI_HIGH,
    *col.ENERGY_MEANS,
)


def config_columns(table) -> list[str]:
    """The columns that name a configuration and variant in ``table`` (those it has, and
    every dimension: :func:`summary` makes those a table lacks 0, off)."""
    swept = [c for c in table if c.startswith("params.")]
    wanted = [col.MODEL, col.TARGET_SPARSITY, *DIMENSION_COLUMNS, *swept, col.THREADS, col.VARIANT]
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
      sizes and the median MACs;
    - where some run measured energy (and only there: :data:`ENERGY_SUMMARY`), ``energy_mj_mean``,
      ``_std`` and its 95% interval over the runs that measured it (one run: its own interval),
      and the mean energy above idle, power and idle power.
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
    column = {
        c: table[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in NUMBERS if c in table
    }
    key_values = [table[k].to_numpy() for k in keys]
    out = []
    for i in range(len(starts) - 1):
        at = order[starts[i] : starts[i + 1]]  # the group's rows, in the table's order
        row = {k: values[at[0]] for k, values in zip(keys, key_values, strict=True)}

        def of(name: str, rows=at):
            """The column ``name`` at ``rows`` (empty where the table lacks it)."""
            return column[name][rows] if name in column else np.empty(0)

        out.append({**row, **_numbers(of, at)})
    energy = ENERGY_SUMMARY if results.ENERGY in table else ()
    return pd.DataFrame(out, columns=[*keys, *SUMMARY_COLUMNS, *energy])


def _numbers(of, runs) -> dict[str, float]:
    """The :data:`SUMMARY_COLUMNS` of a configuration's ``runs`` (positions; ``of(column,
    runs)`` their values, see :func:`summary`)."""
    ok = runs[~np.isnan(of(results.ACCURACY))]  # the runs with an accuracy
    row = _accuracy(of, ok)
    lat, p50 = t_interval(of(col.P50)), col.LATENCY_P50  # one run: its p50, NaN interval
    row[col.mean(p50)], row[col.std(p50)] = lat["mean"], lat["std"]
    row[col.ci_low(p50)], row[col.ci_high(p50)] = lat["ci_low"], lat["ci_high"]
    row[col.mean(col.BASELINE_ACCURACY)] = _mean(of(col.BASELINE_ACCURACY, ok))
    row.update(_paired(of, ok))
    row[col.VAL_IMAGES] = _mean(of(col.VAL_IMAGES))
    for measure in (results.SIZE, results.GZIP):
        row[col.mean(measure)] = _mean(of(measure))
    row[col.MACS] = _median(of(col.MACS))
    row.update(_energy(of, runs))
    return row


def _energy(of, runs) -> dict[str, float]:
    """The :data:`ENERGY_SUMMARY` of a configuration's ``runs``: over the runs that measured the
    energy per image, its mean, spread and 95% interval (Student's t; one run: its own
    interval over its power samples), and the means of its parts (NaN where none measured)."""
    energy = of(results.ENERGY, runs)
    measured = runs[~np.isnan(energy)] if len(energy) else runs[:0]
    stats = t_interval(of(results.ENERGY, measured))
    if stats["n"] == 1:
        low = _first(of(results.ENERGY_CI_LOW, measured))
        high = _first(of(results.ENERGY_CI_HIGH, measured))
    else:
        low, high = stats["ci_low"], stats["ci_high"]
    row = {
        col.mean(results.ENERGY): stats["mean"],
        col.std(results.ENERGY): stats["std"],
        col.ci_low(results.ENERGY): low,
        col.ci_high(results.ENERGY): high,
    }
    for part in col.ENERGY_MEANS:
        row[col.mean(part)] = _mean(of(part, measured))
    return row


def _accuracy(of, ok) -> dict[str, float]:
    """The runs ``ok`` (those with an accuracy), their seeds, their mean accuracy, its spread
    and 95% interval: Student's t over the runs, or with one run its own Wilson interval."""
    acc = t_interval(of(results.ACCURACY, ok))
    seeds = _dropna(of(col.SEED, ok))
    row = {
        col.N_RUNS: acc["n"],
        col.SEEDS: " ".join(str(int(s)) for s in sorted(set(seeds))),
        col.mean(results.ACCURACY): acc["mean"],
        col.std(results.ACCURACY): acc["std"],
    }
    if acc["n"] == 1:  # one run: its own interval over the validation images
        low = _first(of(results.ACCURACY_CI_LOW, ok))
        high = _first(of(results.ACCURACY_CI_HIGH, ok))
    else:
        low, high = acc["ci_low"], acc["ci_high"]
    row[col.ci_low(results.ACCURACY)], row[col.ci_high(results.ACCURACY)] = low, high
    return row


def _paired(of, runs) -> dict[str, float]:
    """The ``vs_baseline_*`` of a configuration's ``runs`` (positions; ``of(column, runs)``
    their values, see :func:`summary`)."""
    lows = of(LOW, runs)
    paired = runs[~np.isnan(lows)] if len(lows) else runs[:0]
    n = len(paired)

    def at(column: str):  # a column the table lacks: NaN for every run
        values = of(column, paired)
        return values if len(values) == n else np.full(n, math.nan)

    row = {col.VS_BASELINE_N: n, col.mean(DELTA): _mean(at(DELTA))}
    if n <= 1:
        row[LOW] = _first(at(LOW))
        row[HIGH] = _first(at(HIGH))
        return row
    seeds = t_interval(at(DELTA))
    row[LOW] = min(_mean(at(LOW)), seeds["ci_low"])
    row[HIGH] = max(_mean(at(HIGH)), seeds["ci_high"])
    return row
