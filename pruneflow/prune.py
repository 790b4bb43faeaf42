"""Prune stage: magnitude pruning with tfmot, fine-tuning, stripping, and measured sparsity."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pruneflow.data import ImageDataset
from pruneflow.errors import ArgumentError, require
from pruneflow.train import fit, load_model

log = logging.getLogger(__name__)

SCHEDULES = ("constant", "polynomial")
PATTERNS = ("unstructured", "2:4")
# Framework fact: the Keras layer types whose kernels tfmot's magnitude pruning zeroes.
# DepthwiseConv2D is registered by tfmot with no prunable weight, so it stays dense.
PRUNABLE_LAYER_TYPES = frozenset(
    {
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "SeparableConv1D",
        "SeparableConv2D",
        "Dense",
        "Embedding",
    }
)


def check_pruning(
    sparsity: float,
    schedule: str = "polynomial",
    epochs: int = 1,
    learning_rate: float = 1e-3,
    frequency: int = 10,
    pattern: str = "unstructured",
    layer_types: Sequence[str] | None = None,
) -> None:
    """Raise :class:`ArgumentError` for arguments :func:`prune_model` cannot work with."""
    require(
        isinstance(sparsity, float) and math.isfinite(sparsity) and 0.0 <= sparsity < 1.0,
        "sparsity",
        sparsity,
        "floats in [0, 1) (0 = no pruning)",
    )
    require(schedule in SCHEDULES, "schedule", schedule, str(list(SCHEDULES)))
    require(
        epochs >= (1 if sparsity > 0 else 0),
        "epochs",
        epochs,
        "integers >= 1 when sparsity > 0 (fine-tuning with pruning)",
    )
    require(learning_rate > 0, "learning_rate", learning_rate, "floats > 0")
    require(frequency >= 1, "frequency", frequency, "integers >= 1")
    require(pattern in PATTERNS, "pattern", pattern, str(list(PATTERNS)))
    if pattern == "2:4":
        require(
            sparsity in (0.0, 0.5),
            "sparsity",
            sparsity,
            "0.5 with pattern 2:4 (two of every four weights are zeroed)",
        )
    unknown = sorted(set(layer_types or ()) - PRUNABLE_LAYER_TYPES)
    require(
        not unknown,
        "layer_types",
        list(layer_types or ()),
        f"null or a list drawn from {sorted(PRUNABLE_LAYER_TYPES)}",
    )


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


def layers_without_weights(rows: list[dict], sparsity: float) -> list[str]:
    """Selected layers (rows of :func:`layer_table`) where ``sparsity`` keeps no weight at all:
    fewer than half a weight, which magnitude pruning rounds to none."""
    return [r["layer"] for r in rows if r["selected"] and round(r["size"] * (1 - sparsity)) < 1]


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


def schedule_steps(total_steps: int, frequency: int) -> tuple[int, int]:
    """(end_step, frequency) for a polynomial schedule over ``total_steps`` training steps.

    The final sparsity is applied only on a step that is a multiple of ``frequency`` and not
    after ``end_step``, so ``end_step`` is the last such step that training reaches; the
    frequency shrinks for short runs so that the ramp has more than one step.
    Returns end_step 0 when the run is too short for a ramp (use a constant schedule).
    """
    if total_steps < 1 or frequency < 1:
        raise ValueError("total_steps and frequency must be >= 1")
    last = total_steps - 1
    freq = max(1, min(frequency, last // 2))
    return freq * (last // freq), freq


def make_schedule(kind: str, sparsity: float, total_steps: int, frequency: int):
    """A tfmot pruning schedule reaching ``sparsity`` within ``total_steps`` steps."""
    import tensorflow_model_optimization as tfmot

    sparsity_keras = tfmot.sparsity.keras
    require(kind in SCHEDULES, "schedule", kind, str(list(SCHEDULES)))
    end_step, freq = schedule_steps(total_steps, frequency)
    if kind == "constant" or end_step == 0:
        return sparsity_keras.ConstantSparsity(sparsity, begin_step=0, frequency=freq)
    return sparsity_keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=freq,
    )


def leaf_layers(model) -> list:
    """Every layer of ``model`` in order, nested models (a transfer backbone) expanded."""
    out = []
    for layer in model.layers:
        out.extend(leaf_layers(layer) if hasattr(layer, "layers") and layer.layers else [layer])
    return out


def select_layers(
    model,
    layer_types: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    keep_first_last: bool = False,
) -> list[str]:
    """Names of the layers to prune: prunable types (optionally only ``layer_types``), minus
    the ``exclude``d names, minus the first and last prunable layers with ``keep_first_last``."""
    types = PRUNABLE_LAYER_TYPES if layer_types is None else set(layer_types)
    prunable = [la.name for la in leaf_layers(model) if type(la).__name__ in PRUNABLE_LAYER_TYPES]
    missing = sorted(set(exclude) - {la.name for la in leaf_layers(model)})
    if missing:
        raise ArgumentError(
            "exclude_layers", missing, f"names of layers of {model.name}: {prunable}"
        )
    skip = set(exclude)
    if keep_first_last and prunable:
        skip |= {prunable[0], prunable[-1]}
    return [
        la.name
        for la in leaf_layers(model)
        if type(la).__name__ in types and la.name in prunable and la.name not in skip
    ]


def layer_table(model, selected: Sequence[str]) -> list[dict]:
    """Per kernel: layer, type, whether it was selected for pruning, size and measured zeros.

    Shows where tfmot left kernels dense (DepthwiseConv2D; 2:4 blocks of 1-channel convs)."""
    rows = []
    for layer in leaf_layers(model):
        for w in layer.weights:
            if _is_kernel(w):
                a = w.numpy()
                rows.append(
                    {
                        "layer": layer.name,
                        "type": type(layer).__name__,
                        "weight": w.name,
                        "selected": layer.name in selected,
                        "size": int(a.size),
                        "zeros": int(a.size - np.count_nonzero(a)),
                        "sparsity": sparsity_of([a]),
                    }
                )
    return rows


def _policy(selected: Sequence[str]):
    """A tfmot PruningPolicy wrapping exactly the ``selected`` layers.

    tfmot's own default refuses whole models that contain layers outside its registry (such as
    the Rescaling layer every pruneflow model starts with); this policy leaves those alone.
    """
    import tensorflow_model_optimization as tfmot

    chosen = set(selected)

    class Selected(tfmot.sparsity.keras.PruningPolicy):
        def allow_pruning(self, layer):
            return layer.name in chosen

        def ensure_model_supports_pruning(self, model):
            pass

    return Selected()


def prune_model(
    baseline_path,
    data: ImageDataset,
    *,
    sparsity: float,
    schedule: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    frequency: int,
    seed: int,
    pattern: str = "unstructured",
    layer_types: Sequence[str] | None = None,
    exclude_layers: Sequence[str] = (),
    keep_first_last: bool = False,
) -> Pruned:
    """Prune a fresh copy of the baseline to ``sparsity`` and fine-tune it for ``epochs``.

    ``pattern``: ``unstructured`` (magnitude pruning to ``sparsity``) or ``2:4`` (two zeros in
    every block of four weights, for sparse kernels; ``sparsity`` must then be 0.5).
    ``sparsity == 0`` means no pruning: the baseline itself is returned. The returned model has
    its pruning wrappers stripped; sparsity is measured from its weights. Writes nothing.
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    check_pruning(sparsity, schedule, epochs, learning_rate, frequency, pattern, layer_types)
    sparsity_keras = tfmot.sparsity.keras
    model = load_model(baseline_path)  # fresh copy: pruning overwrites the source's weights
    history: dict[str, list[float]] = {}
    selected: list[str] = []
    starved: list[str] = []
    if sparsity > 0:
        selected = select_layers(model, layer_types, exclude_layers, keep_first_last)
        starved = layers_without_weights(layer_table(model, selected), sparsity)
        if starved:
            log.warning(
                "sparsity %g leaves these layers without a single weight: %s (tfmot keeps one; "
                "the model will not classify: lower the sparsity or exclude them with "
                "prune.exclude_layers)",
                sparsity,
                ", ".join(starved),
            )
        keras.utils.set_random_seed(seed)
        steps = epochs * math.ceil(data.train_size / batch_size)
        pruned = sparsity_keras.prune_low_magnitude(
            model,
            pruning_schedule=make_schedule(schedule, sparsity, steps, frequency),
            pruning_policy=_policy(selected),
            sparsity_m_by_n=(2, 4) if pattern == "2:4" else None,
        )
        history = fit(
            pruned,
            data,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            callbacks=[sparsity_keras.UpdatePruningStep()],
            seed=seed,
        )
        model = sparsity_keras.strip_pruning(pruned)
    kernels = kernel_arrays(model)
    total, nonzero = count_params([w.numpy() for w in model.weights])
    table = layer_table(model, selected)
    log.info("pruned to measured sparsity %.4f (target %g)", sparsity_of(kernels), sparsity)
    return Pruned(model, history, sparsity_of(kernels), total, nonzero, table, starved)
