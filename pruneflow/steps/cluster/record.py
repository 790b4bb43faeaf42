"""What clustering adds to a run, in the names of the contract (:mod:`pruneflow.results`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pruneflow.results import CLUSTERED_LAYERS_TAG, LAYERS_DIR, Record
from pruneflow.steps.prune.record import write_layers_csv
from pruneflow.steps.train.record import curves

if TYPE_CHECKING:
    from pruneflow.steps.cluster.cluster import Clustered


def for_clustering(clustered: Clustered, layers: list[dict], offset: int, out_dir: Path) -> Record:
    """A :class:`~pruneflow.steps.cluster.cluster.Clustered`: the layers clustered, its
    fine-tuning curves (after the epochs before it, ``offset``), and the per-layer table of
    the clustered model (``layers``, with distinct values per layer) replacing the pruned
    one's in ``prune/layers.csv``."""
    return Record(
        tags={CLUSTERED_LAYERS_TAG: ",".join(clustered.layers)},
        steps=curves(clustered.history, offset),
        artifacts=[(write_layers_csv(layers, out_dir), LAYERS_DIR)],
    )
