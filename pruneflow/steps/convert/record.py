"""What conversion adds to a run, in the names of the contract (:mod:`pruneflow.results`):
every model file and its sizes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pruneflow.results import (
    FILE_SPARSITY,
    GZIP,
    MODELS_DIR,
    SIZE,
    UNIQUE_WEIGHTS,
    Record,
    metric,
)

if TYPE_CHECKING:
    from pruneflow.steps.convert.convert import ModelFile


def for_files(files: Mapping[str, ModelFile]) -> Record:
    """``{variant: ModelFile}`` (:func:`pruneflow.steps.convert.convert.describe`): sizes,
    stored zeros, distinct weights of clustered layers, the files themselves."""
    rec = Record()
    for variant, f in files.items():
        rec.metrics[metric(variant, SIZE)] = f.size_bytes
        rec.metrics[metric(variant, GZIP)] = f.gzip_bytes
        if f.sparsity is not None:
            rec.metrics[metric(variant, FILE_SPARSITY)] = f.sparsity
        if f.unique_weights is not None:
            rec.metrics[metric(variant, UNIQUE_WEIGHTS)] = f.unique_weights
        rec.artifacts.append((f.path, MODELS_DIR))
    return rec
