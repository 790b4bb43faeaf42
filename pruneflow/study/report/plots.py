"""The report's plots: accuracy, latency and size against sparsity per model, and the Pareto
front of accuracy against latency (matplotlib, Agg, PNG), every point a configuration's mean
over its runs (summary.csv; error bars its 95% interval, the baseline a line in its tolerance
band); where runs removed channels
(``prune.channels``), latency and MACs against channels too, a line per channels value in the
sparsity plots and the Pareto points labelled by their (sparsity, channels)."""

from __future__ import annotations

from pathlib import Path

from pruneflow import results
from pruneflow.study.report.summary import summary as summarize
from pruneflow.study.report.tables import (
    DEFAULT_TOLERANCE,
    config_label,
    has_channels,
    pareto_front,
)

PLOTS = (
    "accuracy_vs_sparsity.png",
    "latency_vs_sparsity.png",
    "size_vs_sparsity.png",
    "pareto.png",
)
CHANNEL_PLOTS = ("latency_vs_channels.png", "macs_vs_channels.png")  # only with channel runs
STYLES = ("-", "--", ":", "-.")  # one per channels value (or per sparsity, against channels)


def plot_names(table) -> tuple[str, ...]:
    """The PNGs :func:`plots` writes for ``table``: :data:`PLOTS`, and :data:`CHANNEL_PLOTS`
    when a run removed channels."""
    return PLOTS + CHANNEL_PLOTS if has_channels(table) else PLOTS


def _errors(s, column: str):
    """Asymmetric error bars of ``<column>_mean`` from its interval (none where it is NaN)."""
    mean = s[f"{column}_mean"]
    low = (mean - s[f"{column}_ci_low"]).fillna(0.0).clip(lower=0.0)
    high = (s[f"{column}_ci_high"] - mean).fillna(0.0).clip(lower=0.0)
    return [low.to_numpy(), high.to_numpy()]


def plots(table, out: Path, tolerance: float = DEFAULT_TOLERANCE, summary=None) -> list[Path]:
    """The PNGs of :func:`plot_names` into ``out``; the sparsity plots and the Pareto front
    from ``summary`` (:func:`~pruneflow.study.report.summary.summary` of ``table``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = summarize(table) if summary is None else summary
    agg = agg.assign(
        gzip_kb=agg[f"{results.GZIP}_mean"] / 1024, size_kb=agg[f"{results.SIZE}_mean"] / 1024
    )
    models = list(dict.fromkeys(table["model"]))
    variants = list(dict.fromkeys(table["variant"]))
    chan = has_channels(table)
    # the sparsity plots: one line per variant, and with channel runs per (variant, channels)
    levels = sorted(table["channels"].unique()) if chan else [None]
    paths = []

    def lines(g):
        """(variant, label suffix, linestyle, rows) per line of a sparsity plot."""
        for v in variants:
            for i, c in enumerate(levels):
                s = g[g["variant"] == v]
                if c is None:
                    yield v, "", "-", s
                else:
                    s = s[s["channels"] == c]
                    if len(s):
                        yield v, f" c{c:g}", STYLES[i % len(STYLES)], s

    def per_model(name: str, ylabel: str, draw, x: str = "target_sparsity", frame=agg) -> None:
        """A panel per model: ``draw(ax, rows of frame for the model, its model)``."""
        fig, axes = plt.subplots(
            1, len(models), figsize=(5.5 * len(models), 4), squeeze=False, constrained_layout=True
        )
        for ax, model in zip(axes[0], models, strict=True):
            draw(ax, frame[frame["model"] == model].sort_values(x, kind="stable"), model)
            ax.set_title(model)
            ax.set_xlabel(x.replace("_", " ") if x != "channels" else "target channels removed")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)

    def accuracy(ax, g, model) -> None:
        runs = table[table["model"] == model]
        base = runs.drop_duplicates("run_id") if "run_id" in runs else runs
        base = base["baseline_accuracy"].dropna()
        if len(base):  # the baseline (its mean over the runs' seeds), and what still holds
            b = float(base.mean())
            ax.axhline(b, color="k", lw=1, label="baseline")
            ax.axhspan(
                b - tolerance / 100,
                b,
                color="k",
                alpha=0.08,
                label=f"tolerance, {tolerance:g} points",
            )
        error_lines(ax, g, "accuracy")
        loss = runs[runs["variant"] == variants[0]]
        if chan:
            loss = loss[loss["channels"] == levels[0]]
        loss = loss.groupby("target_sparsity", sort=True)["val_loss"].mean()  # over seeds
        twin = ax.twinx()
        twin.plot(loss.index, loss.values, "k--", alpha=0.5, label="val loss")
        twin.set_ylabel("validation loss (keras, dashed)" + (f", c{levels[0]:g}" if chan else ""))

    def error_lines(ax, g, measure: str) -> None:
        """A line per variant (and channels value) of ``<measure>_mean`` against sparsity,
        its 95% interval as error bars; a variant keeps one color across its lines."""
        colors = {}
        for v, suffix, style, s in lines(g):
            container = ax.errorbar(
                s["target_sparsity"],
                s[f"{measure}_mean"],
                yerr=_errors(s, measure),
                fmt=style,
                marker="o",
                capsize=3,
                label=v + suffix,
                color=colors.get(v),
            )
            colors.setdefault(v, container.lines[0].get_color())

    def latency(ax, g, model) -> None:
        error_lines(ax, g, "latency_p50")
        ax.set_yscale("log")

    def size(ax, g, model) -> None:
        colors = {}
        for v, suffix, style, s in lines(g):
            (line,) = ax.plot(
                s["target_sparsity"], s["size_kb"], style, alpha=0.4, color=colors.get(v)
            )
            colors.setdefault(v, line.get_color())
            ax.plot(
                s["target_sparsity"],
                s["gzip_kb"],
                style,
                marker="o",
                color=line.get_color(),
                label=f"{v}{suffix} (gzip; raw faint)",
            )

    per_model(PLOTS[0], "validation accuracy (mean, 95% CI)", accuracy)
    per_model(PLOTS[1], "latency p50 per image, ms (mean, 95% CI)", latency)
    per_model(PLOTS[2], "size, KB", size)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for ax, cost, label in (
        (axes[0], "latency_p50_mean", "latency p50, ms"),
        (axes[1], "gzip_kb", "gzip size, KB"),
    ):
        # a configuration's mean over its runs (seeds)
        points = agg.assign(accuracy=agg["accuracy_mean"]).dropna(subset=[cost, "accuracy"])
        for v in variants:
            s = points[points["variant"] == v]
            ax.scatter(s[cost], s["accuracy"], label=v, s=18)
        # the front over every point: every sparsity and, with channel runs, every channels
        front = pareto_front(points, cost)
        ax.plot(front[cost], front["accuracy"], "k-", alpha=0.6)
        ax.scatter(
            front[cost],
            front["accuracy"],
            facecolors="none",
            edgecolors="k",
            s=70,
            label="Pareto-optimal" + (" (labelled s/c)" if chan else ""),
        )
        if chan:
            for _, r in front.iterrows():
                ax.annotate(
                    config_label(r["target_sparsity"], r["channels"]),
                    (r[cost], r["accuracy"]),
                    textcoords="offset points",
                    xytext=(4, -10),
                    fontsize=6,
                )
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.savefig(out / PLOTS[3], dpi=100)
    plt.close(fig)
    paths.append(out / PLOTS[3])
    if not chan:
        return paths

    # against channels: the median over a configuration's runs (thread counts, repeats)
    sparsities = sorted(table["target_sparsity"].dropna().unique())

    def by_channels(s, column: str):
        return s.groupby("channels", sort=True)[column].median()

    def latency_channels(ax, g, model) -> None:
        colors = {}
        for v in variants:
            for i, sp in enumerate(sparsities):
                s = g[(g["variant"] == v) & (g["target_sparsity"] == sp)]
                if not len(s):
                    continue
                y = by_channels(s, results.latency("p50"))
                (line,) = ax.plot(
                    y.index,
                    y.values,
                    STYLES[i % len(STYLES)],
                    marker="o",
                    label=f"{v} s{sp:g}",
                    color=colors.get(v),
                )
                colors.setdefault(v, line.get_color())
        ax.set_yscale("log")

    def macs_channels(ax, g, model) -> None:
        runs = g.drop_duplicates("run_id")  # MACs are the run's, one per run
        for i, sp in enumerate(sparsities):
            s = runs[runs["target_sparsity"] == sp]
            if not len(s):
                continue
            y = by_channels(s, "macs") / 1e6
            ax.plot(y.index, y.values, STYLES[i % len(STYLES)], marker="o", label=f"s{sp:g}")
        base = runs["baseline_macs"].dropna()
        if len(base):
            ax.axhline(float(base.median()) / 1e6, color="k", alpha=0.5, ls=":", label="baseline")

    per_model(CHANNEL_PLOTS[0], "latency p50 per image, ms", latency_channels, "channels", table)
    per_model(CHANNEL_PLOTS[1], "MACs per image, millions", macs_channels, "channels", table)
    return paths
