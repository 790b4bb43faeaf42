"""Quantize stage: quantization-aware training for ``tflite_int8_qat`` that preserves what the
steps before it made: pruning's zeros (PQAT), clustering's centroids (CQAT), or both (PCQAT).

Plain QAT re-learns every weight and destroys pruning's zeros and clustering's shared values;
tfmot's collaborative-optimization schemes keep them. The fine-tuned quantization-aware model
is converted to full-integer TFLite by :mod:`pruneflow.steps.convert.convert`.
"""

from __future__ import annotations

from pruneflow.errors import require
from pruneflow.steps.convert.config import StageConfig
from pruneflow.steps.data.loaders import ImageDataset
from pruneflow.steps.train.train import fit

# Layers that get weight and activation fake-quantization (the prune-preserve scheme covers
# these); others run in float during training and are calibrated at conversion.
QAT_LAYER_TYPES = frozenset({"Conv2D", "Dense", "DepthwiseConv2D"})
# Preprocessing layers at the input: only their output is fake-quantized, so the first
# convolution sees a quantized input as it will in the int8 model.
OUTPUT_ONLY_TYPES = frozenset({"Rescaling", "Normalization", "Resizing", "Concatenate"})


def _output_only_config():
    import tensorflow_model_optimization as tfmot

    q = tfmot.quantization.keras

    class OutputOnlyQuantizeConfig(q.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [
                q.quantizers.MovingAverageQuantizer(
                    num_bits=8, per_axis=False, symmetric=False, narrow_range=False
                )
            ]

        def get_config(self):
            return {}

    return OutputOnlyQuantizeConfig


# tfmot's schemes, by the tag value a run records (``qat.scheme``): prune-preserving (also
# what a dense, unclustered model gets: with no zeros it is plain QAT), cluster-preserving,
# and sparsity- and cluster-preserving.
SCHEMES = ("pqat", "cqat", "pcqat")


def scheme_for(clustered: bool, pruned: bool) -> str:
    """The scheme that keeps what the model has: ``pcqat``, ``cqat`` or ``pqat``."""
    if clustered:
        return "pcqat" if pruned else "cqat"
    return "pqat"


def _scheme(name: str):
    import tensorflow_model_optimization as tfmot

    combine = tfmot.experimental.combine
    if name == "pqat":
        return combine.Default8BitPrunePreserveQuantizeScheme()
    return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=name == "pcqat")


def nests_a_model(model) -> bool:
    """True when ``model`` holds another model as a layer (a transfer backbone's base)."""
    import tf_keras as keras

    return any(isinstance(layer, keras.Model) for layer in model.layers)


def quantize_aware(
    model,
    data: ImageDataset,
    config: StageConfig,
    *,
    batch_size: int,
    seed: int,
    scheme: str = "pqat",
):
    """A quantization-aware copy of ``model`` under ``scheme`` (:data:`SCHEMES`; see
    :func:`scheme_for`), fine-tuned for ``config.qat_epochs`` at ``config.qat_learning_rate``.

    A QAT model scores chance accuracy before its first training step (tfmot 0.8.1, measured), so
    the schema requires an epoch. Models with a nested backbone are not supported by tfmot's QAT.
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    require(
        not nests_a_model(model),
        "model",
        model.name,
        "a model without a nested model inside (tfmot cannot quantize one); use tflite_int8 "
        "(post-training) for transfer backbones",
    )
    require(scheme in SCHEMES, "scheme", scheme, str(list(SCHEMES)))
    q = tfmot.quantization.keras
    config_cls = _output_only_config()

    def annotate(layer):
        kind = type(layer).__name__
        if kind in QAT_LAYER_TYPES:
            return q.quantize_annotate_layer(layer)
        if kind in OUTPUT_ONLY_TYPES:
            return q.quantize_annotate_layer(layer, quantize_config=config_cls())
        return layer

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    with q.quantize_scope({"OutputOnlyQuantizeConfig": config_cls}):
        qat = q.quantize_apply(annotated, _scheme(scheme))
    keras.utils.set_random_seed(seed)
    fit(
        qat,
        data,
        epochs=config.qat_epochs,
        batch_size=batch_size,
        learning_rate=config.qat_learning_rate,
        seed=seed,
        label="qat",
    )
    return qat
