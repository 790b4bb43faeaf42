"""What the baseline adds to a run, in the names of the contract (:mod:`pruneflow.results`):
its accuracy, its training curves and where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pruneflow.results import (
    BASELINE_ACCURACY,
    BASELINE_CACHE_TAG,
    BASELINE_FROM_TAG,
    BASELINE_KEY_TAG,
    CURVES,
    Record,
)

if TYPE_CHECKING:
    from pruneflow.steps.train.train import Baseline


def curves(history: Mapping[str, list[float]], offset: int) -> dict[int, dict[str, float]]:
    """Keras's per-epoch ``history`` as stepped metrics (:data:`~pruneflow.results.CURVES`),
    its first epoch at step ``offset``: fine-tuning goes on from the epochs before it."""
    steps: dict[int, dict[str, float]] = {}
    for key, values in history.items():
        if key in CURVES:
            for i, v in enumerate(values):
                steps.setdefault(offset + i, {})[CURVES[key]] = float(v)
    return steps


def for_baseline(baseline: Baseline) -> Record:
    """A :class:`~pruneflow.steps.train.train.Baseline`: its accuracy, curves and cache use."""
    return Record(
        metrics={BASELINE_ACCURACY: baseline.accuracy},
        tags={
            BASELINE_CACHE_TAG: "hit" if baseline.cache_hit else "miss",
            BASELINE_KEY_TAG: baseline.key,
            BASELINE_FROM_TAG: baseline.source,
        },
        steps=curves(baseline.history, 0),
    )
