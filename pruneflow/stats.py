"""Latency statistics over per-image times (pure functions, no TensorFlow).

Following the paper's protocol, the first inference is reported apart and every other statistic
is computed over the remaining ``n = N - 1`` images. Unlike the paper's equation (4), the standard
deviation is a real one: the square root of the sample variance (divisor ``n - 1``), and the
standard error is ``std / sqrt(n)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MEASURES = ("first", "mean", "std", "ste", "p50", "p90", "p99")
MIN_TIMES = 3  # the first image, and two more for a sample deviation


def latency_stats(times_ms: Sequence[float]) -> dict[str, float]:
    """``{first, mean, std, ste, p50, p90, p99}`` in ms from per-image times, first image first.

    Needs at least three times (the first plus two, so that a sample deviation exists).
    Percentiles interpolate linearly between order statistics (numpy's default).
    """
    t = np.asarray(times_ms, dtype=np.float64)
    if t.ndim != 1 or len(t) < MIN_TIMES:
        raise ValueError(f"need at least {MIN_TIMES} per-image times, got {len(t)}")
    rest = t[1:]
    n = len(rest)
    std = float(np.std(rest, ddof=1))
    p50, p90, p99 = (float(v) for v in np.percentile(rest, [50, 90, 99]))
    return {
        "first": float(t[0]),
        "mean": float(np.mean(rest)),
        "std": std,
        "ste": std / math.sqrt(n),
        "p50": p50,
        "p90": p90,
        "p99": p99,
    }


# -- accuracy: an interval, and a paired comparison on the same images --------------------------
CONFIDENCE = 0.95  # every interval pruneflow reports


def wilson_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of ``correct`` out of ``n`` images
    (statsmodels' ``proportion_confint(method="wilson")``); (nan, nan) for no images."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return math.nan, math.nan
    low, high = proportion_confint(int(correct), int(n), alpha=1 - confidence, method="wilson")
    return float(low), float(high)


def paired_comparison(
    correct: Sequence[bool], reference: Sequence[bool], confidence: float = CONFIDENCE
) -> dict[str, float]:
    """A model against a reference on the same images, image by image.

    With ``a`` images both get right, ``b`` only the model, ``c`` only the reference and ``d``
    neither: ``delta`` = accuracy minus the reference's = (b - c) / n; ``p``: the exact
    two-sided McNemar test (statsmodels' ``mcnemar(exact=True)``, a binomial test of b against
    c; 1.0 when no image differs); ``ci_low``/``ci_high``: Newcombe's (1998) method 10 interval
    of the paired difference, the two accuracies' Wilson intervals (statsmodels) combined with
    their correlation (phi, corrected as Newcombe does). Unlike the exact conditional interval,
    it keeps a width when b and c are small or zero (Fagerland, Lydersen & Laake, Statistical
    Analysis of Contingency Tables, ch. 8: its square-and-add interval).
    """
    from statsmodels.stats.contingency_tables import mcnemar

    x, r = np.asarray(correct, dtype=bool), np.asarray(reference, dtype=bool)
    if x.shape != r.shape or x.ndim != 1:
        raise ValueError(f"paired predictions need the same images: {x.shape} and {r.shape}")
    n = len(x)
    a, b = int(np.sum(x & r)), int(np.sum(x & ~r))
    c, d = int(np.sum(~x & r)), int(np.sum(~x & ~r))
    out = {"b": b, "c": c, "n": n}
    if n == 0:
        return {**out, "delta": math.nan, "p": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    p = 1.0 if b + c == 0 else float(mcnemar([[a, b], [c, d]], exact=True).pvalue)
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, confidence)
    l2, u2 = wilson_interval(a + c, n, confidence)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    phi = 0.0
    if margins > 0:
        phi = (cross - n / 2 if cross > n / 2 else min(cross, 0)) / math.sqrt(margins)
    delta = p1 - p2
    low = delta - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = delta + math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return {**out, "delta": delta, "p": min(p, 1.0), "ci_low": low, "ci_high": high}


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, float]:
    """The mean of ``values`` (one per run: a seed's accuracy, latency or paired difference)
    and its Student t interval over the runs (scipy's ``t.interval`` with ``sem``: mean
    +- t(df = n - 1) * std / sqrt(n)); ``std`` the sample deviation (divisor n - 1). NaN values
    are left out; fewer than two values: the mean (or NaN) and a NaN deviation and interval."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    out = {"n": len(v), "mean": float(np.mean(v)) if len(v) else math.nan}
    if len(v) < 2:
        return {**out, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    sem = float(stats.sem(v))
    low, high = (
        stats.t.interval(confidence, len(v) - 1, loc=out["mean"], scale=sem)
        if sem > 0
        else (out["mean"], out["mean"])  # every run the same: no spread to widen it
    )
    return {**out, "std": float(np.std(v, ddof=1)), "ci_low": float(low), "ci_high": float(high)}


# -- latency: a ratio paired over interleaved rounds --------------------------------------------
def ratio_interval(
    ratios: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(point, low, high) of a latency ratio measured once per round, both models timed in
    the same round (paired): the geometric mean of the per-round ratios, and Student's t
    interval on their logarithms, exponentiated: ``exp(mean(log r) +- t(n-1) * sd(log r) /
    sqrt(n))``. Ratios are multiplicative (2x slower and 2x faster are symmetric on the log
    scale), and the interval always holds its point estimate. A model against itself (every
    ratio exactly 1) gives (1, 1, 1). Needs at least two finite positive ratios, else nan."""
    from scipy.stats import t

    logs = np.log(np.asarray([r for r in ratios if math.isfinite(r) and r > 0], dtype=float))
    n = len(logs)
    if n < 2:
        return math.nan, math.nan, math.nan
    mean, sd = float(np.mean(logs)), float(np.std(logs, ddof=1))
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)
