"""Channel groups: which output channels of a tf_keras functional model can be removed together
(:func:`analyze`), and why the others stay (:meth:`Graph.kept`).

A channel is followed from the layer that makes it (a Conv/Dense producer) through the layers
that treat each channel by itself: BatchNormalization and depthwise convolutions (one weight per
channel), activations, pooling, padding, element-wise joins (a residual ``Add``, a
squeeze-and-excitation ``Multiply``), arithmetic with a constant (``x + 3`` of a hard-swish) and
reshapes that keep the last axis. The inputs of a join are one group, with one mask. Channel pruning
must leave the model's outputs as they were with the removed channels zeroed, so each tensor also
carries whether its removed channels are 0 there: a sigmoid or ``x + 3`` makes them non-zero, a
``Multiply`` by a zero channel makes them 0 again (the excitation of squeeze-and-excitation, the
gate of hard-swish); a group whose non-zero channels reach a layer that reads them is kept.
Channels that reach the model's input or output, or pass a layer that mixes channels
(``Concatenate``, ``LayerNormalization``, a grouped or separable convolution, softmax), stay,
each group with its reason.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from pruneflow.errors import require
from pruneflow.steps.model.measure import leaf_layers

# Layers that make channels: their kernel's last axis is the output channel.
PRODUCERS = frozenset({"Conv1D", "Conv2D", "Dense"})
# Layers with one weight vector per channel that follow their input's channels (also followers:
# a Conv2D whose groups are its channels, a Reshape that keeps the last axis).
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
# Element-wise joins: their inputs' channels are one group (a residual connection). A removed
# channel is 0 after a Multiply when one input has it 0, after the others when all have.
MERGES = frozenset({"Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average"})
# tf_keras's TFOpLambda (``x + 3.0``, ``x * y`` written as Python operators), by its symbol:
# the join it is when both operands are tensors, or whether it keeps 0 with a constant.
TF_OPS = {
    "__operators__.add": "Add",
    "math.add": "Add",
    "math.subtract": "Subtract",
    "math.multiply": "Multiply",
    "math.truediv": "Divide",
}
# Activations with f(0) = 0: a removed (zero) channel stays zero after them.
ZERO_KEEPING = frozenset(
    {"linear", "relu", "relu6", "elu", "selu", "swish", "silu", "gelu", "tanh", "leaky_relu"}
)
# Activations that mix the channels: nothing is followed through them.
MIXING = frozenset({"softmax", "log_softmax"})
# Why a layer's channels are not followed, by its kind (the others: not followed channel by
# channel, a layer pruneflow does not know).
MIXES = {
    "Concatenate": "a Concatenate (its inputs' channels are not followed through it)",
    "LayerNormalization": "a LayerNormalization (it normalises across the channels)",
    "SeparableConv1D": "a separable convolution (not thinned)",
    "SeparableConv2D": "a separable convolution (not thinned)",
    "Softmax": "a softmax (it mixes the channels)",
}


@dataclass
class _Tensor:
    group: int
    positions: int = 1  # > 1 after Flatten: the channel repeats at each spatial position
    source: str | None = None  # the producer whose output this is (a BatchNorm right after it)
    nonzero: str | None = None  # the layer after which removed channels are no longer 0


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
    # (layer, why) for each layer whose channels are not followed: its inputs' groups stay
    blocked: list[tuple[str, str]] = field(default_factory=list)
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

    def kept(self) -> list[tuple[str, str]]:
        """(producer, why its output channels stay) for every producer of a kept group, in
        graph order: what ``pruneflow inspect`` shows and the refusal of a model with nothing
        to remove summarises."""
        why = {
            p: grp.kept_because
            for grp in self.groups.values()
            if grp.kept_because
            for p in grp.producers
        }
        return [(p, why[p]) for p in self.order if p in why]

    def summary(self) -> str:
        """How many channel groups are kept for each reason (``3 reach a Concatenate ...``)."""
        reasons: Counter[str] = Counter()
        for grp in self.groups.values():
            if grp.producers and grp.kept_because:
                reasons[grp.kept_because.split(": ", 1)[-1]] += 1
        return "; ".join(f"{n} x {why}" for why, n in reasons.most_common())


def _flat(x) -> list:
    import tensorflow as tf

    return tf.nest.flatten(x)


def _activation(layer) -> str:
    act = getattr(layer, "activation", None)
    return "linear" if act is None else getattr(act, "__name__", str(act))


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
                why = f"a layer called {len(nodes)} times"
                if node is nodes[0]:
                    graph.blocked.append((layer.name, why))
                made = _kept(ins, outs, graph, f"{layer.name}: {why}")
            elif hasattr(layer, "layers") and layer.layers:  # a nested model: its own graph
                made = _walk(layer, ins, graph)
            else:
                made = _visit(layer, node, ins, outs, graph)
            seen.update({id(t): d for t, d in zip(outs, made, strict=True)})
    return [seen[id(t)] for t in _flat(model.outputs)]


def _kept(ins: list[_Tensor], outs: list, graph: Graph, why: str) -> list[_Tensor]:
    """A layer whose channels cannot be followed: its inputs' and outputs' channels stay."""
    for t in ins:
        graph.keep(t.group, why)
    return [_Tensor(graph.new(int(o.shape[-1]), why)) for o in outs]


def _read(graph: Graph, x: _Tensor, layer: str) -> None:
    """``layer`` reads ``x``'s channels: removed ones must be 0 there (or the group stays)."""
    if x.nonzero:
        graph.keep(x.group, f"{x.nonzero}: a value not 0 at 0 reaches {layer}")


def _join(kind: str, ins: list[_Tensor], graph: Graph) -> _Tensor:
    """Element-wise ``kind`` (a MERGES name) of ``ins``: one group; removed channels 0 after a
    Multiply when any input has them 0, after the others when all have."""
    g = ins[0].group
    for t in ins[1:]:
        g = graph.join(g, t.group)
    nonzero = [t.nonzero for t in ins if t.nonzero]
    if kind == "Multiply":
        zero = len(nonzero) < len(ins)
    else:
        zero = not nonzero
    return _Tensor(g, ins[0].positions, nonzero=None if zero else nonzero[0])


def _visit(layer, node, ins: list[_Tensor], outs: list, graph: Graph) -> list[_Tensor]:
    kind = type(layer).__name__
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
    act = _activation(layer)
    changes = None if act in ZERO_KEEPING else layer.name  # removed channels no longer 0

    def unknown(why: str) -> list[_Tensor]:
        graph.blocked.append((layer.name, why))
        return _kept(ins, outs, graph, f"{layer.name}: {why}")

    if kind in PRODUCERS and channels_last:
        groups = getattr(layer, "groups", 1)
        if (
            groups > 1
            and groups == layer.filters == int(outs[0].shape[-1])
            and ins[0].positions == 1
        ):
            (x,) = ins  # a depthwise convolution written as a grouped one (ConvNeXt)
            if groups == int(_flat(node.keras_inputs)[0].shape[-1]):
                graph.group(x.group).followers.append(layer.name)
                return [_Tensor(x.group, nonzero=changes)]
        if groups != 1:
            return unknown("a grouped convolution (not thinned)")
        (x,) = ins
        _read(graph, x, layer.name)
        graph.group(x.group).consumers.append((layer.name, x.positions))
        g = graph.new(int(layer.kernel.shape[-1]))
        graph.groups[g].producers.append(layer.name)
        graph.group_of[layer.name] = g
        graph.order.append(layer.name)
        if act in MIXING:  # it reads its inputs channel by channel, its outputs are mixed
            graph.keep(g, f"{layer.name}: a {act} activation (it mixes the channels)")
        return [_Tensor(g, source=layer.name, nonzero=changes)]
    if act in MIXING:
        return unknown(f"a {act} activation (it mixes the channels)")
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
            return unknown(f"a {kind} that mixes channels")
        graph.group(x.group).followers.append(layer.name)
        if kind == "BatchNormalization" and x.source:
            graph.bn_after[x.source] = layer.name
        # a masked follower's removed entries (gamma, beta and the mean; a depthwise filter and
        # bias) are 0, so are its outputs there; a BatchNorm without gamma (InceptionV3's
        # scale=False) gives x / std: 0 where its input is
        if kind == "BatchNormalization" and not getattr(layer, "scale", True):
            changes = changes or x.nonzero
        return [
            _Tensor(
                x.group,
                source=x.source if kind == "BatchNormalization" else None,
                nonzero=changes,
            )
        ]
    if kind in PASS_THROUGH or kind == "Activation":
        (x,) = ins
        return [_Tensor(x.group, x.positions, nonzero=x.nonzero or changes)]
    if kind == "Rescaling":
        (x,) = ins
        offset = getattr(layer, "offset", 0)
        return [
            _Tensor(x.group, x.positions, nonzero=x.nonzero or (layer.name if offset else None))
        ]
    if kind == "Reshape" and len(ins) == 1 and ins[0].positions == 1:
        (x,) = ins
        if _flat(node.keras_inputs)[0].shape[-1] == outs[0].shape[-1]:  # the last axis kept
            graph.group(x.group).followers.append(layer.name)  # its target shape follows
            return [_Tensor(x.group, nonzero=x.nonzero)]
    if kind == "Flatten" and channels_last:
        (x,) = ins
        shape = layer._inbound_nodes[0].input_tensors.shape
        positions = math.prod(int(d) for d in shape[1:-1])
        return [_Tensor(x.group, x.positions * positions, x.nonzero)]
    same = len({t.shape[-1] for t in _flat(node.keras_inputs)}) == 1  # no broadcast channel
    if kind in MERGES and same and len({t.positions for t in ins}) == 1:
        return [_join(kind, ins, graph)]
    if kind == "TFOpLambda" and TF_OPS.get(layer.symbol):
        op = TF_OPS[layer.symbol]
        args = [*node.call_args, *node.call_kwargs.values()][:2]
        tensors = _flat(node.keras_inputs)
        if len(ins) == 2 and same and len({t.positions for t in ins}) == 1 and op != "Divide":
            return [_join(op, ins, graph)]
        const = [a for a in args if isinstance(a, (int, float))]
        if len(ins) == 1 and len(tensors) == 1 and len(const) == 1 and len(args) == 2:
            (x,) = ins
            if op == "Divide" and args[0] is const[0]:  # c / x
                return unknown("a constant divided by the channels")
            keeps = op in ("Multiply", "Divide") or const[0] == 0
            return [
                _Tensor(x.group, x.positions, nonzero=x.nonzero or (None if keeps else layer.name))
            ]
    if kind == "Reshape":
        return unknown("a Reshape that moves channels")
    return unknown(MIXES.get(kind, f"a {kind} (not followed channel by channel)"))
