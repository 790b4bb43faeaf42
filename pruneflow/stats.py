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
