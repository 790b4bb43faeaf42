"""The threads study's plots (``pruneflow -m +experiment=threads``, or any sweep of
``delegate.threads``): latency p50, and energy per image where runs measured it, against the
thread count, drawn only where the runs used two counts or more. Registered in :mod:`~.plots`'
registry on import (plots.py imports this module last)."""

from __future__ import annotations

from pruneflow import results
from pruneflow.study.report import columns as col
from pruneflow.study.report.energy import has_energy
from pruneflow.study.report.plots import STYLES, Data, _at, _errors, _levels, per_model, plot
from pruneflow.study.report.selection import PARAMS
from pruneflow.study.report.tables import dimension_parts
from pruneflow.study.report.threads import thread_counts

COUNT = "thread_count"  # the thread count as a number, where it is one (not `default`)


def varies_threads(table) -> bool:
    """Whether the runs of ``table`` (runs.csv) used two thread counts or more."""
    return col.THREADS in table and len(_numbers(table[col.THREADS])) > 1


def _numbers(values) -> list[int]:
    return [int(c) for c in thread_counts(values) if c.isdigit()]


def _against_threads(data: Data, stem: str, ylabel: str):
    """Per model, ``<stem>_mean`` of summary.csv against the thread count (log2 axis), its 95%
    interval as error bars where there is one: a line per variant (the ``.tflite`` ones) and,
    where the study varies more, per configuration (sparsity, dimensions, swept settings)."""
    agg = data.agg[data.agg[col.VARIANT] != results.KERAS]
    agg = agg[agg[col.THREADS].astype(str).str.isdigit()]
    frame = agg.assign(**{COUNT: agg[col.THREADS].astype(int)})
    swept = [c for c in frame if c.startswith(PARAMS)]
    keys = [col.TARGET_SPARSITY, *data.columns, *swept]
    groups = _levels(frame, keys)
    counts = _numbers(data.table[col.THREADS])

    def draw(ax, g, model) -> None:
        colors = {}
        for v in data.variants:
            for i, key in enumerate(groups):
                s = g[(g[col.VARIANT] == v) & _at(g, keys, key)].dropna(subset=[col.mean(stem)])
                if not len(s):
                    continue
                config = dict(zip(keys, key, strict=True))
                label = v + (
                    f" s{key[0]:g}"
                    + "".join(f" {p}" for p in dimension_parts(config, data.dims))
                    + "".join(f" {config[c]}" for c in swept)
                    if len(groups) > 1
                    else ""
                )
                container = ax.errorbar(
                    s[COUNT],
                    s[col.mean(stem)],
                    yerr=_errors(s, stem),
                    fmt=STYLES[i % len(STYLES)],
                    marker="o",
                    capsize=3,
                    label=label,
                    color=colors.get(v),
                )
                colors.setdefault(v, container.lines[0].get_color())
        ax.set_xscale("log", base=2)
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.minorticks_off()

    fig = per_model(data, ylabel, draw, COUNT, frame)
    for ax in fig.axes:
        ax.set_xlabel("threads (delegate.threads)")
    return fig


@plot("latency_vs_threads.png", when=varies_threads, timed=True)
def latency_vs_threads(data: Data):
    """Per model, each .tflite variant's p50 per image against the thread count (mean over a
    configuration's runs, 95% interval where there is one)."""
    return _against_threads(data, col.LATENCY_P50, "latency p50 per image, ms (mean, 95% CI)")


@plot("energy_vs_threads.png", when=lambda table: varies_threads(table) and has_energy(table))
def energy_vs_threads(data: Data):
    """Per model, each .tflite variant's energy per image against the thread count (mean over
    a configuration's runs, 95% interval: over its runs, or one run's own)."""
    return _against_threads(data, results.ENERGY, "energy per image, mJ (mean, 95% CI)")


THREAD_PLOTS = ("latency_vs_threads.png",)  # and energy_vs_threads.png where energy was measured
