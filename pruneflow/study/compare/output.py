"""What a comparison writes: compare.csv, compare_rounds.csv, compare.png, and its table for
the console."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from pruneflow import results
from pruneflow.study.compare.plan import COLUMNS, ROUND_COLUMNS, TAIL, Plan


def write(the_plan: Plan, table: list[dict], per_round: list[dict], out: Path) -> list[Path]:
    """compare.csv, compare_rounds.csv and compare.png into ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, columns, rows in (
        (results.COMPARE_CSV, [*COLUMNS, *the_plan.settings, *TAIL], table),
        (results.COMPARE_ROUNDS_CSV, ROUND_COLUMNS, per_round),
    ):
        with open(out / name, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)
        paths.append(out / name)
    paths.append(plot(table, the_plan.settings, out / results.COMPARE_PLOT))
    return paths


def plot(table: list[dict], settings: list[str], path: Path) -> Path:
    """Ratio to dense with its interval against sparsity, per model, a line per variant (and
    channels value and other swept settings); the dense baseline at 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in table))
    fig, axes = plt.subplots(
        1, len(models), figsize=(6 * len(models), 4.5), squeeze=False, constrained_layout=True
    )
    for ax, model in zip(axes[0], models, strict=True):
        rows = [r for r in table if r["model"] == model and not r["dense"]]
        lines: dict[str, list[dict]] = {}
        for r in rows:
            label = r["variant"] + (f" c{r['channels']:g}" if r["channels"] else "")
            label += "".join(f" {k}={r[k]}" for k in settings if r.get(k) != "")
            lines.setdefault(label, []).append(r)
        for label, points in lines.items():
            points.sort(key=lambda r: r["sparsity"])
            x = [r["sparsity"] for r in points]
            y = [r["ratio_to_dense"] for r in points]
            below = [max(0.0, r["ratio_to_dense"] - r["ratio_ci_low"]) for r in points]
            above = [max(0.0, r["ratio_ci_high"] - r["ratio_to_dense"]) for r in points]
            ax.errorbar(x, y, yerr=[below, above], marker="o", capsize=3, label=label)
        ax.axhline(1.0, color="k", ls=":", alpha=0.6, label="dense baseline")
        ax.set_yscale("log")  # ratios: 2x slower and 2x faster equally far from 1
        ax.set_title(f"{model}: invoke p50 / dense, 95% paired interval")
        ax.set_xlabel("target sparsity")
        ax.set_ylabel("ratio to the dense baseline (same variant)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


ENERGY_NOTE = (
    "mJ/image: each run's own energy pass (its {metric} metrics), not interleaved; mJ ratio: "
    "to the sweep's unpruned run (prune.sparsity=0) of the same baseline, where it measured"
)


def lines(table: list[dict], settings: list[str]) -> str:
    """A fixed-width table of compare.csv for the console; each run's measured energy per
    image and its ratio to the dense one's beside the latency ratios, where measured."""
    energy = any(math.isfinite(r.get(results.ENERGY, math.nan)) for r in table)
    head = f"{'model':<16}{'sparsity':>9}{'channels':>9}"
    head += "".join(f"  {k}" for k in settings)
    head += f"  {'variant':<20}{'p50 ms':>9}{'ratio':>8}  {'95% interval':<16}"
    head += f"{'mJ/image':>10}  {'95% interval':<18}{'mJ ratio':>8}" if energy else ""
    out = [head.rstrip()]
    for r in table:
        row = f"{r['model']:<16}{r['sparsity']:>9g}{r['channels']:>9g}"
        row += "".join(f"  {r.get(k, '')!s:>{len(k)}}" for k in settings)
        name = r["variant"] + (" (dense)" if r["dense"] else "")
        row += f"  {name:<20}{r['p50_ms']:>9.4f}{r['ratio_to_dense']:>8.3f}"
        ratios = f"[{r['ratio_ci_low']:.3f}, {r['ratio_ci_high']:.3f}]"
        row += f"  {ratios:<16}"
        if energy:
            low, high = r[results.ENERGY_CI_LOW], r[results.ENERGY_CI_HIGH]
            mj = f"[{_num(low)}, {_num(high)}]"
            row += f"{_num(r[results.ENERGY]):>10}  {mj:<18}"
            row += f"{_num(r['energy_ratio_to_dense']):>8}"
        out.append(row.rstrip())
    if energy:
        out.append(ENERGY_NOTE.format(metric=results.ENERGY))
    return "\n".join(out)


def _num(v: float) -> str:
    return f"{v:.3f}" if math.isfinite(v) else "-"
