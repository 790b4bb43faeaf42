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
    "with_channels", "why", and the evidence: "rule", "delta", "ci_low", "ci_high", "n_runs",
    "seeds", "val_images", "one_image", "p50", "point_pick", "unresolved"}}: the best
    configuration that holds within ``tolerance`` points of the baseline (sparsity NaN with the
    reason in ``why`` when none does), judged on the numbers of :func:`summary.summary` (a
    configuration's runs of every seed together).

    A configuration holds when it is **non-inferior**: the lower bound of its paired 95%
    interval of accuracy minus the baseline's, on the same images, is above ``-tolerance``
    points (``vs_baseline_ci_low > -tolerance / 100``; with several seeds the aggregated bound
    of :func:`summary.summary`). Runs without the paired metrics (made before issue #18) fall
    back to the **point** rule, their mean accuracy at least the baseline's minus the
    tolerance, and ``rule`` says so (``"point"``; ``"non-inferiority"`` otherwise).

    The order of preference is as ever. A model without channel runs (``channels`` 0 or absent
    everywhere): the highest target sparsity (ties: the better accuracy). A model with channel
    runs (``with_channels``): the fewest MACs per image (the median over its runs: a property
    of the model, unlike a latency timed on a busy machine); ties (unstructured sparsity leaves
    the MACs as they are), or MACs missing: the higher sparsity, then the more channels
    removed, then the better accuracy.

    ``unresolved`` lists why a pick rests on differences the split cannot resolve: the point
    rule would pick another configuration (``point_pick``, its label), or the pick holds, or a
    configuration preferred to it misses, by less than one image (``one_image`` = 1 /
    ``val_images``, as a fraction)."""
    from pruneflow.study.report.summary import summary

    configs = summary(table)
    limit = -tolerance / 100
    configs["unknown"] = configs["macs"].isna()  # MACs missing: after every known one
    best = {}
    for (model, variant), group in configs.groupby(["model", "variant"], sort=True):
        with_channels = bool((configs.loc[configs["model"] == model, "channels"] > 0).any())
        what = "(sparsity, channels)" if with_channels else "sparsity"
        baseline = group["baseline_accuracy_mean"].dropna()
        if baseline.empty:
            best[(model, variant)] = {
                "sparsity": math.nan,
                "channels": math.nan,
                "with_channels": with_channels,
                "why": "no baseline accuracy",
            }
            continue
        base = float(baseline.median())
        group = group[group["accuracy_mean"].notna()].assign(
            baseline_accuracy_mean=group["baseline_accuracy_mean"].fillna(base)
        )
        group = group.assign(point=group["accuracy_mean"] - group["baseline_accuracy_mean"])
        if with_channels:
            ranked = group.sort_values(
                ["unknown", "macs", "target_sparsity", "channels", "accuracy_mean"],
                ascending=[True, True, False, False, False],
                kind="stable",
            )
        else:
            ranked = group.sort_values(
                ["target_sparsity", "accuracy_mean"], ascending=False, kind="stable"
            )
        paired = ranked["vs_baseline_n"] > 0
        # the point rule as it always was: the mean accuracy against the baseline's minus it
        by_point = ranked["accuracy_mean"] >= ranked["baseline_accuracy_mean"] - tolerance / 100
        holds = by_point.where(~paired, ranked["vs_baseline_ci_low"] > limit)
        margin = (ranked["vs_baseline_ci_low"].where(paired, ranked["point"])) - limit
        label = [_label(r, with_channels) for _, r in ranked.iterrows()]
        image = 1 / ranked["val_images"].where(ranked["val_images"] > 0)  # NaN: not logged
        point_pick = next((lb for lb, ok in zip(label, by_point, strict=True) if ok), None)
        if not holds.any():
            rule = "non-inferior " if paired.any() else ""
            best[(model, variant)] = {
                "sparsity": math.nan,
                "channels": math.nan,
                "with_channels": with_channels,
                "baseline": base,
                "rule": "non-inferiority" if paired.any() else "point",
                "point_pick": point_pick,
                "unresolved": [f"the point rule picks {point_pick}"] if point_pick else [],
                "why": f"no {what} {rule}within {tolerance:g} points of the baseline",
            }
            continue
        at = int(holds.to_numpy().argmax())  # the first that holds, in order of preference
        top = ranked.iloc[at]
        one_image = float(image.iloc[at])
        unresolved = []
        if point_pick != label[at]:
            unresolved.append(
                f"the point rule picks {point_pick}" if point_pick else "the point rule picks none"
            )
        if margin.iloc[at] < one_image:
            unresolved.append(
                f"{label[at]} holds by {margin.iloc[at] * 100:.3g} points, less than one image"
            )
        for i in range(at):  # a configuration preferred to the pick, missed by under one image
            miss = -margin.iloc[i]
            if label[i] != label[at] and miss < image.iloc[i]:
                unresolved.append(
                    f"{label[i]} misses by {miss * 100:.3g} points, less than one image"
                )
                break
        best[(model, variant)] = {
            "sparsity": float(top["target_sparsity"]),
            "channels": float(top["channels"]),
            "accuracy": float(top["accuracy_mean"]),
            "baseline": float(top["baseline_accuracy_mean"]),
            "macs": float(top["macs"]),
            "with_channels": with_channels,
            "why": "",
            "rule": "non-inferiority" if paired.iloc[at] else "point",
            "delta": float(top["vs_baseline_delta_mean"] if paired.iloc[at] else top["point"]),
            "ci_low": float(top["vs_baseline_ci_low"]),
            "ci_high": float(top["vs_baseline_ci_high"]),
            "n_runs": int(top["n_runs"]),
            "seeds": top["seeds"],
            "val_images": float(top["val_images"]),
            "one_image": one_image,
            "p50": float(top["latency_p50_mean"]),
            "point_pick": point_pick,
            "unresolved": unresolved,
        }
    return best


def _label(config, with_channels: bool) -> str:
    """A configuration as the tag line writes it: ``0.9``, ``0.5/c0.25`` with channel runs."""
    sparsity = fmt(float(config["target_sparsity"]), "g")
    return f"{sparsity}/c{fmt(float(config['channels']), 'g')}" if with_channels else sparsity


def resolution(table) -> list[str]:
    """Per model, what one validation image is worth: ``one image = 0.185 points on 540
    images`` (a difference smaller than that is no difference the split can show)."""
    if "val_images" not in table:
        return []
    lines = []
    for model, g in table.groupby("model", sort=True):
        counts = sorted({int(n) for n in g["val_images"].dropna() if n > 0})
        if counts:
            worth = ", ".join(f"{100 / n:.3g} points on {n} images" for n in counts)
            lines.append(f"{model}: one image = {worth}")
    return lines


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
