"""Pruning distributions: how a global sparsity target is spread over the selected layers.

One strategy class per ``prune.distribution`` (:data:`DISTRIBUTIONS`), in the manner of
tfmot's ``PruningSchedule`` and ``PruningPolicy`` classes: each gives the layers' targets,
their tfmot schedules, the Keras callbacks that drive them, and the targets reached at the
end. The array helpers (:func:`erk_densities`, :func:`global_sparsities`, :func:`ramp`,
:func:`schedule_steps`) are pure numpy.

- ``uniform``: every layer at the target (tfmot's default, the paper's method);
- ``erk``: Erdos-Renyi-Kernel densities (RigL, Evci et al. 2020), fixed from the start;
- ``global``: one magnitude threshold across all layers, recomputed as the ramp advances.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar, Protocol

import numpy as np


class RampKeys(Protocol):
    """The ``prune`` section's keys that a distribution reads (the schema,
    :class:`~pruneflow.steps.prune.config.PruneConfig`, imports this module's registry)."""

    sparsity: float
    schedule: str
    frequency: int
    ramp_fraction: float


def schedule_steps(total_steps: int, frequency: int, ramp_fraction: float) -> tuple[int, int]:
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
    kind: str, sparsity: float, total_steps: int, frequency: int, ramp_fraction: float
):
    """A tfmot pruning schedule reaching ``sparsity`` within the first ``ramp_fraction`` of
    ``total_steps`` steps."""
    import tensorflow_model_optimization as tfmot

    sparsity_keras = tfmot.sparsity.keras
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


class Distribution:
    """A spread of ``config.sparsity`` over the selected layers, for a run of ``steps``
    fine-tuning steps. Subclasses set :attr:`name` and :meth:`targets`."""

    name: ClassVar[str]

    def __init__(self, config: RampKeys, steps: int):
        self.config, self.steps = config, steps

    def targets(self, kernels: Mapping[str, np.ndarray]) -> dict[str, float]:
        """{layer: target sparsity} from the selected layers' kernels (the baseline's)."""
        raise NotImplementedError

    def schedules(self, targets: Mapping[str, float]) -> dict[str, object]:
        """{layer: tfmot PruningSchedule} for the layers to wrap (a target of 0 stays dense)."""
        c = self.config
        return {
            n: make_schedule(c.schedule, t, self.steps, c.frequency, c.ramp_fraction)
            for n, t in targets.items()
            if t > 0
        }

    def callbacks(self, wrappers: Mapping[str, object], schedules: Mapping[str, object]) -> list:
        """Keras callbacks that drive the schedules while fine-tuning (besides tfmot's own);
        ``wrappers``: {layer: tfmot's wrapper of it}."""
        return []

    def final_targets(
        self, targets: Mapping[str, float], schedules: Mapping[str, object]
    ) -> dict[str, float]:
        """The layers' targets once fine-tuning has ended."""
        return dict(targets)


class Uniform(Distribution):
    name = "uniform"

    def targets(self, kernels):
        return {n: self.config.sparsity for n in kernels}


class ERK(Distribution):
    name = "erk"

    def targets(self, kernels):
        shapes = {n: tuple(k.shape) for n, k in kernels.items()}
        return {n: 1.0 - d for n, d in erk_densities(shapes, 1 - self.config.sparsity).items()}


class Global(Distribution):
    """The starting shares come from the baseline's magnitudes; on every pruning step a
    callback recomputes one threshold at the ramp's current sparsity and assigns the shares."""

    name = "global"

    def __init__(self, config: RampKeys, steps: int):
        super().__init__(config, steps)
        end_step, self.frequency = schedule_steps(steps, config.frequency, config.ramp_fraction)
        self.ramped = config.schedule == "polynomial" and end_step > 0
        self.end_step = end_step if self.ramped else -1  # -1: the target every `frequency` steps

    def targets(self, kernels):
        return global_sparsities(kernels, self.config.sparsity)

    def schedules(self, targets):
        return _assigned_schedules(list(targets), self.end_step, self.frequency)

    def callbacks(self, wrappers, schedules):
        return [
            _global_threshold_callback(
                wrappers,
                schedules,
                self.config.sparsity,
                self.end_step,
                self.frequency,
                self.ramped,
            )
        ]

    def final_targets(self, targets, schedules):
        return {n: float(s.sparsity.numpy()) for n, s in schedules.items()}  # the last shares


DISTRIBUTIONS: dict[str, type[Distribution]] = {d.name: d for d in (Uniform, ERK, Global)}


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


def _global_threshold_callback(wrappers, schedules, target, end_step, frequency, ramped):
    """A Keras callback that, on every pruning step, recomputes one magnitude threshold across
    the wrapped layers at the ramp's current sparsity and assigns each layer its share."""
    import tf_keras as keras

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
