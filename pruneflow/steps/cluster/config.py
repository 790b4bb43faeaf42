"""The ``cluster`` section's schema: weight clustering (tfmot's ``cluster_weights``) of the
pruned model. Light: no TensorFlow. Every key's default is here; the step
(:func:`.cluster.cluster_model`) receives this."""

from __future__ import annotations

from dataclasses import dataclass, field

from pruneflow.errors import positive, require
from pruneflow.steps.prune.config import PRUNABLE_LAYER_TYPES

# tfmot's centroid initialisations (tfmot.clustering.keras.CentroidInitialization), by the
# lower-case name of their enum member.
INITS = ("kmeans_plus_plus", "linear", "density_based", "random")
# Framework fact: the Keras layer types whose kernels tfmot 0.8.1 clusters
# (clustering_registry.ClusteringRegistry): the ones it prunes and Conv1DTranspose.
# DepthwiseConv2D and BatchNormalization are in its registry with no weight to cluster, so
# they are not offered.
CLUSTERABLE_LAYER_TYPES = PRUNABLE_LAYER_TYPES | {"Conv1DTranspose"}


def preserves_sparsity(sparsity: float) -> bool:
    """Whether clustering a model pruned to ``sparsity`` keeps its zeros (tfmot's
    sparsity-preserving clustering): whenever it was pruned."""
    return sparsity > 0


def least_clusters(preserve_sparsity: bool) -> int:
    """The fewest clusters tfmot 0.8.1 takes (``ClusterWeights``: ``number_of_clusters`` must
    be greater than 2 with ``preserve_sparsity``, else greater than 1)."""
    return 3 if preserve_sparsity else 2


@dataclass
class ClusterConfig:
    # centroids per weight tensor: each clustered kernel keeps at most this many distinct
    # values (and pruning's zeros, which clustering preserves when the model was pruned)
    clusters: int = 0  # 0 = off; else >= 2, and >= 3 on a pruned model (least_clusters)
    init: str = "kmeans_plus_plus"  # kmeans_plus_plus | linear | density_based | random
    epochs: int = 2  # fine-tuning epochs of the clustered model (its centroids are trained)
    learning_rate: float = 1e-4  # the clustered model's fine-tuning learning rate
    layer_types: list[str] | None = None  # null: every clusterable type; e.g. [Dense]
    exclude_layers: list[str] = field(default_factory=list)  # layer names left unclustered
    keep_first_last: bool = False  # leave the first and last clusterable layers unclustered

    def __post_init__(self) -> None:
        k = self.clusters
        require(
            isinstance(k, int) and (k == 0 or k >= least_clusters(False)),
            "clusters",
            k,
            f"0 (no clustering) or integers >= {least_clusters(False)} (>= "
            f"{least_clusters(True)} on a pruned model)",
        )
        require(self.init in INITS, "init", self.init, str(list(INITS)))
        require(self.epochs >= 0, "epochs", self.epochs, "integers >= 0")
        rate = self.learning_rate
        require(positive(rate), "learning_rate", rate, "finite floats > 0")
        types = list(self.layer_types or ())
        unknown = sorted(set(types) - CLUSTERABLE_LAYER_TYPES)
        require(
            not unknown,
            "layer_types",
            types,
            f"null or a list drawn from {sorted(CLUSTERABLE_LAYER_TYPES)} (the layer types "
            f"tfmot clusters; it has no weight to cluster in {', '.join(unknown)})",
        )
