"""What a report concludes from its table: the best configuration (sparsity, and channels
where the runs removed channels, clusters where they clustered weights) per model and variant,
the pick to deploy, the Pareto front of accuracy against a cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pruneflow import results
from pruneflow.study.report import columns as col
from pruneflow.study.report.selection import DIMENSION_COLUMNS, DIMENSIONS, Dimension

DEFAULT_TOLERANCE = 1.0  # accuracy points below the baseline that still count as holding
# summary.csv's columns a best configuration is judged on
GZIP_MEAN = col.mean(results.GZIP)  # a configuration's gzip size
ACCURACY_MEAN, BASELINE_MEAN = col.mean(results.ACCURACY), col.mean(col.BASELINE_ACCURACY)
DELTA_MEAN = col.mean(results.VS_BASELINE["delta"])
PAIRED_LOW, PAIRED_HIGH = results.VS_BASELINE["ci_low"], results.VS_BASELINE["ci_high"]
# and what best_sparsity adds to them: MACs not logged (ranked after every known), and the
# mean accuracy minus the baseline's (the point rule's difference)
UNKNOWN_MACS, POINT = "unknown", "point"


def _uses(table, column: str) -> bool:
    """Whether any run of ``table`` has the dimension ``column`` on (> 0)."""
    return column in table and bool((table[column].fillna(0) > 0).any())


def dimensions(table) -> list[Dimension]:
    """The dimensions beside sparsity (:data:`~pruneflow.study.report.selection.DIMENSIONS`)
    that some run of ``table`` uses: only those have columns in the report's tables, lines in
    its plots and a part in its labels."""
    return [d for d in DIMENSIONS if _uses(table, d.column)]


def has_channels(table) -> bool:
    """Whether any run of ``table`` removed channels (``prune.channels`` > 0): only then do the
    report's tables, plots and best configuration show channels beside sparsity."""
    return _uses(table, col.CHANNELS)


def has_clusters(table) -> bool:
    """Whether any run of ``table`` clustered its weights (``cluster.clusters`` > 0): only then
    do the report's tables, plots and best configuration show clusters beside sparsity."""
    return _uses(table, col.CLUSTERS)


def best_sparsity(
    table, tolerance: float = DEFAULT_TOLERANCE, configs=None
) -> dict[tuple[str, str], dict]:
    """{(model, variant): {"sparsity", "channels", "clusters", "accuracy", "baseline", "macs",
    "gzip", "with_channels", "with_clusters", "why", and the evidence: "rule", "delta",
    "ci_low", "ci_high", "n_runs", "seeds", "val_images", "one_image", "p50", "point_pick",
    "unresolved"}}: the best configuration that holds within ``tolerance`` points of the
    baseline (sparsity NaN with the reason in ``why`` when none does), judged on the numbers of
    :func:`summary.summary` (a configuration's runs of every seed together; ``configs``: that
    summary of ``table`` where the caller has it, left as it is).

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
    removed, then the better accuracy. A model with clustered runs (``with_clusters``,
    ``clusters`` > 0 somewhere) keeps that order and, where configurations differ only in
    their clusters (the same sparsity and channels), prefers the smaller gzip file (the mean
    over its runs): clustering's point is the compressed size.

    ``unresolved`` lists why a pick rests on differences the split cannot resolve: the point
    rule would pick another configuration (``point_pick``, its label), or the pick holds, or a
    configuration preferred to it misses, by less than one image (``one_image`` = 1 /
    ``val_images``, as a fraction)."""
    from pruneflow.study.report.summary import summary

    configs = summary(table) if configs is None else configs
    configs = configs.assign(**{UNKNOWN_MACS: configs[col.MACS].isna()})
    best = {}
    for (model, variant), group in configs.groupby([col.MODEL, col.VARIANT], sort=True):
        dims = dimensions(configs[configs[col.MODEL] == model])
        best[(model, variant)] = _best_of(group, dims, tolerance)
    return best


def _best_of(group, dims: list[Dimension], tolerance: float) -> dict:
    """:func:`best_sparsity`'s entry for one model and variant: ``group``, its configurations
    (rows of summary.csv), of a model whose study varies ``dims``."""
    nothing = {  # the configuration when none is picked, and what the model's study varies
        "sparsity": math.nan,
        **{d.column: math.nan for d in DIMENSIONS},
        **{f"with_{d.column}": d in dims for d in DIMENSIONS},
    }
    baseline = group[BASELINE_MEAN].dropna()
    if baseline.empty:
        return {**nothing, "why": "no baseline accuracy"}
    base = float(baseline.median())
    ranked = _ranked(group, base, dims)
    judged = _judge(ranked, tolerance, dims)
    if not judged.holds.any():
        return {**nothing, **_none_holds(judged, base, dims, tolerance)}
    at = int(judged.holds.to_numpy().argmax())  # the first that holds, in order of preference
    return {**nothing, **_pick(ranked.iloc[at], judged, at)}


def _ranked(group, base: float, dims: list[Dimension]):
    """The configurations of ``group`` with an accuracy, in order of preference
    (:func:`_preference`), a missing baseline accuracy read as the model's ``base`` (its
    median), with :data:`POINT`: the accuracy minus the baseline's."""
    group = group[group[ACCURACY_MEAN].notna()].assign(
        **{BASELINE_MEAN: group[BASELINE_MEAN].fillna(base)}
    )
    group = group.assign(**{POINT: group[ACCURACY_MEAN] - group[BASELINE_MEAN]})
    keys = _preference(dims)
    return group.sort_values(list(keys), ascending=list(keys.values()), kind="stable")


@dataclass
class Judged:
    """Ranked configurations (:func:`_ranked`) judged against the baseline, each a Series (or
    list) in their order."""

    paired: object  # whether it has the paired metrics (then non-inferiority judges it)
    by_point: object  # whether it holds by the point rule
    holds: object  # whether it holds by its rule
    margin: object  # by how much it holds (negative: misses), as a fraction
    label: list[str]  # its configuration as the tag line writes it
    image: object  # what one validation image is worth, a fraction (NaN: not logged)
    point_pick: str | None  # the label the point rule picks, if any


def _judge(ranked, tolerance: float, dims: list[Dimension]) -> Judged:
    """Whether each ranked configuration holds: non-inferior (its paired interval's lower bound
    above ``-tolerance`` points) where it has the paired metrics, by the point rule where not."""
    limit = -tolerance / 100
    paired = ranked[col.VS_BASELINE_N] > 0
    # the point rule as it always was: the mean accuracy against the baseline's minus it
    by_point = ranked[ACCURACY_MEAN] >= ranked[BASELINE_MEAN] - tolerance / 100
    label = [config_label(r[col.TARGET_SPARSITY], r, dims) for _, r in ranked.iterrows()]
    images = ranked[col.VAL_IMAGES]
    return Judged(
        paired=paired,
        by_point=by_point,
        holds=by_point.where(~paired, ranked[PAIRED_LOW] > limit),
        margin=(ranked[PAIRED_LOW].where(paired, ranked[POINT])) - limit,
        label=label,
        image=1 / images.where(images > 0),
        point_pick=next((lb for lb, ok in zip(label, by_point, strict=True) if ok), None),
    )


def _none_holds(judged: Judged, base: float, dims: list[Dimension], tolerance: float) -> dict:
    """Why no configuration of a model and variant holds, and what the point rule picks."""
    what = f"({', '.join(['sparsity', *(d.column for d in dims)])})" if dims else "sparsity"
    paired, point_pick = judged.paired.any(), judged.point_pick
    rule = "non-inferior " if paired else ""
    return {
        "baseline": base,
        "rule": "non-inferiority" if paired else "point",
        "point_pick": point_pick,
        "unresolved": [f"the point rule picks {point_pick}"] if point_pick else [],
        "why": f"no {what} {rule}within {tolerance:g} points of the baseline",
    }


def _unresolved(judged: Judged, at: int) -> list[str]:
    """Why the pick (``at``: its rank) rests on differences the split cannot resolve: the point
    rule picks another, it holds by less than one image, or one preferred to it misses by
    less."""
    label, margin, image = judged.label, judged.margin, judged.image
    unresolved = []
    if judged.point_pick != label[at]:
        pick = judged.point_pick
        unresolved.append(f"the point rule picks {pick}" if pick else "the point rule picks none")
    if margin.iloc[at] < float(image.iloc[at]):
        unresolved.append(
            f"{label[at]} holds by {margin.iloc[at] * 100:.3g} points, less than one image"
        )
    for i in range(at):  # a configuration preferred to the pick, missed by under one image
        miss = -margin.iloc[i]
        if label[i] != label[at] and miss < image.iloc[i]:
            unresolved.append(f"{label[i]} misses by {miss * 100:.3g} points, less than one image")
            break
    return unresolved


def _pick(top, judged: Judged, at: int) -> dict:
    """The picked configuration ``top`` (its summary row, ranked ``at``) and its evidence."""
    paired = judged.paired.iloc[at]
    return {
        "sparsity": float(top[col.TARGET_SPARSITY]),
        **{d.column: d.kind(top[d.column]) for d in DIMENSIONS},
        "accuracy": float(top[ACCURACY_MEAN]),
        "baseline": float(top[BASELINE_MEAN]),
        col.MACS: float(top[col.MACS]),
        "gzip": float(top[GZIP_MEAN]),
        "why": "",
        "rule": "non-inferiority" if paired else "point",
        "delta": float(top[DELTA_MEAN] if paired else top[POINT]),
        "ci_low": float(top[PAIRED_LOW]),
        "ci_high": float(top[PAIRED_HIGH]),
        "n_runs": int(top[col.N_RUNS]),
        "seeds": top[col.SEEDS],
        "val_images": float(top[col.VAL_IMAGES]),
        "one_image": float(judged.image.iloc[at]),
        "p50": float(top[col.mean(col.LATENCY_P50)]),
        "point_pick": judged.point_pick,
        "unresolved": _unresolved(judged, at),
    }


def _preference(dims: list[Dimension]) -> dict[str, bool]:
    """The order :func:`best_sparsity` prefers configurations in: {sort key: ascending}, for a
    model whose study varies ``dims``."""
    columns = {d.column for d in dims}
    keys = {UNKNOWN_MACS: True, col.MACS: True} if col.CHANNELS in columns else {}
    keys[col.TARGET_SPARSITY] = False
    if col.CHANNELS in columns:
        keys[col.CHANNELS] = False
    if col.CLUSTERS in columns:  # what is left to differ, at one sparsity and channels
        keys[GZIP_MEAN] = True
    keys[ACCURACY_MEAN] = False
    return keys


def dimension_parts(config, dims: list[Dimension]) -> list[str]:
    """``["c0.25", "cl16"]``: the values of ``dims`` in ``config`` (a mapping: a row, a best
    configuration), as labels write them."""
    return [f"{d.prefix}{fmt(float(config[d.column]), 'g')}" for d in dims]


def config_label(sparsity: float, config, dims: list[Dimension]) -> str:
    """A configuration as the tag line writes it: ``0.9``, ``0.5/c0.25`` with channel runs,
    ``0.9/cl16`` with clustered ones, ``0.5/c0.25/cl16`` with both (only the dimensions the
    study varies, ``dims``; ``config`` holds their values)."""
    return "/".join([fmt(float(sparsity), "g"), *dimension_parts(config, dims)])


def best_dimensions(b: dict) -> list[Dimension]:
    """The dimensions a best configuration's model varies (:func:`best_sparsity`)."""
    return [d for d in DIMENSIONS if b.get(f"with_{d.column}")]


def matches(table, values: dict):
    """Which rows of ``table`` hold ``values`` ({column: value}), a boolean array; a
    dimension's column that the table lacks (a runs.csv made before it), or a missing value in
    it, reads 0: off."""
    import numpy as np

    at = np.ones(len(table), dtype=bool)
    for column, value in values.items():
        if column in DIMENSION_COLUMNS:
            held = table[column].fillna(0) if column in table else 0
        else:
            held = table[column]
        at &= np.asarray(held == value, dtype=bool)
    return at


def at_config(table, model: str, variant: str, b: dict):
    """The rows of ``table`` at the best configuration ``b`` of (model, variant): its sparsity
    and its value of every dimension (:func:`matches`)."""
    values = {col.MODEL: model, col.VARIANT: variant, col.TARGET_SPARSITY: b["sparsity"]}
    return table[matches(table, values | {c: b.get(c, 0) for c in DIMENSION_COLUMNS})]


def resolution(table) -> list[str]:
    """Per model, what one validation image is worth: ``one image = 0.185 points on 540
    images`` (a difference smaller than that is no difference the split can show)."""
    if col.VAL_IMAGES not in table:
        return []
    lines = []
    for model, g in table.groupby(col.MODEL, sort=True):
        counts = sorted({int(n) for n in g[col.VAL_IMAGES].dropna() if n > 0})
        if counts:
            worth = ", ".join(f"{100 / n:.3g} points on {n} images" for n in counts)
            lines.append(f"{model}: one image = {worth}")
    return lines


def fmt(v, spec: str = ".4f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def interval(low, high, spec: str = ".4f", scale: float = 1.0) -> str:
    """``low – high``, each times ``scale`` (``–`` where either is missing)."""
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        return "–"
    return f"{format(low * scale, spec)} – {format(high * scale, spec)}"


def pareto_front(points, cost: str):
    """The rows no other row beats on both lower ``cost`` and higher accuracy."""
    ordered = points.sort_values([cost, results.ACCURACY], ascending=[True, False])
    keep, best = [], -math.inf
    for idx, r in ordered.iterrows():
        if r[results.ACCURACY] > best:
            keep.append(idx)
            best = r[results.ACCURACY]
    return ordered.loc[keep]


# -- the whole report -----------------------------------------------------------------------------
def best_variant(table, best: dict):
    """The report's pick to deploy: of every (model, variant) at its best configuration (its
    sparsity and, where runs removed channels or clustered weights, its channels and clusters),
    the smallest gzip file (ties: the higher accuracy); None when no configuration holds."""
    picks = []
    for (model, variant), b in best.items():
        if b["why"]:
            continue
        rows = at_config(table, model, variant, b)
        picks.append(rows.sort_values(results.ACCURACY, ascending=False).iloc[0])
    if not picks:
        return None
    return sorted(picks, key=lambda r: (r[results.GZIP], -r[results.ACCURACY]))[0]


def pick_text(pick, measures=()) -> str:
    """A picked row of runs.csv (:func:`best_variant`, the pick within a budget) in words:
    ``sparsity 0.9, channels 0.5, 16 clusters, accuracy 0.9796, gzip 17.2 KB`` (channels and
    clusters only where nonzero), ``measures`` (``invoke_p50_ms 0.011``) before the size."""
    parts = [f"sparsity {pick[col.TARGET_SPARSITY]:g}"]
    parts += [f"channels {pick[col.CHANNELS]:g}"] * bool(pick.get(col.CHANNELS))
    parts += [f"{pick[col.CLUSTERS]:g} clusters"] * bool(pick.get(col.CLUSTERS))
    parts += [f"accuracy {pick[results.ACCURACY]:.4f}", *measures]
    return ", ".join([*parts, f"gzip {pick[results.GZIP] / 1024:.1f} KB"])


def best_line(best: dict) -> str:
    """The best configuration as one tag value: ``digits-cnn: keras 0.9, tflite_int8 0.9; ...``
    (``tflite_int8 0.5/c0.25`` for a model with channel runs: sparsity/channels; ``0.9/cl16``
    with clustered runs, ``0.5/c0.25/cl16`` with both: :func:`config_label`)."""
    per_model: dict[str, list[str]] = {}
    for (model, variant), b in best.items():
        dims = best_dimensions(b) if not b["why"] else []
        chosen = config_label(b["sparsity"], b, dims)
        per_model.setdefault(model, []).append(f"{variant} {chosen}")
    return "; ".join(f"{m}: {', '.join(v)}" for m, v in per_model.items())
