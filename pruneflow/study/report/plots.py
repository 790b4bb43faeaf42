"""The report's plots: accuracy, latency and size against sparsity per model, and the Pareto
front of accuracy against latency (matplotlib, Agg, PNG)."""

from __future__ import annotations

from pathlib import Path

from pruneflow import results
from pruneflow.study.report.tables import pareto_front

PLOTS = (
    "accuracy_vs_sparsity.png",
    "latency_vs_sparsity.png",
    "size_vs_sparsity.png",
    "pareto.png",
)


def plots(table, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(table["model"]))
    variants = list(dict.fromkeys(table["variant"]))
    paths = []

    def per_model(name: str, ylabel: str, draw) -> None:
        fig, axes = plt.subplots(
            1, len(models), figsize=(5.5 * len(models), 4), squeeze=False, constrained_layout=True
        )
        for ax, model in zip(axes[0], models, strict=True):
            draw(ax, table[table["model"] == model].sort_values("target_sparsity"))
            ax.set_title(model)
            ax.set_xlabel("target sparsity")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)

    def accuracy(ax, g) -> None:
        for v in variants:
            s = g[g["variant"] == v]
            ax.plot(s["target_sparsity"], s["accuracy"], marker="o", label=v)
        loss = g[g["variant"] == variants[0]]
        twin = ax.twinx()
        twin.plot(loss["target_sparsity"], loss["val_loss"], "k--", alpha=0.5, label="val loss")
        twin.set_ylabel("validation loss (keras, dashed)")

    def latency(ax, g) -> None:
        for v in variants:
            s = g[g["variant"] == v]
            ax.plot(s["target_sparsity"], s[results.latency("p50")], marker="o", label=v)
        ax.set_yscale("log")

    def size(ax, g) -> None:
        for v in variants:
            s = g[g["variant"] == v]
            (line,) = ax.plot(s["target_sparsity"], s[results.SIZE] / 1024, alpha=0.4)
            ax.plot(
                s["target_sparsity"],
                s[results.GZIP] / 1024,
                marker="o",
                color=line.get_color(),
                label=f"{v} (gzip; raw faint)",
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
        front = pareto_front(points, cost)
        ax.plot(front[cost], front["accuracy"], "k-", alpha=0.6)
        ax.scatter(
            front[cost],
            front["accuracy"],
            facecolors="none",
            edgecolors="k",
            s=70,
            label="Pareto-optimal",
        )
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.savefig(out / PLOTS[3], dpi=100)
    plt.close(fig)
    paths.append(out / PLOTS[3])
    return paths
