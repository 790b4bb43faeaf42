"""Cluster step: tfmot's weight clustering of the pruned model, fine-tuned and stripped.

Each selected kernel's weights are replaced by the nearest of ``cluster.clusters`` centroids,
which fine-tuning then trains; a clustered file compresses far better than a pruned one alone
(tfmot's collaborative optimization). When the model was pruned, clustering preserves its zeros
(tfmot's ``preserve_sparsity``: sparsity-preserving clustering). Channel-pruned models are
clustered as they are: thin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pruneflow.errors import ArgumentError
from pruneflow.steps.cluster.config import CLUSTERABLE_LAYER_TYPES, ClusterConfig
from pruneflow.steps.data.loaders import ImageDataset
from pruneflow.steps.model.measure import leaf_layers
from pruneflow.steps.model.select import map_layers, select_layers
from pruneflow.steps.train.train import fit

log = logging.getLogger(__name__)


@dataclass
class Clustered:
    """A clustered (and stripped) model: the layers clustered, whether their zeros were
    preserved, its fine-tuning history, and the most distinct values left in any of its
    clustered kernels (measured)."""

    model: object
    layers: list[str]
    preserve_sparsity: bool
    history: dict[str, list[float]] = field(default_factory=dict)
    unique_weights: int = 0


def clustered_weight(layer):
    """The weight tfmot clusters in ``layer`` (``kernel``; ``pointwise_kernel`` of a separable
    convolution, ``embeddings`` of an embedding), as tfmot's registry names it."""
    for name in ("pointwise_kernel", "kernel", "embeddings"):
        weight = getattr(layer, name, None)
        if weight is not None:
            return weight
    raise ValueError(f"layer {layer.name} has no weight tfmot clusters")


def select(model, config: ClusterConfig) -> list[str]:
    """The layers of ``model`` to cluster (``cluster.layer_types``, ``exclude_layers``,
    ``keep_first_last``), each with more weights than ``config.clusters``: a layer with fewer
    is an :class:`ArgumentError` naming it (tfmot would silently leave a Conv2D unclustered)."""
    c = config
    selected = select_layers(
        model,
        c.layer_types,
        c.exclude_layers,
        c.keep_first_last,
        kinds=CLUSTERABLE_LAYER_TYPES,
        acting="cluster",
    )
    sizes = {
        la.name: int(clustered_weight(la).shape.num_elements())
        for la in leaf_layers(model)
        if la.name in selected
    }
    small = {name: n for name, n in sizes.items() if n <= c.clusters}
    if small:
        name, n = min(small.items(), key=lambda kv: kv[1])
        raise ArgumentError(
            "clusters",
            c.clusters,
            f"integers from 2 to {n - 1}: layer {name} has {n} weights (fewer clusters than "
            f"weights), or leave it out with cluster.exclude_layers=[{', '.join(sorted(small))}]",
        )
    return selected


def cluster_model(
    model,
    data: ImageDataset,
    config: ClusterConfig,
    *,
    preserve_sparsity: bool,
    batch_size: int,
    seed: int,
) -> Clustered:
    """``model`` clustered to ``config.clusters`` centroids per selected kernel (initialised
    by ``config.init``), fine-tuned for ``config.epochs`` at ``config.learning_rate``, with its
    clustering wrappers stripped. ``preserve_sparsity``: keep the model's zeros (a pruned
    model). tfmot's wrappers act on the layer objects of ``model``: its kernels are clustered
    too, so pass a model that is not needed unclustered. With ``preserve_sparsity``, a layer
    left with no more nonzero weights than clusters is not clustered (it holds no more values
    already); the layers it leaves unclustered are frozen while the centroids are fine-tuned,
    so their zeros stay too. Writes nothing."""
    import numpy as np
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    c = config
    cl = tfmot.clustering.keras
    selected = set(select(model, c))
    if preserve_sparsity:  # centroids go to the nonzero weights: a layer with no more of them
        # than clusters already holds at most that many values (and tfmot's k-means++ fails)
        few = {
            la.name: n
            for la in leaf_layers(model)
            if la.name in selected
            and (n := int(np.count_nonzero(clustered_weight(la).numpy()))) <= c.clusters
        }
        for name, n in sorted(few.items()):
            log.info(
                "%s keeps its %d nonzero weights as they are (no more than %d clusters)",
                name,
                n,
                c.clusters,
            )
        selected -= set(few)
    init = cl.CentroidInitialization[c.init.upper()]

    def wrap(layer):
        if layer.name in selected:
            return cl.cluster_weights(
                layer,
                number_of_clusters=c.clusters,
                cluster_centroids_init=init,
                preserve_sparsity=preserve_sparsity,
            )
        if preserve_sparsity and layer.weights and layer.trainable:
            frozen.append(layer)  # not clustered: its zeros stay while the centroids train
            layer.trainable = False
        return layer

    frozen: list = []
    keras.utils.set_random_seed(seed)
    wrapped = map_layers(model, wrap)  # nested backbones: their layers, in place
    history = fit(
        wrapped,
        data,
        epochs=c.epochs,
        batch_size=batch_size,
        learning_rate=c.learning_rate,
        seed=seed,
        label="cluster",
    )
    stripped = cl.strip_clustering(wrapped)
    for layer in frozen:
        layer.trainable = True
    layers = [la for la in leaf_layers(stripped) if la.name in selected]
    most = max((len(np.unique(clustered_weight(la).numpy())) for la in layers), default=0)
    log.info(
        "clustered %d layers to %d centroids (%s): at most %d distinct values in a kernel%s",
        len(layers),
        c.clusters,
        c.init,
        most,
        ", zeros preserved" if preserve_sparsity else "",
    )
    return Clustered(stripped, [la.name for la in layers], preserve_sparsity, history, most)
