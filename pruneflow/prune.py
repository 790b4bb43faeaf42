"""Prune stage: magnitude pruning with tfmot, fine-tuning, stripping, and measured sparsity."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pruneflow.data import ImageDataset
from pruneflow.errors import ArgumentError, require
from pruneflow.train import fit, load_model

log = logging.getLogger(__name__)

SCHEDULES = ("constant", "polynomial")
PATTERNS = ("unstructured", "2:4")
# How a global target is spread over the selected layers: every layer at the target (tfmot's
# default, the paper's method); Erdos-Renyi-Kernel densities (RigL, Evci et al. 2020); one
# magnitude threshold across all layers, recomputed as the ramp advances.
DISTRIBUTIONS = ("uniform", "erk", "global")
LR_SCHEDULES = ("constant", "cosine")  # the fine-tuning learning rate: fixed, or cosine decay
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
    distribution: str = "uniform",
    ramp_fraction: float = 1.0,
    lr_schedule: str = "constant",
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
    require(distribution in DISTRIBUTIONS, "distribution", distribution, str(list(DISTRIBUTIONS)))
    if pattern == "2:4":
        require(
            distribution == "uniform",
            "distribution",
            distribution,
            "'uniform' with pattern 2:4 (every block of four keeps two weights)",
        )
    require(0.0 < ramp_fraction <= 1.0, "ramp_fraction", ramp_fraction, "floats in (0, 1]")
    require(lr_schedule in LR_SCHEDULES, "lr_schedule", lr_schedule, str(list(LR_SCHEDULES)))
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


def schedule_steps(total_steps: int, frequency: int, ramp_fraction: float = 1.0) -> tuple[int, int]:
    """(end_step, frequency) for a polynomial ramp over the first ``ramp_fraction`` of
    ``total_steps`` training steps (Zhu & Gupta's gradual pruning: the rest fine-tunes at the
    final sparsity).

    The final sparsity is applied only on a step that is a multiple of ``frequency`` and not
    after ``end_step``, so ``end_step`` is the last such step that the ramp reaches; the
    frequency shrinks for short runs so that the ramp has more than one step.
    Returns end_step 0 when the run is too short for a ramp (use a constant schedule).
    """
    if total_steps < 1 or frequency < 1:
        raise ValueError("total_steps and frequency must be >= 1")
    last = max(1, round(ramp_fraction * total_steps)) - 1
    freq = max(1, min(frequency, last // 2))
    return freq * (last // freq), freq


def make_schedule(
    kind: str, sparsity: float, total_steps: int, frequency: int, ramp_fraction: float = 1.0
):
    """A tfmot pruning schedule reaching ``sparsity`` within the first ``ramp_fraction`` of
    ``total_steps`` steps."""
    import tensorflow_model_optimization as tfmot

    sparsity_keras = tfmot.sparsity.keras
    require(kind in SCHEDULES, "schedule", kind, str(list(SCHEDULES)))
    end_step, freq = schedule_steps(total_steps, frequency, ramp_fraction)
    if kind == "constant" or end_step == 0:
        return sparsity_keras.ConstantSparsity(sparsity, begin_step=0, frequency=freq)
    return sparsity_keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=freq,
    )


def ramp(step: int, end_step: int, target: float, power: int = 3) -> float:
    """The sparsity of tfmot's PolynomialDecay from 0 at step 0 to ``target`` at ``end_step``."""
    if end_step <= 0:
        return target
    p = min(1.0, max(0.0, step / end_step))
    return target * (1.0 - (1.0 - p) ** power)


def erk_densities(shapes: Mapping[str, Sequence[int]], density: float) -> dict[str, float]:
    """Erdos-Renyi-Kernel densities (RigL, Evci et al. 2020) for kernels of ``shapes``.

    A layer's density is proportional to (sum of its dimensions) / (product of its dimensions),
    scaled so that the kept weights over all layers are ``density`` of them; a layer that would
    exceed density 1 is kept dense and the others are solved again.
    """
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = {name: sum(shape) / sizes[name] for name, shape in shapes.items()}
    dense: set[str] = set()
    while True:
        free = [n for n in shapes if n not in dense]
        budget = density * sum(sizes.values()) - sum(sizes[n] for n in dense)
        if not free or budget <= 0:
            return {n: 1.0 if n in dense else 0.0 for n in shapes}
        scale = budget / sum(raw[n] * sizes[n] for n in free)
        over = {n for n in free if scale * raw[n] > 1.0}
        if not over:
            return {n: 1.0 if n in dense else scale * raw[n] for n in shapes}
        dense |= over


def global_sparsities(magnitudes: Mapping[str, np.ndarray], sparsity: float) -> dict[str, float]:
    """Per-layer sparsities from one magnitude threshold over all layers' weights: the
    ``sparsity`` fraction of smallest magnitudes, wherever they are, is pruned."""
    flat = np.concatenate([np.abs(m).ravel() for m in magnitudes.values()])
    k = int(round(sparsity * flat.size))
    if k <= 0:
        return {name: 0.0 for name in magnitudes}
    threshold = np.partition(flat, k - 1)[k - 1]
    return {name: float(np.mean(np.abs(m) <= threshold)) for name, m in magnitudes.items()}


def layer_targets(
    model, selected: Sequence[str], sparsity: float, distribution: str
) -> dict[str, float]:
    """{selected layer: its target sparsity} for a global ``sparsity`` spread by
    ``distribution`` (``global``: the starting point, from the baseline's magnitudes)."""
    kernels = {
        layer.name: next(w for w in layer.weights if _is_kernel(w))
        for layer in leaf_layers(model)
        if layer.name in selected
    }
    if distribution == "erk":
        densities = erk_densities({n: tuple(w.shape) for n, w in kernels.items()}, 1 - sparsity)
        return {n: 1.0 - d for n, d in densities.items()}
    if distribution == "global":
        return global_sparsities({n: w.numpy() for n, w in kernels.items()}, sparsity)
    return {n: sparsity for n in kernels}


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
    selected = [
        la.name
        for la in leaf_layers(model)
        if type(la).__name__ in types and la.name in prunable and la.name not in skip
    ]
    require(
        bool(selected),
        "layer_types" if layer_types is not None else "exclude_layers",
        list(layer_types if layer_types is not None else exclude),
        f"a selection that leaves a layer of {model.name} to prune: layer_types, "
        f"exclude_layers and keep_first_last exclude all of {prunable}",
    )
    return selected


def layer_table(
    model, selected: Sequence[str], targets: Mapping[str, float] | None = None
) -> list[dict]:
    """Per kernel: layer, type, whether it was selected for pruning, its target sparsity (the
    distribution's share), size and measured zeros.

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
                        "target": (targets or {}).get(layer.name, 0.0),
                        "size": int(a.size),
                        "zeros": int(a.size - np.count_nonzero(a)),
                        "sparsity": sparsity_of([a]),
                    }
                )
    return rows


def _wrap(model, schedules: Mapping[str, object], m_by_n: tuple[int, int] | None):
    """``model`` with each layer named in ``schedules`` wrapped by tfmot's
    ``prune_low_magnitude`` with its own schedule (nested backbones included: their layers are
    wrapped in place, as tfmot does for a whole model). Other layers are kept as they are."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    def wrap(layer):
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, input_tensors=None, clone_function=wrap)
        if layer.name in schedules:
            return tfmot.sparsity.keras.prune_low_magnitude(
                layer, pruning_schedule=schedules[layer.name], sparsity_m_by_n=m_by_n
            )
        return layer

    return keras.models.clone_model(model, input_tensors=None, clone_function=wrap)


def _assigned_schedules(names: Sequence[str], end_step: int, frequency: int) -> dict:
    """Per layer, a tfmot PruningSchedule whose sparsity is assigned from outside (by
    :class:`_GlobalThreshold`) and applied every ``frequency`` steps up to ``end_step``."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    class Assigned(tfmot.sparsity.keras.PruningSchedule):
        def __init__(self):
            self.begin_step, self.end_step, self.frequency = 0, end_step, frequency
            self.sparsity = tf.Variable(0.0, trainable=False, dtype=tf.float32)

        def __call__(self, step):
            should = self._should_prune_in_step(step, 0, self.end_step, self.frequency)
            return should, tf.identity(self.sparsity)

        def get_config(self):
            return {"class_name": "Assigned", "config": {"end_step": end_step}}

    return {name: Assigned() for name in names}


def _global_threshold_callback(wrapped, schedules, target, end_step, frequency, ramped):
    """A Keras callback that, on every pruning step, recomputes one magnitude threshold across
    the wrapped layers at the ramp's current sparsity and assigns each layer its share."""
    import tf_keras as keras

    wrappers = {  # tfmot's wrappers of the pruned layers (named after the layer they wrap)
        w.layer.name: w
        for w in leaf_layers(wrapped)
        if getattr(w, "layer", None) is not None and w.layer.name in schedules
    }

    class GlobalThreshold(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            # tfmot's pruning step during a batch is the optimizer's iterations + 1 (measured:
            # UpdatePruningStep's numbering); the shares must be in place for that step.
            step = int(keras.backend.get_value(self.model.optimizer.iterations)) + 1
            if step > end_step >= 0 or step % frequency:
                return
            now = ramp(step, end_step, target) if ramped else target
            magnitudes = {n: w.pruning_vars[0][0].numpy() for n, w in wrappers.items()}
            for name, value in global_sparsities(magnitudes, now).items():
                schedules[name].sparsity.assign(value)

    return GlobalThreshold()


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
    distribution: str = "uniform",
    ramp_fraction: float = 1.0,
    lr_schedule: str = "constant",
) -> Pruned:
    """Prune a fresh copy of the baseline to ``sparsity`` and fine-tune it for ``epochs``.

    ``distribution`` spreads ``sparsity`` over the selected layers (:data:`DISTRIBUTIONS`);
    the ``polynomial`` schedule ramps up over the first ``ramp_fraction`` of the fine-tuning
    steps, then fine-tuning goes on at the final sparsity; ``lr_schedule=cosine`` decays the
    learning rate over the fine-tuning steps. ``pattern``: ``unstructured`` or ``2:4`` (two
    zeros in every block of four weights; ``sparsity`` must then be 0.5).
    ``sparsity == 0`` means no pruning: the baseline itself is returned. The returned model has
    its pruning wrappers stripped; sparsity is measured from its weights. Writes nothing.
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    check_pruning(
        sparsity,
        schedule,
        epochs,
        learning_rate,
        frequency,
        pattern,
        layer_types,
        distribution,
        ramp_fraction,
        lr_schedule,
    )
    sparsity_keras = tfmot.sparsity.keras
    model = load_model(baseline_path)  # fresh copy: pruning overwrites the source's weights
    history: dict[str, list[float]] = {}
    selected: list[str] = []
    targets: dict[str, float] = {}
    starved: list[str] = []
    if sparsity > 0:
        selected = select_layers(model, layer_types, exclude_layers, keep_first_last)
        targets = layer_targets(model, selected, sparsity, distribution)
        starved = layers_without_weights(layer_table(model, selected), targets)
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
        callbacks = [sparsity_keras.UpdatePruningStep()]
        if distribution == "global":
            end_step, freq = schedule_steps(steps, frequency, ramp_fraction)
            ramped = schedule == "polynomial" and end_step > 0
            stop = end_step if ramped else -1  # -1: prune at the target every `freq` steps
            schedules = _assigned_schedules(selected, stop, freq)
        else:
            schedules = {
                n: make_schedule(schedule, t, steps, frequency, ramp_fraction)
                for n, t in targets.items()
                if t > 0  # ERK keeps some layers dense
            }
        pruned = _wrap(model, schedules, (2, 4) if pattern == "2:4" else None)
        if distribution == "global":
            callbacks.append(
                _global_threshold_callback(pruned, schedules, sparsity, stop, freq, ramped)
            )
        rate = learning_rate
        if lr_schedule == "cosine":
            rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
        history = fit(
            pruned,
            data,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=rate,
            callbacks=callbacks,
            seed=seed,
        )
        if distribution == "global":  # the last threshold's shares
            targets = {n: float(s.sparsity.numpy()) for n, s in schedules.items()}
        model = sparsity_keras.strip_pruning(pruned)
    kernels = kernel_arrays(model)
    total, nonzero = count_params([w.numpy() for w in model.weights])
    table = layer_table(model, selected, targets)
    log.info("pruned to measured sparsity %.4f (target %g)", sparsity_of(kernels), sparsity)
    return Pruned(model, history, sparsity_of(kernels), total, nonzero, table, starved)
