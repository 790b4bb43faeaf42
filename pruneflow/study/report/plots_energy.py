"""The energy plot (issue #29, ``device.energy``): accuracy against energy per image, drawn only
where some run measured energy (a study without energy has no empty plot). Registered in
:mod:`~.plots`' registry on import (plots.py imports this module last)."""

from __future__ import annotations

from pruneflow import results
from pruneflow.study.report import columns as col
from pruneflow.study.report.energy import has_energy
from pruneflow.study.report.plots import Data, _errors, per_model, plot
from pruneflow.study.report.tables import config_label, pareto_front
from pruneflow.study.report.threads import thread_counts

ENERGY_MEAN, ACCURACY_MEAN = col.mean(results.ENERGY), col.mean(results.ACCURACY)


@plot("energy_vs_accuracy.png", when=has_energy)
def energy_vs_accuracy(data: Data):
    """Per model, each configuration's mean accuracy against its mean energy per image (log
    axis), both with their 95% intervals as error bars (summary.csv), a color per variant, the
    Pareto front (less energy, more accuracy) drawn and circled and labelled by its
    configuration (``s0.5``, with the dimensions the study varies and the thread count where it
    varies: ``s0.5/c0.25 t2``)."""
    points = data.agg.dropna(subset=[ENERGY_MEAN, ACCURACY_MEAN])
    threads = len(thread_counts(points[col.THREADS])) > 1 if col.THREADS in points else False
    accuracy = results.ACCURACY

    def draw(ax, g, model) -> None:
        for v in data.variants:
            s = g[g[col.VARIANT] == v]
            if len(s):
                ax.errorbar(
                    s[ENERGY_MEAN],
                    s[ACCURACY_MEAN],
                    xerr=_errors(s, results.ENERGY),
                    yerr=_errors(s, accuracy),
                    fmt="o",
                    capsize=3,
                    label=v,
                )
        front = pareto_front(g.assign(**{accuracy: g[ACCURACY_MEAN]}), ENERGY_MEAN)
        ax.plot(front[ENERGY_MEAN], front[ACCURACY_MEAN], "k-", alpha=0.6)
        ax.scatter(
            front[ENERGY_MEAN],
            front[ACCURACY_MEAN],
            facecolors="none",
            edgecolors="k",
            s=80,
            label="Pareto-optimal",
        )
        for _, r in front.iterrows():
            label = "s" + config_label(r[col.TARGET_SPARSITY], r, data.dims)
            ax.annotate(
                label + (f" t{r[col.THREADS]}" if threads else ""),
                (r[ENERGY_MEAN], r[ACCURACY_MEAN]),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=6,
            )
        ax.set_xscale("log")

    fig = per_model(data, "accuracy (mean, 95% CI)", draw, ENERGY_MEAN, points)
    for ax in fig.axes:
        ax.set_xlabel("energy per image, mJ (mean, 95% CI)")
    return fig


ENERGY_PLOTS = ("energy_vs_accuracy.png",)
