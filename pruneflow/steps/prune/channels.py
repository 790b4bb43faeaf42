"""Channel pruning: remove whole filters (Conv2D) and units (Dense) and rebuild a smaller dense
model with the kept weights copied, so that every kernel, runtime and delegate does less work.

Three parts, each usable alone:

- :func:`analyze` walks a tf_keras functional graph (nested keras.applications bases included)
  and groups the channels that must be removed together: a BatchNormalization or a depthwise
  convolution follows its input's channels; the inputs of a residual ``Add`` are one group with
  one mask; ``Flatten`` -> ``Dense`` maps each channel to its positions. Channels that reach the
  model's input or output (the classifier's outputs) or pass a layer it does not know are kept.
- :func:`plan` scores each group's channels (a criterion of :data:`CRITERIA`) and picks the
  ones to remove (uniform per group, or one global ranking normalised per layer).
- :func:`rebuild` makes the thin model; :func:`masked` gives the original model with the same
  channels zeroed, whose outputs the thin model's equal (the tests' proof of exactness).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from pruneflow.errors import ArgumentError, require
from pruneflow.steps.model.measure import leaf_layers


class ChannelKeys(Protocol):
    """The ``prune`` section's channel keys that a plan reads (the schema,
    :class:`~pruneflow.steps.prune.config.PruneConfig`, imports this module's registries)."""

    channel_criterion: str
    channel_distribution: str
    channel_min: int
    channel_exclude: list[str]
    channel_keep_first_last: bool


# Layers that make channels: their kernel's last axis is the output channel.
PRODUCERS = frozenset({"Conv1D", "Conv2D", "Dense"})
# Layers with one weight vector per channel that follow their input's channels.
FOLLOWERS = frozenset({"BatchNormalization", "DepthwiseConv2D"})
# Layers that pass each channel on by itself and keep a zero channel zero.
PASS_THROUGH = frozenset(
    {
        "ReLU",
        "LeakyReLU",
        "ELU",
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "GaussianNoise",
        "MaxPooling1D",
        "MaxPooling2D",
        "AveragePooling1D",
        "AveragePooling2D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "Cropping1D",
        "Cropping2D",
        "UpSampling1D",
        "UpSampling2D",
        "Resizing",
        "ActivityRegularization",
    }
)
# Element-wise joins: their inputs' channels are one group (a residual connection).
MERGES = frozenset({"Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average"})
# Activations with f(0) = 0: a removed (zero) channel stays zero after them.
ZERO_KEEPING = frozenset(
    {"linear", "relu", "relu6", "elu", "selu", "swish", "silu", "gelu", "tanh", "leaky_relu"}
)
CRITERIA = ("l1", "l2", "bn")  # filter L1 / L2 norm, or |gamma| of the BatchNorm after it
CHANNEL_DISTRIBUTIONS = ("uniform", "global")
CHANNEL_SCHEDULES = ("oneshot", "gradual")


@dataclass
class _Tensor:
    group: int
    positions: int = 1  # > 1 after Flatten: the channel repeats at each spatial position
    source: str | None = None  # the producer whose output this is (a BatchNorm right after it)


@dataclass
class Group:
    """Channels removed together: every producer's filter c, every follower's entry c, and the
    input channel c of every consumer."""

    channels: int
    producers: list[str] = field(default_factory=list)
    followers: list[str] = field(default_factory=list)
    consumers: list[tuple[str, int]] = field(default_factory=list)  # (layer, positions)
    kept_because: str | None = None  # why its channels cannot be removed


@dataclass
class Graph:
    """The channel groups of a model (:func:`analyze`)."""

    groups: dict[int, Group] = field(default_factory=dict)
    group_of: dict[str, int] = field(default_factory=dict)  # producer -> its output's group
    bn_after: dict[str, str] = field(default_factory=dict)  # producer -> BatchNorm right after
    order: list[str] = field(default_factory=list)  # producers in graph order
    _parent: dict[int, int] = field(default_factory=dict)

    def find(self, g: int) -> int:
        while self._parent.get(g, g) != g:
            g = self._parent[g]
        return g

    def new(self, channels: int, kept_because: str | None = None) -> int:
        g = len(self._parent)
        self._parent[g] = g
        self.groups[g] = Group(channels, kept_because=kept_because)
        return g

    def group(self, g: int) -> Group:
        return self.groups[self.find(g)]

    def keep(self, g: int, why: str) -> None:
        grp = self.group(g)
        grp.kept_because = grp.kept_because or why

    def join(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        ga, gb = self.groups.pop(b), self.groups[a]
        self._parent[b] = a
        gb.producers += ga.producers
        gb.followers += ga.followers
        gb.consumers += ga.consumers
        gb.kept_because = gb.kept_because or ga.kept_because
        return a

    def prunable(self) -> dict[int, Group]:
        """Groups whose channels can be removed: made by a producer, reaching no input, output
        or unknown layer."""
        return {g: grp for g, grp in self.groups.items() if grp.producers and not grp.kept_because}


def _flat(x) -> list:
    import tensorflow as tf

    return tf.nest.flatten(x)


def _activation_keeps_zero(layer) -> bool:
    act = getattr(layer, "activation", None)
    if act is None:
        return True
    name = getattr(act, "__name__", str(act))
    return name in ZERO_KEEPING


def analyze(model) -> Graph:
    """The channel groups of ``model`` (a tf_keras functional model; nested models inlined)."""
    graph = Graph()
    inputs = [_Tensor(graph.new(int(t.shape[-1]), "the model's input")) for t in model.inputs]
    for t in _walk(model, inputs, graph):
        graph.keep(t.group, "the model's output")
    names = [la.name for la in leaf_layers(model)]
    require(len(names) == len(set(names)), "backbone", model.name, "models with unique layer names")
    return graph


def _walk(model, given: list[_Tensor], graph: Graph) -> list[_Tensor]:
    from tf_keras.src.engine import functional

    seen = {id(t): d for t, d in zip(model.inputs, given, strict=True)}
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        nodes = [
            node
            for i, node in enumerate(layer._inbound_nodes)
            if functional._make_node_key(layer.name, i) in model._network_nodes
        ]
        for node in nodes:
            ins = [seen[id(t)] for t in _flat(node.keras_inputs)]
            outs = _flat(node.outputs)
            if len(nodes) > 1:  # one layer's weights on several inputs: its channels stay
                made = _kept(ins, outs, graph, f"{layer.name} is called {len(nodes)} times")
            elif hasattr(layer, "layers") and layer.layers:  # a nested model: its own graph
                made = _walk(layer, ins, graph)
            else:
                made = _visit(layer, ins, outs, graph)
            seen.update({id(t): d for t, d in zip(outs, made, strict=True)})
    return [seen[id(t)] for t in _flat(model.outputs)]


def _kept(ins: list[_Tensor], outs: list, graph: Graph, why: str) -> list[_Tensor]:
    """A layer whose channels cannot be followed: its inputs' and outputs' channels stay."""
    for t in ins:
        graph.keep(t.group, why)
    return [_Tensor(graph.new(int(o.shape[-1]), why)) for o in outs]


def _visit(layer, ins: list[_Tensor], outs: list, graph: Graph) -> list[_Tensor]:
    kind = type(layer).__name__
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"

    def unknown(why: str) -> list[_Tensor]:
        return _kept(ins, outs, graph, why)

    if kind in PRODUCERS and channels_last and getattr(layer, "groups", 1) == 1:
        (x,) = ins
        graph.group(x.group).consumers.append((layer.name, x.positions))
        g = graph.new(int(layer.kernel.shape[-1]))
        graph.groups[g].producers.append(layer.name)
        graph.group_of[layer.name] = g
        graph.order.append(layer.name)
        if not _activation_keeps_zero(layer):
            graph.keep(g, f"{layer.name}'s activation is not 0 at 0")
        return [_Tensor(g, source=layer.name)]
    if kind in FOLLOWERS:
        (x,) = ins
        axis = getattr(layer, "axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        rank = len(outs[0].shape)
        ok = (
            x.positions == 1
            and axis in (-1, rank - 1)
            and getattr(layer, "depth_multiplier", 1) == 1
            and channels_last
        )
        if not ok:
            return unknown(f"{layer.name} ({kind}) mixes channels")
        graph.group(x.group).followers.append(layer.name)
        if kind == "BatchNormalization" and x.source:
            graph.bn_after[x.source] = layer.name
        if not _activation_keeps_zero(layer):
            graph.keep(x.group, f"{layer.name}'s activation is not 0 at 0")
        return [_Tensor(x.group, source=x.source if kind == "BatchNormalization" else None)]
    if kind in PASS_THROUGH or kind == "Activation":
        (x,) = ins
        if kind == "Activation" and not _activation_keeps_zero(layer):
            return unknown(f"{layer.name}'s activation is not 0 at 0")
        return [_Tensor(x.group, x.positions)]
    if kind == "Rescaling" and not getattr(layer, "offset", 0):
        (x,) = ins
        return [_Tensor(x.group, x.positions)]
    if kind == "Flatten" and channels_last:
        (x,) = ins
        shape = layer._inbound_nodes[0].input_tensors.shape
        positions = math.prod(int(d) for d in shape[1:-1])
        return [_Tensor(x.group, x.positions * positions)]
    if kind in MERGES and len({t.positions for t in ins}) == 1:
        g = ins[0].group
        for t in ins[1:]:
            g = graph.join(g, t.group)
        return [_Tensor(g, ins[0].positions)]
    return unknown(f"{layer.name} ({kind}) is not followed channel by channel")


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


def check_selection(graph: Graph, exclude: Sequence[str], keep_first_last: bool, model) -> None:
    """``exclude`` names exist; something is left to prune (ArgumentError naming the key)."""
    names = {la.name for la in leaf_layers(model)}
    missing = sorted(set(exclude) - names)
    if missing:
        raise ArgumentError(
            "channel_exclude",
            missing,
            f"names of the layers of {model.name} that make channels: {graph.order}",
        )
    _exclude(graph, exclude, keep_first_last)
    require(
        bool(graph.prunable()),
        "channel_exclude" if exclude else "channels",
        list(exclude) if exclude else 0,
        f"a model with channels to remove: every channel of {model.name} reaches its input, "
        "its output or a kept layer",
    )


def _exclude(graph: Graph, exclude: Iterable[str], keep_first_last: bool) -> None:
    names = set(exclude)
    if keep_first_last:
        prunable = [p for p in graph.order if graph.find(graph.group_of[p]) in graph.prunable()]
        names |= set(prunable[:1] + prunable[-1:])
    for g, grp in graph.groups.items():
        hit = names & {*grp.producers, *grp.followers}
        if hit:
            graph.keep(g, f"kept: {sorted(hit)[0]}")


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
    check_selection(graph, exclude, keep_first_last, model)
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
        if n is not None and type(layer).__name__ in PRODUCERS:
            config["units" if "units" in config else "filters"] = int(n)
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
    producer's filter and bias, each BatchNorm's gamma and beta, each depthwise bias."""
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
            else:  # BatchNormalization: gamma and beta (centre and scale) to zero
                names = [v.name.split("/")[-1].split(":")[0] for v in layer.weights]
                for name, w in zip(names, weights, strict=True):
                    if name in ("gamma", "beta"):
                        w[gone] = 0
        if weights:
            layer.set_weights(weights)
    return copy


def _names(p: Plan) -> list[str]:
    return [n for grp in p.graph.groups.values() for n in (*grp.producers, *grp.followers)]
