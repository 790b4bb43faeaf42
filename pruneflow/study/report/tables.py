"""What a report concludes from its table: the best configuration (sparsity, and channels
where the runs removed channels) per model and variant, the pick to deploy, the Pareto front
of accuracy against a cost."""

from __future__ import annotations

import math

from pruneflow import results

DEFAULT_TOLERANCE = 1.0  # accuracy points below the baseline that still count as holding


def has_channels(table) -> bool:
    """Whether any run of ``table`` removed channels (``prune.channels`` > 0): only then do the
    report's tables, plots and best configuration show channels beside sparsity."""
    return "channels" in table and bool((table["channels"].fillna(0.0) > 0).any())


def best_sparsity(table, tolerance: float = DEFAULT_TOLERANCE) -> dict[tuple[str, str], dict]:
    """{(model, variant): {"sparsity", "channels", "accuracy", "baseline", "macs",
    "with_channels", "why"}}: the best configuration whose accuracy is within ``tolerance``
    points of the model's baseline accuracy (sparsity NaN with the reason when there is none).

    A model without channel runs (``channels`` 0 or absent everywhere): the highest target
    sparsity that holds (ties: the better accuracy), as ever. A model with channel runs
    (``with_channels``): sparsity alone no longer orders the configurations, so of the
    (sparsity, channels) pairs that hold, the one with the fewest MACs per image (the median
    over its runs: a property of the model, unlike a latency timed on a busy machine); ties
    (unstructured sparsity leaves the MACs as they are), or MACs missing: the higher sparsity,
    then the more channels removed, then the better accuracy. With every channels 0 this is the
    sparsity rule again."""
    table = table.assign(
        channels=table["channels"].fillna(0.0) if "channels" in table else 0.0,
        macs=table["macs"] if "macs" in table else math.nan,
    )
    best = {}
    for (model, variant), group in table.groupby(["model", "variant"], sort=True):
        with_channels = bool((table.loc[table["model"] == model, "channels"] > 0).any())
        baseline = group["baseline_accuracy"].dropna()
        if baseline.empty:
            best[(model, variant)] = {
                "sparsity": math.nan,
                "channels": math.nan,
                "with_channels": with_channels,
                "why": "no baseline accuracy",
            }
            continue
        base = float(baseline.median())
        ok = group[(group["accuracy"] >= base - tolerance / 100) & group["accuracy"].notna()]
        if ok.empty:
            what = "(sparsity, channels)" if with_channels else "sparsity"
            best[(model, variant)] = {
                "sparsity": math.nan,
                "channels": math.nan,
                "with_channels": with_channels,
                "baseline": base,
                "why": f"no {what} within {tolerance:g} points of the baseline",
            }
            continue
        if with_channels:
            configs = (
                ok.groupby(["target_sparsity", "channels"], sort=False)
                .agg(accuracy=("accuracy", "max"), macs=("macs", "median"))
                .reset_index()
            )
            configs["unknown"] = configs["macs"].isna()  # MACs missing: after every known one
            top = configs.sort_values(
                ["unknown", "macs", "target_sparsity", "channels", "accuracy"],
                ascending=[True, True, False, False, False],
                kind="stable",
            ).iloc[0]
        else:
            top = ok.sort_values(["target_sparsity", "accuracy"]).iloc[-1]
        best[(model, variant)] = {
            "sparsity": float(top["target_sparsity"]),
            "channels": float(top["channels"]),
            "accuracy": float(top["accuracy"]),
            "baseline": base,
            "macs": float(top["macs"]),
            "with_channels": with_channels,
            "why": "",
        }
    return best


def fmt(v, spec: str = ".4f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def config_label(sparsity: float, channels: float) -> str:
    """``s0.5/c0.25``: a (sparsity, channels) configuration in a plot."""
    return f"s{fmt(sparsity, 'g')}/c{fmt(channels, 'g')}"


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
    """The report's pick to deploy: of every (model, variant) at its best configuration (its
    sparsity and, where runs removed channels, its channels), the smallest gzip file (ties: the
    higher accuracy); None when no configuration holds."""
    channels = table["channels"].fillna(0.0) if "channels" in table else 0.0
    picks = []
    for (model, variant), b in best.items():
        if b["why"]:
            continue
        rows = table[
            (table["model"] == model)
            & (table["variant"] == variant)
            & (table["target_sparsity"] == b["sparsity"])
            & (channels == b.get("channels", 0.0))
        ]
        picks.append(rows.sort_values("accuracy", ascending=False).iloc[0])
    if not picks:
        return None
    return sorted(picks, key=lambda r: (r[results.GZIP], -r["accuracy"]))[0]


def best_line(best: dict) -> str:
    """The best configuration as one tag value: ``digits-cnn: keras 0.9, tflite_int8 0.9; ...``
    (``tflite_int8 0.5/c0.25`` for a model with channel runs: sparsity/channels)."""
    per_model: dict[str, list[str]] = {}
    for (model, variant), b in best.items():
        chosen = fmt(b["sparsity"], "g")
        if b.get("with_channels") and not b["why"]:
            chosen += f"/c{fmt(b['channels'], 'g')}"
        per_model.setdefault(model, []).append(f"{variant} {chosen}")
    return "; ".join(f"{m}: {', '.join(v)}" for m, v in per_model.items())
