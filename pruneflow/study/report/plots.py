"""The report's plots: accuracy, latency and size against sparsity per model, and the Pareto
front of accuracy against latency (matplotlib, Agg, PNG), every point a configuration's mean
over its runs (summary.csv; error bars its 95% interval, the baseline a line in its tolerance
band); where runs removed channels (``prune.channels``), latency and MACs against channels too;
where runs clustered weights (``cluster.clusters``), gzip size against clusters; a line per
channels and clusters value in the sparsity plots and the Pareto points labelled by their
configuration (``s0.5/c0.25/cl16``: the dimensions the study varies)."""

from __future__ import annotations

from pathlib import Path

from pruneflow import results
from pruneflow.study.report.summary import summary as summarize
from pruneflow.study.report.tables import (
    DEFAULT_TOLERANCE,
    config_label,
    dimension_parts,
    dimensions,
    has_channels,
    has_clusters,
    matches,
    pareto_front,
)

PLOTS = (
    "accuracy_vs_sparsity.png",
    "latency_vs_sparsity.png",
    "size_vs_sparsity.png",
    "pareto.png",
)
CHANNEL_PLOTS = ("latency_vs_channels.png", "macs_vs_channels.png")  # only with channel runs
CLUSTER_PLOTS = ("gzip_vs_clusters.png",)  # only with clustered runs
DIMENSION_PLOTS = {"channels": CHANNEL_PLOTS, "clusters": CLUSTER_PLOTS}
# one per value of the dimensions (or per sparsity and the other dimension, against one)
STYLES = ("-", "--", ":", "-.")
XLABELS = {
    "channels": "target channels removed",
    "clusters": "clusters per weight tensor (log2; off: not clustered)",
}


def plot_names(table) -> tuple[str, ...]:
    """The PNGs :func:`plots` writes for ``table``: :data:`PLOTS`, :data:`CHANNEL_PLOTS` when a
    run removed channels and :data:`CLUSTER_PLOTS` when a run clustered weights."""
    return PLOTS + tuple(p for d in dimensions(table) for p in DIMENSION_PLOTS[d.column])


def _at(frame, columns: list[str], values: tuple):
    """Which rows of ``frame`` hold ``values`` in ``columns`` (every row for none)."""
    return matches(frame, dict(zip(columns, values, strict=True)))


def _suffix(config: dict, dims) -> str:
    """`` c0.5 cl16``: a line's values of the dimensions ``dims``, in its legend."""
    return "".join(f" {p}" for p in dimension_parts(config, dims))


def _levels(frame, columns: list[str]) -> list[tuple]:
    """The distinct values of ``columns`` in ``frame`` (rows without them apart), sorted; one
    empty tuple for no columns."""
    if not columns:
        return [()]
    distinct = frame[columns].dropna().drop_duplicates()
    return sorted(distinct.itertuples(index=False, name=None))


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
    dims = dimensions(table)
    columns = [d.column for d in dims]
    # the sparsity plots: one line per variant, and with channel or clustered runs per
    # (variant, channels, clusters): the dimensions the study varies
    levels = _levels(table, columns)
    paths = []

    def suffix(level: tuple) -> str:
        return _suffix(dict(zip(columns, level, strict=True)), dims)

    def lines(g):
        """(variant, label suffix, linestyle, rows) per line of a sparsity plot."""
        for v in variants:
            for i, level in enumerate(levels):
                s = g[(g["variant"] == v) & _at(g, columns, level)]
                if len(s) or not dims:
                    yield v, suffix(level), STYLES[i % len(STYLES)], s

    def per_model(name: str, ylabel: str, draw, x: str = "target_sparsity", frame=agg) -> None:
        """A panel per model: ``draw(ax, rows of frame for the model, its model)``."""
        fig, axes = plt.subplots(
            1, len(models), figsize=(5.5 * len(models), 4), squeeze=False, constrained_layout=True
        )
        for ax, model in zip(axes[0], models, strict=True):
            draw(ax, frame[frame["model"] == model].sort_values(x, kind="stable"), model)
            ax.set_title(model)
            ax.set_xlabel(XLABELS.get(x, x.replace("_", " ")))
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
        loss = runs[(runs["variant"] == variants[0]) & _at(runs, columns, levels[0])]
        loss = loss.groupby("target_sparsity", sort=True)["val_loss"].mean()  # over seeds
        twin = ax.twinx()
        twin.plot(loss.index, loss.values, "k--", alpha=0.5, label="val loss")
        twin.set_ylabel(
            "validation loss (keras, dashed)" + (f",{suffix(levels[0])}" if dims else "")
        )

    def error_lines(ax, g, measure: str) -> None:
        """A line per variant (and value of the dimensions) of ``<measure>_mean`` against
        sparsity, its 95% interval as error bars; a variant keeps one color across its lines."""
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
        # the front over every point: every sparsity and every value of the dimensions
        front = pareto_front(points, cost)
        ax.plot(front[cost], front["accuracy"], "k-", alpha=0.6)
        labelled = "/".join(["s", *(d.prefix for d in dims)])
        ax.scatter(
            front[cost],
            front["accuracy"],
            facecolors="none",
            edgecolors="k",
            s=70,
            label="Pareto-optimal" + (f" (labelled {labelled})" if dims else ""),
        )
        if dims:
            for _, r in front.iterrows():
                ax.annotate(
                    "s" + config_label(r["target_sparsity"], r, dims),
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
    if has_channels(table):
        channel_plots(table, variants, dims, per_model)
    if has_clusters(table):
        cluster_plots(table, variants, dims, per_model)
    return paths


def _against(x: str, y: str, variants: list[str], dims, frame, where=None):
    """draw(ax, rows, model) of a plot against the dimension ``x``: a line per variant, sparsity
    and value of the other dimensions the study varies (``dims``), the median of ``y`` over
    that configuration's rows of ``frame`` (thread counts, seeds) at each ``x``, placed at
    ``where(x values)`` (default: the values)."""
    others = [d for d in dims if d.column != x]
    keys = ["target_sparsity", *(d.column for d in others)]
    groups = _levels(frame, keys)

    def draw(ax, g, model) -> None:
        colors = {}
        for v in variants:
            for i, key in enumerate(groups):
                s = g[(g["variant"] == v) & _at(g, keys, key)]
                if not len(s):
                    continue
                line = s.groupby(x, sort=True)[y].median()
                name = f"{v} s{key[0]:g}" + _suffix(dict(zip(keys, key, strict=True)), others)
                (drawn,) = ax.plot(
                    line.index if where is None else where(line.index),
                    line.values,
                    STYLES[i % len(STYLES)],
                    marker="o",
                    label=name,
                    color=colors.get(v),
                )
                colors.setdefault(v, drawn.get_color())

    return draw


def channel_plots(table, variants: list[str], dims, per_model) -> None:
    """:data:`CHANNEL_PLOTS`: latency and MACs against channels, the median over a
    configuration's runs (thread counts, repeats)."""
    latency = _against("channels", results.latency("p50"), variants, dims, table)

    def latency_channels(ax, g, model) -> None:
        latency(ax, g, model)
        ax.set_yscale("log")

    sparsities = sorted(table["target_sparsity"].dropna().unique())

    def macs_channels(ax, g, model) -> None:
        # MACs are the run's, one per run, and clustering leaves them as they are: a line per
        # sparsity
        runs = g.drop_duplicates("run_id")
        for i, sp in enumerate(sparsities):
            s = runs[runs["target_sparsity"] == sp]
            if not len(s):
                continue
            y = s.groupby("channels", sort=True)["macs"].median() / 1e6
            ax.plot(y.index, y.values, STYLES[i % len(STYLES)], marker="o", label=f"s{sp:g}")
        base = runs["baseline_macs"].dropna()
        if len(base):
            ax.axhline(float(base.median()) / 1e6, color="k", alpha=0.5, ls=":", label="baseline")

    per_model(CHANNEL_PLOTS[0], "latency p50 per image, ms", latency_channels, "channels", table)
    per_model(CHANNEL_PLOTS[1], "MACs per image, millions", macs_channels, "channels", table)


def cluster_plots(table, variants: list[str], dims, per_model) -> None:
    """:data:`CLUSTER_PLOTS`: each variant's gzip size against clusters on a log2 axis, the
    runs without clustering (``off``) one step left of the fewest clusters."""
    counts = sorted(int(c) for c in table["clusters"].unique())
    on = [c for c in counts if c > 0]
    off = on[0] / 2  # where 0 (not clustered) sits on the log2 axis

    def place(xs):
        return [c if c > 0 else off for c in xs]

    frame = table.assign(gzip_kb=table[results.GZIP] / 1024)
    gzip = _against("clusters", "gzip_kb", variants, dims, frame, place)

    def gzip_clusters(ax, g, model) -> None:
        gzip(ax, g, model)
        ax.set_xscale("log", base=2)
        ticks = place(counts)
        ax.set_xticks(ticks, ["off" if c == 0 else str(c) for c in counts])
        ax.minorticks_off()

    per_model(CLUSTER_PLOTS[0], "gzip size, KB (median of runs)", gzip_clusters, "clusters", frame)
