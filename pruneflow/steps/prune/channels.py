"""Channel pruning: remove whole filters (Conv2D) and units (Dense) and rebuild a smaller dense
model with the kept weights copied, so that every kernel, runtime and delegate does less work.

Three parts, each usable alone:

- :func:`analyze` (:mod:`.groups`) walks a tf_keras functional graph (nested keras.applications
  bases included) and groups the channels that must be removed together; the groups it keeps
  say why (:meth:`Graph.kept`).
- :func:`plan` scores each group's channels (a criterion of :data:`CRITERIA`) and picks the
  ones to remove (uniform per group, or one global ranking normalised per layer).
- :func:`rebuild` makes the thin model; :func:`masked` gives the original model with the same
  channels zeroed, whose outputs the thin model's equal (the tests' proof of exactness).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pruneflow.errors import ArgumentError
from pruneflow.steps.model.measure import leaf_layers
from pruneflow.steps.prune.groups import FOLLOWERS, PRODUCERS, Graph, Group, analyze

__all__ = ["FOLLOWERS", "PRODUCERS", "Graph", "Group", "Plan", "analyze", "plan", "rebuild"]


class ChannelKeys(Protocol):
    """The ``prune`` section's channel keys that a plan reads (the schema,
    :class:`~pruneflow.steps.prune.config.PruneConfig`, imports this module's registries)."""

    channel_criterion: str
    channel_distribution: str
    channel_min: int
    channel_exclude: list[str]
    channel_keep_first_last: bool


CRITERIA = ("l1", "l2", "bn")  # filter L1 / L2 norm, or |gamma| of the BatchNorm after it
CHANNEL_DISTRIBUTIONS = ("uniform", "global")
CHANNEL_SCHEDULES = ("oneshot", "gradual")


# -- which channels -----------------------------------------------------------------------------
@dataclass
class Plan:
    """Which channels each group keeps (sorted indices), and per producer how many it had."""

    graph: Graph
    keep: dict[int, np.ndarray]  # group -> kept channel indices

    def kept(self, layer: str) -> np.ndarray | None:
        """The kept output channels of a producer or follower (None: all of them)."""
        for g, grp in self.graph.groups.items():
            if layer in grp.producers or layer in grp.followers:
                return self.keep.get(g)
        return None

    def kept_inputs(self, layer: str) -> np.ndarray | None:
        """The kept rows of a consumer's kernel (channels times positions after Flatten)."""
        for g, grp in self.graph.groups.items():
            for name, positions in grp.consumers:
                if name == layer and g in self.keep:
                    k = self.keep[g]
                    return (np.arange(positions)[:, None] * grp.channels + k[None, :]).ravel()
        return None

    @property
    def removed_fraction(self) -> float:
        """Removed output channels over every prunable producer's channels (filters, units)."""
        total = removed = 0
        for g, grp in self.graph.prunable().items():
            n = len(grp.producers)
            total += grp.channels * n
            removed += (grp.channels - len(self.keep.get(g, range(grp.channels)))) * n
        return removed / total if total else 0.0

    def channels(self) -> dict[str, tuple[int, int]]:
        """{producer or follower: (channels before, channels after)}."""
        out = {}
        for g, grp in self.graph.groups.items():
            after = len(self.keep[g]) if g in self.keep else grp.channels
            for name in (*grp.producers, *grp.followers):
                out[name] = (grp.channels, after)
        return out


def _kernel(layer) -> np.ndarray:
    return layer.kernel.numpy()


def scores(model, graph: Graph, criterion: str) -> dict[int, np.ndarray]:
    """Each prunable group's channel importance, normalised per layer (each producer's scores
    divided by their mean) and averaged over the group's producers. ``bn``: |gamma| of the
    BatchNorm right after a producer, its filters' L1 norm where none follows."""
    layers = {la.name: la for la in leaf_layers(model)}
    out = {}
    for g, grp in graph.prunable().items():
        per = []
        for name in grp.producers:
            bn = graph.bn_after.get(name)
            if criterion == "bn" and bn is not None and layers[bn].gamma is not None:
                s = np.abs(layers[bn].gamma.numpy())
            else:
                k = _kernel(layers[name]).reshape(-1, grp.channels)
                s = np.sqrt((k**2).sum(0)) if criterion == "l2" else np.abs(k).sum(0)
            per.append(s / (s.mean() or 1.0))
        out[g] = np.mean(per, axis=0)
    return out


def check_selection(
    graph: Graph, exclude: Sequence[str], keep_first_last: bool, model, fraction: float = 0.5
) -> None:
    """``exclude`` names exist; something is left to prune (ArgumentError naming the key:
    ``channels``, the ``fraction`` asked, when the model has no group to remove at all)."""
    names = {la.name for la in leaf_layers(model)}
    missing = sorted(set(exclude) - names)
    if missing:
        raise ArgumentError(
            "channel_exclude",
            missing,
            f"names of the layers of {model.name} that make channels: {graph.order}",
        )
    if not graph.prunable():
        raise ArgumentError(
            "channels",
            fraction,
            f"0 (off) for {model.name}: none of its channel groups can be removed, each kept "
            f"because of {graph.summary() or 'no layer that makes channels'}",
        )
    _exclude(graph, exclude, keep_first_last)
    if not graph.prunable():
        key = "channel_exclude" if exclude else "channel_keep_first_last"
        raise ArgumentError(
            key,
            list(exclude) if exclude else keep_first_last,
            f"a selection that leaves {model.name} channels to remove: every other channel "
            "reaches its input, its output or a kept layer",
        )


def _exclude(graph: Graph, exclude: Iterable[str], keep_first_last: bool) -> None:
    names = set(exclude)
    if keep_first_last:
        prunable = [p for p in graph.order if graph.find(graph.group_of[p]) in graph.prunable()]
        names |= set(prunable[:1] + prunable[-1:])
    for g, grp in graph.groups.items():
        hit = names & {*grp.producers, *grp.followers}
        if hit:
            graph.keep(g, f"{sorted(hit)[0]}: kept by channel_exclude or channel_keep_first_last")


def plan(model, fraction: float, config: ChannelKeys) -> Plan:
    """The channels to remove from ``model``: ``fraction`` of each prunable group
    (``channel_distribution=uniform``), or of all prunable filters, the least important first
    across groups (``global``), scored by ``channel_criterion``. Every group keeps at least
    ``channel_min`` channels (or all it has, when it has fewer); ``channel_exclude`` and
    ``channel_keep_first_last`` name groups kept whole."""
    exclude, keep_first_last = config.channel_exclude, config.channel_keep_first_last
    criterion, distribution = config.channel_criterion, config.channel_distribution
    min_channels = config.channel_min
    graph = analyze(model)
    check_selection(graph, exclude, keep_first_last, model, fraction)
    groups = graph.prunable()
    score = scores(model, graph, criterion)
    floor = {g: min(min_channels, grp.channels) for g, grp in groups.items()}
    remove: dict[int, int] = {}
    if distribution == "uniform":
        for g, grp in groups.items():
            remove[g] = min(int(fraction * grp.channels + 0.5), grp.channels - floor[g])
    else:
        weight = {g: len(grp.producers) for g, grp in groups.items()}  # filters per channel
        target = fraction * sum(grp.channels * weight[g] for g, grp in groups.items())
        ranked = sorted((float(s), g, c) for g, arr in score.items() for c, s in enumerate(arr))
        remove = dict.fromkeys(groups, 0)
        done = 0.0
        for _, g, _c in ranked:
            if done + weight[g] / 2 > target:
                break
            if groups[g].channels - remove[g] > floor[g]:
                remove[g] += 1
                done += weight[g]
    keep = {}
    for g, n in remove.items():
        if n > 0:
            order = np.argsort(score[g], kind="stable")  # least important first
            keep[g] = np.sort(order[n:])
    return Plan(graph, keep)


# -- the thin model -----------------------------------------------------------------------------
def _clone(model, width):
    """``model`` rebuilt layer by layer (nested models too), producers with ``width(name)``
    output channels where it is not None."""
    import tf_keras as keras

    def clone(layer):
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, input_tensors=None, clone_function=clone)
        config = layer.get_config()
        n = width(layer.name)
        kind = type(layer).__name__
        if n is not None and kind in PRODUCERS:
            config["units" if "units" in config else "filters"] = int(n)
            if config.get("groups", 1) > 1:  # a depthwise convolution written as a grouped one
                config["groups"] = int(n)
        elif n is not None and kind == "Reshape":  # (1, 1, C) of a squeeze-and-excitation
            config["target_shape"] = (*config["target_shape"][:-1], int(n))
        return type(layer).from_config(config)

    return keras.models.clone_model(model, input_tensors=None, clone_function=clone)


def rebuild(model, p: Plan):
    """A new, smaller model: each producer with only its kept filters or units, each consumer
    with only the kept input channels, the kept weights copied. Before any training its
    outputs equal :func:`masked` ``(model, p)``'s."""
    widths = {name: len(k) for name in _names(p) if (k := p.kept(name)) is not None}
    thin = _clone(model, widths.get)
    old = {la.name: la for la in leaf_layers(model)}
    for layer in leaf_layers(thin):
        weights = old[layer.name].get_weights()
        if not weights:
            continue
        out, rows = p.kept(layer.name), p.kept_inputs(layer.name)
        kind = type(layer).__name__
        if kind in PRODUCERS:
            kernel = weights[0]
            if rows is not None:
                kernel = np.take(kernel, rows, axis=-2)
            if out is not None:
                kernel = kernel[..., out]
                weights[1:] = [w[out] for w in weights[1:]]  # the bias
            weights[0] = kernel
        elif kind in FOLLOWERS and out is not None:
            if kind == "DepthwiseConv2D":
                weights = [weights[0][:, :, out, :], *(w[out] for w in weights[1:])]
            else:
                weights = [w[out] for w in weights]
        layer.set_weights(weights)
    return thin


def masked(model, p: Plan):
    """A copy of ``model`` whose removed channels are zero wherever they are made: each
    producer's filter and bias, each BatchNorm's gamma, beta and mean, each depthwise filter
    and bias."""
    copy = _clone(model, lambda _name: None)
    old = {la.name: la for la in leaf_layers(model)}
    for layer in leaf_layers(copy):
        weights = [w.copy() for w in old[layer.name].get_weights()]
        out = p.kept(layer.name)
        if weights and out is not None:
            kind = type(layer).__name__
            n = weights[0].shape[-1] if kind in PRODUCERS else len(weights[-1])
            if kind == "DepthwiseConv2D":
                n = weights[0].shape[2]
            gone = np.setdiff1d(np.arange(n), out)
            if kind in PRODUCERS:
                weights[0][..., gone] = 0
                for w in weights[1:]:
                    w[gone] = 0
            elif kind == "DepthwiseConv2D":
                weights[0][:, :, gone, :] = 0
                for w in weights[1:]:
                    w[gone] = 0
            else:  # BatchNormalization: gamma, beta and the mean to zero (its output is 0
                # there, with scale=False too: 0 in, 0 out)
                names = [v.name.split("/")[-1].split(":")[0] for v in layer.weights]
                for name, w in zip(names, weights, strict=True):
                    if name in ("gamma", "beta", "moving_mean"):
                        w[gone] = 0
        if weights:
            layer.set_weights(weights)
    return copy


def _names(p: Plan) -> list[str]:
    return [n for grp in p.graph.groups.values() for n in (*grp.producers, *grp.followers)]
