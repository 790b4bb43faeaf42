"""The report's plots: accuracy, latency and size against sparsity per model, and the Pareto
front of accuracy against latency (matplotlib, Agg, PNG); where runs removed channels
(``prune.channels``), latency and MACs against channels too, a line per channels value in the
sparsity plots and the Pareto points labelled by their (sparsity, channels)."""

from __future__ import annotations

from pathlib import Path

from pruneflow import results
from pruneflow.study.report.tables import config_label, has_channels, pareto_front

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


def plots(table, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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

    def per_model(name: str, ylabel: str, draw, x: str = "target_sparsity") -> None:
        fig, axes = plt.subplots(
            1, len(models), figsize=(5.5 * len(models), 4), squeeze=False, constrained_layout=True
        )
        for ax, model in zip(axes[0], models, strict=True):
            draw(ax, table[table["model"] == model].sort_values(x))
            ax.set_title(model)
            ax.set_xlabel(x.replace("_", " ") if x != "channels" else "target channels removed")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)

    def accuracy(ax, g) -> None:
        colors = {}
        for v, suffix, style, s in lines(g):
            (line,) = ax.plot(
                s["target_sparsity"],
                s["accuracy"],
                style,
                marker="o",
                label=v + suffix,
                color=colors.get(v),
            )
            colors.setdefault(v, line.get_color())
        loss = g[g["variant"] == variants[0]]
        if chan:
            loss = loss[loss["channels"] == levels[0]]
        twin = ax.twinx()
        twin.plot(loss["target_sparsity"], loss["val_loss"], "k--", alpha=0.5, label="val loss")
        twin.set_ylabel("validation loss (keras, dashed)" + (f", c{levels[0]:g}" if chan else ""))

    def latency(ax, g) -> None:
        colors = {}
        for v, suffix, style, s in lines(g):
            (line,) = ax.plot(
                s["target_sparsity"],
                s[results.latency("p50")],
                style,
                marker="o",
                label=v + suffix,
                color=colors.get(v),
            )
            colors.setdefault(v, line.get_color())
        ax.set_yscale("log")

    def size(ax, g) -> None:
        colors = {}
        for v, suffix, style, s in lines(g):
            (line,) = ax.plot(
                s["target_sparsity"], s[results.SIZE] / 1024, style, alpha=0.4, color=colors.get(v)
            )
            colors.setdefault(v, line.get_color())
            ax.plot(
                s["target_sparsity"],
                s[results.GZIP] / 1024,
                style,
                marker="o",
                color=line.get_color(),
                label=f"{v}{suffix} (gzip; raw faint)",
            )

    per_model(PLOTS[0], "validation accuracy", accuracy)
    per_model(PLOTS[1], "latency p50 per image, ms", latency)
    per_model(PLOTS[2], "size, KB", size)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for ax, cost, label in (
        (axes[0], results.latency("p50"), "latency p50, ms"),
        (axes[1], "gzip_kb", "gzip size, KB"),
    ):
        points = table.assign(gzip_kb=table[results.GZIP] / 1024).dropna(subset=[cost, "accuracy"])
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

    def latency_channels(ax, g) -> None:
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

    def macs_channels(ax, g) -> None:
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

    per_model(CHANNEL_PLOTS[0], "latency p50 per image, ms", latency_channels, x="channels")
    per_model(CHANNEL_PLOTS[1], "MACs per image, millions", macs_channels, x="channels")
    return paths
