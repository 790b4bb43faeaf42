"""What a report concludes from its table: the best sparsity per model and variant, the pick
to deploy, the Pareto front of accuracy against a cost."""

from __future__ import annotations

import math

from pruneflow import results

DEFAULT_TOLERANCE = 1.0  # accuracy points below the baseline that still count as holding


def best_sparsity(table, tolerance: float = DEFAULT_TOLERANCE) -> dict[tuple[str, str], dict]:
    """{(model, variant): {"sparsity", "accuracy", "baseline", "why"}}: the highest target
    sparsity whose accuracy is within ``tolerance`` points of the model's baseline accuracy
    (sparsity NaN with the reason when there is none)."""
    best = {}
    for (model, variant), group in table.groupby(["model", "variant"], sort=True):
        baseline = group["baseline_accuracy"].dropna()
        if baseline.empty:
            best[(model, variant)] = {"sparsity": math.nan, "why": "no baseline accuracy"}
            continue
        base = float(baseline.median())
        ok = group[(group["accuracy"] >= base - tolerance / 100) & group["accuracy"].notna()]
        if ok.empty:
            best[(model, variant)] = {
                "sparsity": math.nan,
                "baseline": base,
                "why": f"no sparsity within {tolerance:g} points of the baseline",
            }
            continue
        top = ok.sort_values(["target_sparsity", "accuracy"]).iloc[-1]
        best[(model, variant)] = {
            "sparsity": float(top["target_sparsity"]),
            "accuracy": float(top["accuracy"]),
            "baseline": base,
            "why": "",
        }
    return best


def fmt(v, spec: str = ".4f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def pareto_front(points, cost: str):
    """The rows no other row beats on both lower ``cost`` and higher accuracy."""
    ordered = points.sort_values([cost, "accuracy"], ascending=[True, False])
    keep, best = [], -math.inf
    for idx, r in ordered.iterrows():
        if r["accuracy"] > best:
            keep.append(idx)
            best = r["accuracy"]
    return ordered.loc[keep]


# -- the whole report -----------------------------------------------------------------------------
def best_variant(table, best: dict):
    """The report's pick to deploy: of every (model, variant) at its best sparsity, the
    smallest gzip file (ties: the higher accuracy); None when no sparsity holds."""
    picks = []
    for (model, variant), b in best.items():
        if b["why"]:
            continue
        rows = table[
            (table["model"] == model)
            & (table["variant"] == variant)
            & (table["target_sparsity"] == b["sparsity"])
        ]
        picks.append(rows.sort_values("accuracy", ascending=False).iloc[0])
    if not picks:
        return None
    return sorted(picks, key=lambda r: (r[results.GZIP], -r["accuracy"]))[0]


def best_line(best: dict) -> str:
    """The best sparsity as one tag value: ``digits-cnn: keras 0.9, tflite_int8 0.9; ...``."""
    per_model: dict[str, list[str]] = {}
    for (model, variant), b in best.items():
        per_model.setdefault(model, []).append(f"{variant} {fmt(b['sparsity'], 'g')}")
    return "; ".join(f"{m}: {', '.join(v)}" for m, v in per_model.items())
