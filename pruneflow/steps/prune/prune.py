"""Prune stage: magnitude pruning with tfmot, fine-tuning, stripping, and measured sparsity."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pruneflow.steps.data.loaders import ImageDataset
from pruneflow.steps.model.measure import leaf_layers, macs
from pruneflow.steps.model.select import map_layers
from pruneflow.steps.model.select import select_layers as select
from pruneflow.steps.model.source import custom_layers
from pruneflow.steps.prune import channels as thin
from pruneflow.steps.prune.config import PRUNABLE_LAYER_TYPES, PruneConfig
from pruneflow.steps.prune.distributions import DISTRIBUTIONS
from pruneflow.steps.train.train import fit, load_model

log = logging.getLogger(__name__)


@dataclass
class Pruned:
    """A pruned (and stripped) model with what was measured on its weights."""

    model: object
    history: dict[str, list[float]] = field(default_factory=dict)
    sparsity: float = 0.0
    params_total: int = 0
    params_nonzero: int = 0
    layers: list[dict] = field(default_factory=list)
    # Selected layers the target leaves without a single weight (tfmot then keeps just one).
    layers_without_weights: list[str] = field(default_factory=list)
    channels: float = 0.0  # measured fraction of prunable output channels removed
    macs: int = 0  # multiply-accumulates per image of this model
    baseline_macs: int = 0  # ... and of the baseline it was made from
    selected: list[str] = field(default_factory=list)  # layers given to magnitude pruning
    targets: dict[str, float] = field(default_factory=dict)  # ... and their target sparsity
    channels_before: dict[str, int] = field(default_factory=dict)  # output channels, by layer
    left_dense: list[str] = field(default_factory=list)  # custom layers no optimization touches
    channels_all: float = 0.0  # measured fraction of every kernel layer's output channels removed

    @property
    def macs_removed(self) -> float:
        """The fraction of the baseline's multiply-accumulates this model no longer does."""
        return 1 - self.macs / self.baseline_macs if self.baseline_macs else 0.0

    def layer_table(self, model, clustered: Sequence[str] = ()) -> list[dict]:
        """:func:`layer_table` of ``model`` made from this one by a later step (clustering:
        the layers it ``clustered``), with this pruning's selection, targets and channels."""
        return layer_table(model, self.selected, self.targets, self.channels_before, clustered)


def layers_without_weights(rows: list[dict], targets: Mapping[str, float]) -> list[str]:
    """Layers (rows of :func:`layer_table`) whose target sparsity keeps no weight at all:
    fewer than half a weight, which magnitude pruning rounds to none."""
    return [
        r["layer"]
        for r in rows
        if r["layer"] in targets and round(r["size"] * (1 - targets[r["layer"]])) < 1
    ]


def _is_kernel(weight) -> bool:
    """A kernel weight (``kernel``, ``depthwise_kernel``, ``pointwise_kernel``), not a bias."""
    return weight.name.split("/")[-1].split(":")[0].endswith("kernel")


def kernel_arrays(model) -> list[np.ndarray]:
    """The kernels of every layer that holds one (Conv, Dense, Depthwise...), as numpy arrays.

    This is where pruning acts; sparsity is measured here, whatever tfmot says it pruned.
    """
    return [w.numpy() for w in model.weights if _is_kernel(w)]


def sparsity_of(arrays: list[np.ndarray]) -> float:
    """Fraction of exact zeros over all elements of ``arrays`` (0.0 for no elements)."""
    total = sum(a.size for a in arrays)
    if total == 0:
        return 0.0
    return sum(int(a.size - np.count_nonzero(a)) for a in arrays) / total


def count_params(arrays: list[np.ndarray]) -> tuple[int, int]:
    """(total, nonzero) element counts over ``arrays``."""
    return sum(a.size for a in arrays), sum(int(np.count_nonzero(a)) for a in arrays)


def select_layers(
    model, layer_types: Sequence[str] | None, exclude: Sequence[str], keep_first_last: bool
) -> list[str]:
    """Names of the layers to prune: prunable types (optionally only ``layer_types``), minus
    the ``exclude``d names, minus the first and last prunable layers with ``keep_first_last``."""
    return select(
        model, layer_types, exclude, keep_first_last, kinds=PRUNABLE_LAYER_TYPES, acting="prune"
    )


def out_channels(layer) -> int:
    """A kernel layer's output channels (filters, units; a depthwise layer's in x multiplier)."""
    if type(layer).__name__ == "DepthwiseConv2D":
        kernel = layer.depthwise_kernel.shape
        return int(kernel[-2] * kernel[-1])
    kernel = layer.pointwise_kernel if hasattr(layer, "pointwise_kernel") else layer.kernel
    return int(kernel.shape[-1])


def layer_table(
    model,
    selected: Sequence[str],
    targets: Mapping[str, float] | None = None,
    before: Mapping[str, int] | None = None,
    clustered: Sequence[str] = (),
) -> list[dict]:
    """Per kernel: layer, type, its output channels before channel pruning (``before``, by
    layer name; else as now) and after, whether it was selected for unstructured pruning, its
    target sparsity (the distribution's share), size, measured zeros, whether it was
    ``clustered`` and its distinct values.

    Shows where tfmot left kernels dense (DepthwiseConv2D; 2:4 blocks of 1-channel convs)."""
    rows = []
    own = set(custom_layers(model))
    for layer in leaf_layers(model):
        custom = layer.name in own
        for w in layer.weights:
            if _is_kernel(w) or custom:  # a custom layer's weights: listed, left dense
                a = w.numpy()
                now = int(a.shape[-1]) if custom else out_channels(layer)
                rows.append(
                    {
                        "layer": layer.name,
                        "type": type(layer).__name__,
                        "channels_before": (before or {}).get(layer.name, now),
                        "channels_after": now,
                        "weight": w.name,
                        "selected": layer.name in selected,
                        "target": (targets or {}).get(layer.name, 0.0),
                        "size": int(a.size),
                        "zeros": int(a.size - np.count_nonzero(a)),
                        "sparsity": sparsity_of([a]),
                        "clustered": layer.name in clustered,
                        "unique_values": int(np.unique(a).size),
                    }
                )
    return rows


def _wrap(model, schedules: Mapping[str, object], m_by_n: tuple[int, int] | None):
    """``model`` with each layer named in ``schedules`` wrapped by tfmot's
    ``prune_low_magnitude`` with its own schedule (nested backbones included). Other layers
    are kept as they are."""
    import tensorflow_model_optimization as tfmot

    def wrap(layer):
        if layer.name in schedules:
            return tfmot.sparsity.keras.prune_low_magnitude(
                layer, pruning_schedule=schedules[layer.name], sparsity_m_by_n=m_by_n
            )
        return layer

    return map_layers(model, wrap)


def prune_model(
    baseline_path, data: ImageDataset, config: PruneConfig, *, batch_size: int, seed: int
) -> Pruned:
    """Prune a fresh copy of the baseline: channels first (``config.channels``: a thinner
    dense model, :func:`thin_model`), then its weights to ``config.sparsity``, fine-tuned.

    ``config.distribution`` spreads the sparsity over the selected layers
    (:mod:`.distributions`); the ``polynomial`` schedule ramps up over the first
    ``ramp_fraction`` of the fine-tuning steps, then fine-tuning goes on at the final sparsity;
    ``lr_schedule=cosine`` decays the learning rate over the fine-tuning steps. ``pattern``:
    ``unstructured`` or ``2:4`` (two zeros in every block of four weights).
    ``sparsity == 0`` and ``channels == 0`` mean no pruning: the baseline itself is returned.
    The returned model has its pruning wrappers stripped; sparsity, channels and MACs are
    measured from it. Writes nothing.
    """
    c = config
    model = load_model(baseline_path)  # fresh copy: pruning overwrites the source's weights
    baseline_macs = macs(model)
    before = {la.name: out_channels(la) for la in leaf_layers(model) if _has_kernel(la)}
    history: dict[str, list[float]] = {}
    removed = 0.0
    if c.channels > 0:
        model, history, removed = thin_model(model, data, c, batch_size=batch_size, seed=seed)
    selected: list[str] = []
    targets: dict[str, float] = {}
    starved: list[str] = []
    if c.sparsity > 0:
        model, more, selected, targets, starved = _sparsify(
            model, data, c, batch_size=batch_size, seed=seed
        )
        history = {k: history.get(k, []) + more.get(k, []) for k in {*history, *more}}
    kernels = kernel_arrays(model)
    total, nonzero = count_params([w.numpy() for w in model.weights])
    after = {la.name: out_channels(la) for la in leaf_layers(model) if la.name in before}
    channels_all = 1 - sum(after.values()) / sum(before.values()) if before else 0.0
    model_macs = macs(model)
    table = layer_table(model, selected, targets, before)
    weighted = {la.name for la in leaf_layers(model) if la.weights}
    left_dense = [name for name in custom_layers(model) if name in weighted]
    if left_dense:
        log.info("left dense (custom layers, no optimization handles them): %s", left_dense)
    log.info(
        "pruned to measured sparsity %.4f (target %g), channels %.4f removed (target %g; "
        "%.4f of all channels, %.4f of the MACs)",
        sparsity_of(kernels),
        c.sparsity,
        removed,
        c.channels,
        channels_all,
        1 - model_macs / baseline_macs if baseline_macs else 0.0,
    )
    return Pruned(
        model,
        history,
        sparsity_of(kernels),
        total,
        nonzero,
        table,
        starved,
        channels=removed,
        macs=model_macs,
        baseline_macs=baseline_macs,
        selected=selected,
        targets=targets,
        channels_before=before,
        left_dense=left_dense,
        channels_all=channels_all,
    )


def _has_kernel(layer) -> bool:
    return any(_is_kernel(w) for w in layer.weights)


def thin_model(
    model, data: ImageDataset, config: PruneConfig, *, batch_size: int, seed: int
) -> tuple[object, dict[str, list[float]], float]:
    """``model`` with ``config.channels`` of its prunable output channels removed
    (:mod:`.channels`): (the thin model, its fine-tuning history, the measured fraction).

    ``oneshot``: removed at once, then fine-tuned for ``epochs`` (unless ``sparsity > 0``: the
    unstructured pruning's fine-tuning that follows is the recovery). ``gradual``: an equal
    share of the target removed before each of the ``epochs`` epochs (with ``cosine``, each
    epoch's learning rate is the cosine's at its start)."""
    import tf_keras as keras

    c = config
    graph = thin.analyze(model)
    thin.check_selection(graph, c.channel_exclude, c.channel_keep_first_last, model, c.channels)
    producers = {p: g for g, grp in graph.prunable().items() for p in grp.producers}
    before = {la.name: out_channels(la) for la in leaf_layers(model) if la.name in producers}
    keras.utils.set_random_seed(seed)
    history: dict[str, list[float]] = {}
    stages = c.epochs if c.channel_schedule == "gradual" else 1
    for i in range(1, stages + 1):
        # remaining after stage i: 1 - channels * i / stages, of the original channels
        share = 1 - (1 - c.channels * i / stages) / (1 - c.channels * (i - 1) / stages)
        model = thin.rebuild(model, thin.plan(model, share, c))
        epochs = 0 if c.sparsity > 0 else c.epochs
        rate = c.learning_rate
        if stages > 1:
            epochs = 1
            if c.lr_schedule == "cosine":
                rate = c.learning_rate * 0.5 * (1 + math.cos(math.pi * (i - 1) / stages))
        elif c.lr_schedule == "cosine" and epochs:
            steps = epochs * math.ceil(data.train_size / batch_size)
            rate = keras.optimizers.schedules.CosineDecay(c.learning_rate, decay_steps=steps)
        label = f"fine-tune (stage {i}/{stages})" if stages > 1 else "fine-tune"
        more = fit(
            model,
            data,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=rate,
            seed=seed,
            label=label,
        )
        history = {k: history.get(k, []) + more.get(k, []) for k in {*history, *more}}
    after = {la.name: out_channels(la) for la in leaf_layers(model) if la.name in producers}
    removed = sum(before[p] - after[p] for p in before) / sum(before.values())
    return model, history, removed


def _sparsify(model, data: ImageDataset, config: PruneConfig, *, batch_size: int, seed: int):
    """tfmot's magnitude pruning of ``model`` to ``config.sparsity``, fine-tuned and stripped:
    (model, history, selected layers, their targets, layers left without a weight)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    c = config
    sparsity_keras = tfmot.sparsity.keras
    selected = select_layers(model, c.layer_types, c.exclude_layers, c.keep_first_last)
    steps = c.epochs * math.ceil(data.train_size / batch_size)
    spread = DISTRIBUTIONS[c.distribution](c, steps)
    kernels = {
        layer.name: next(w for w in layer.weights if _is_kernel(w)).numpy()
        for layer in leaf_layers(model)
        if layer.name in selected
    }
    targets = spread.targets(kernels)
    starved = layers_without_weights(layer_table(model, selected), targets)
    if starved:
        log.warning(
            "sparsity %g leaves these layers without a single weight: %s (tfmot keeps one; "
            "the model will not classify: lower the sparsity or exclude them with "
            "prune.exclude_layers)",
            c.sparsity,
            ", ".join(starved),
        )
    keras.utils.set_random_seed(seed)
    schedules = spread.schedules(targets)
    pruned = _wrap(model, schedules, (2, 4) if c.pattern == "2:4" else None)
    wrappers = {  # tfmot's wrappers of the pruned layers (named after the layer they wrap)
        w.layer.name: w
        for w in leaf_layers(pruned)
        if getattr(w, "layer", None) is not None and w.layer.name in schedules
    }
    callbacks = [sparsity_keras.UpdatePruningStep(), *spread.callbacks(wrappers, schedules)]
    rate = c.learning_rate
    if c.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(c.learning_rate, decay_steps=steps)
    history = fit(
        pruned,
        data,
        epochs=c.epochs,
        batch_size=batch_size,
        learning_rate=rate,
        callbacks=callbacks,
        seed=seed,
        label="fine-tune",
    )
    targets = spread.final_targets(targets, schedules)
    return sparsity_keras.strip_pruning(pruned), history, selected, targets, starved
