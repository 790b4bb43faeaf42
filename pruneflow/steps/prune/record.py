"""What pruning adds to a run, in the names of the contract (:mod:`pruneflow.results`), and
the per-layer table it owns (``prune/layers.csv``)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from pruneflow.results import (
    BASELINE_MACS,
    CHANNELS,
    CHANNELS_ALL,
    LAYERS_DIR,
    LAYERS_FILE,
    LAYERS_WITHOUT_WEIGHTS_TAG,
    LEFT_DENSE_TAG,
    MACS,
    MACS_REMOVED,
    PARAMS_NONZERO,
    PARAMS_TOTAL,
    SPARSITY,
    Record,
)
from pruneflow.steps.train.record import curves

if TYPE_CHECKING:
    from pruneflow.steps.prune.prune import Pruned


def for_pruning(pruned: Pruned, baseline_epochs: int, out_dir: Path) -> Record:
    """A :class:`~pruneflow.steps.prune.prune.Pruned`: measured sparsity and removed channels,
    parameters, MACs (of the model converted, and of the baseline), fine-tuning curves, the
    per-layer table with channels before and after (written to ``out_dir/layers.csv``)."""
    path = write_layers_csv(pruned.layers, out_dir)
    starved = pruned.layers_without_weights
    return Record(
        metrics={
            SPARSITY: pruned.sparsity,
            PARAMS_TOTAL: pruned.params_total,
            PARAMS_NONZERO: pruned.params_nonzero,
            CHANNELS: pruned.channels,
            MACS: pruned.macs,
            BASELINE_MACS: pruned.baseline_macs,
            CHANNELS_ALL: pruned.channels_all,
            MACS_REMOVED: pruned.macs_removed,
        },
        tags={
            **({LAYERS_WITHOUT_WEIGHTS_TAG: ",".join(starved)} if starved else {}),
            **({LEFT_DENSE_TAG: ",".join(pruned.left_dense)} if pruned.left_dense else {}),
        },
        steps=curves(pruned.history, baseline_epochs),
        artifacts=[(path, LAYERS_DIR)],
    )


def write_layers_csv(rows: list[dict], out_dir: Path) -> Path:
    """The per-layer table (``prune/layers.csv``, one row per kernel) written to ``out_dir``;
    the clustering step writes it again with its own columns."""
    path = Path(out_dir) / LAYERS_FILE
    with open(path, "w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path
