"""Which layers a step acts on, and how it wraps them: the layer selection pruning and
clustering share (the keys ``layer_types``, ``exclude_layers`` and ``keep_first_last`` of each
step's section) and the clone that maps their layers. Light at import (no TensorFlow)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pruneflow.errors import ArgumentError, require
from pruneflow.steps.model.measure import leaf_layers


def select_layers(
    model,
    layer_types: Sequence[str] | None,
    exclude: Sequence[str],
    keep_first_last: bool,
    *,
    kinds: Collection[str],
    acting: str,
) -> list[str]:
    """Names of the layers of ``model`` (nested models included) that a step acts on: the
    layers of the types it can handle (``kinds``; optionally only ``layer_types``), minus the
    ``exclude``d names, minus the first and last of those with ``keep_first_last``.

    Raises :class:`ArgumentError` (``exclude_layers``) for a name the model lacks, and for a
    selection that leaves nothing to act on; ``acting`` says what the step does ("prune")."""
    types = set(kinds) if layer_types is None else set(layer_types)
    candidates = [la.name for la in leaf_layers(model) if type(la).__name__ in kinds]
    require(  # a model of its own layers only (backbone=file): nothing to act on
        bool(candidates),
        "layer_types",
        None if layer_types is None else list(layer_types),
        f"types of layers {model.name} has: it has no layer to {acting} (of {sorted(kinds)}; "
        "layers of other classes are left as they are), so nothing to optimize",
    )
    missing = sorted(set(exclude) - {la.name for la in leaf_layers(model)})
    if missing:
        raise ArgumentError(
            "exclude_layers", missing, f"names of layers of {model.name}: {candidates}"
        )
    skip = set(exclude)
    if keep_first_last and candidates:
        skip |= {candidates[0], candidates[-1]}
    selected = [
        la.name
        for la in leaf_layers(model)
        if type(la).__name__ in types and la.name in candidates and la.name not in skip
    ]
    require(
        bool(selected),
        "layer_types" if layer_types is not None else "exclude_layers",
        list(layer_types if layer_types is not None else exclude),
        f"a selection that leaves a layer of {model.name} to {acting}: layer_types, "
        f"exclude_layers and keep_first_last exclude all of {candidates}",
    )
    return selected


def map_layers(model, wrap):
    """A clone of ``model`` whose every leaf layer is ``wrap(layer)``, nested models (a
    transfer backbone) included: their layers are mapped in place, as tfmot does for a whole
    model. ``wrap`` returns the layer itself to keep it; the kept layers are the same objects."""
    import tf_keras as keras

    def clone(layer):
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, input_tensors=None, clone_function=clone)
        return wrap(layer)

    return keras.models.clone_model(model, input_tensors=None, clone_function=clone)
