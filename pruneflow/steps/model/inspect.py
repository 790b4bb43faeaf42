"""What pruneflow can do with a model, read from its layers in seconds (``pruneflow inspect``).

Per layer: its type, output channels, parameters (Keras's ``count_params``) and multiply-
accumulates per image (:mod:`.measure`), and for each technique (:data:`TECHNIQUES`: magnitude
pruning, channel pruning, clustering, quantization-aware training, each TFLite variant of
:data:`~pruneflow.steps.convert.variants.VARIANTS`) whether it applies there and why not. The
facts come from the steps' own registries (the layer types pruneflow prunes, clusters and
fake-quantizes), tfmot's registries, and the channel analyzer
(:func:`pruneflow.steps.prune.channels.analyze`). Nothing is trained or converted.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pruneflow.errors import PruneflowError
from pruneflow.results import MACS
from pruneflow.steps.cluster.config import CLUSTERABLE_LAYER_TYPES
from pruneflow.steps.convert.variants import VARIANTS, Variant
from pruneflow.steps.model.measure import layer_macs, leaf_layers
from pruneflow.steps.prune.config import PRUNABLE_LAYER_TYPES

# What each technique is called in a summary, and the key that turns it on.
TITLES = {
    "prune": "magnitude pruning (prune.sparsity)",
    "channels": "channel pruning (prune.channels)",
    "cluster": "weight clustering (cluster.clusters)",
    "qat": "quantization-aware training (stage=qat)",
    **{name: f"{name} (stage.variants)" for name, v in VARIANTS.items() if not v.given},
}
TECHNIQUES = tuple(TITLES)
# A layer's status for a technique: it applies; it does not (the row says why); only the
# layer's input channels go (channel pruning); nothing to do (no weights, no work); cannot be
# told without converting (a custom layer's ops).
YES, NO, INPUT, NONE, UNKNOWN = "yes", "no", "input", "-", "?"
TOUCHED = (YES, INPUT)  # statuses whose parameters and MACs a technique changes
# Measured (TF 2.21): dynamic-range conversion leaves weight tensors of fewer elements float.
DYNAMIC_MIN_WEIGHTS = 1024
# Layers whose weights the dynamic-range converter quantizes (hybrid kernels).
HYBRID_LAYER_TYPES = frozenset(
    {"Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "Dense"}
)


class ModelFileError(PruneflowError, ValueError):
    """A model file that cannot be inspected; the message names it and what to do."""


@dataclass
class Row:
    """One layer: what it is, what it costs, and per technique (status, why not)."""

    layer: str
    type: str
    out_channels: int | None
    params: int
    macs: int
    status: dict[str, tuple[str, str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The CSV row: the layer's columns, then ``<technique>`` and ``<technique>_why``."""
        row: dict[str, object] = {
            "layer": self.layer,
            "type": self.type,
            "out_channels": "" if self.out_channels is None else self.out_channels,
            "params": self.params,
            MACS: self.macs,
        }
        for t in TECHNIQUES:
            row[t], row[f"{t}_why"] = self.status[t]
        return row


@dataclass
class Share:
    """What one technique can touch: parameters and MACs of the layers it changes."""

    technique: str
    layers: int
    params: int
    macs: int
    params_share: float
    macs_share: float


def load_model_file(path: str | os.PathLike, modules: Sequence[str]):
    """A tf_keras model from a ``.keras``/``.h5`` file or a SavedModel folder, after importing
    ``modules`` (those that register its custom layers). Raises :class:`ModelFileError`, one
    line naming the path, for a path that does not exist, a file that is no model, a custom
    layer no module registered, or a subclassed model."""
    import importlib

    where = Path(path)
    if not where.exists():
        raise ModelFileError(
            f"{path} does not exist: valid values are a tf_keras .keras or .h5 file or a "
            "SavedModel folder"
        )
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - whatever the user's module raises
            raise ModelFileError(
                f"--import {name} cannot be imported: {type(exc).__name__}: {exc}"
            ) from None
    import tf_keras as keras

    missing = sorted(_unregistered(where))
    if missing:  # Keras's own error for one varies by format and place (a bare TypeError)
        raise ModelFileError(
            f"{path}: its custom layer {missing[0]!r} cannot be loaded: pass --import MODULE, "
            "the module that registers it (keras.utils.register_keras_serializable)"
        )
    try:
        model = keras.models.load_model(where, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds for a file it cannot read
        text = " ".join(str(exc).split())
        custom = re.search(
            r"Unknown layer: '([^']+)'|object of type `([^`]+)`|Could not locate class '([^']+)'",
            text,
        )
        if custom:
            name = next(g for g in custom.groups() if g).split(">")[-1]
            raise ModelFileError(
                f"{path}: its custom class {name!r} cannot be loaded: pass --import MODULE, "
                "the module that registers it (keras.utils.register_keras_serializable)"
            ) from None
        raise ModelFileError(
            f"{path} is not a model tf_keras can load ({type(exc).__name__}: {text[:200]}): "
            "valid values are a tf_keras .keras or .h5 file or a SavedModel folder"
        ) from None
    if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
        raise ModelFileError(
            f"{path} holds a subclassed model, whose layers tfmot cannot follow: export the "
            "functional model (keras.Model(inputs, outputs)) with tf_keras"
        )
    return model


def _unregistered(path: Path) -> set[str]:
    """Custom layer classes a ``.keras`` or ``.h5`` file's config names that no imported module
    registered (a file it cannot read: none; loading it says what is wrong)."""
    import json
    import zipfile

    import tf_keras as keras

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                config = json.loads(z.read("config.json"))
        elif path.is_file():
            import h5py

            with h5py.File(path, "r") as f:
                config = json.loads(f.attrs["model_config"])
        else:
            return set()
    except Exception:  # noqa: BLE001 - not a Keras file: load_model's error says so
        return set()
    found = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            name = node.get("registered_name") or node.get("class_name")
            module = node.get("module") or ""
            own = module.startswith(("keras", "tf_keras"))
            if isinstance(name, str) and (">" in name or (module and not own)):
                if keras.utils.get_registered_object(name) is None:
                    found.add(name.split(">")[-1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def is_custom(layer) -> bool:
    """A layer whose class is not tf_keras's own: a user's, or one a SavedModel revived
    without its class (``Revived...``). tf_keras's wrappers of TensorFlow ops
    (``TFOpLambda``) are its own."""
    cls = type(layer)
    revived = "saved_model" in cls.__module__ or ">" in cls.__name__
    return revived or not cls.__module__.startswith("tf_keras.")


def _out_channels(layer) -> int | None:
    if not layer._inbound_nodes:
        return None
    outs = layer._inbound_nodes[0].outputs
    shape = (outs[0] if isinstance(outs, (list, tuple)) else outs).shape
    return int(shape[-1]) if len(shape) and shape[-1] is not None else None


def _registries():
    """tfmot's registries of the layers it prunes, clusters and quantizes."""
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import (
        ClusteringRegistry,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as q8,
    )
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import (
        PruneRegistry,
    )

    return PruneRegistry, ClusteringRegistry, q8.Default8BitQuantizeRegistry()


def _by_registry(layer, kind: str, registry, types: frozenset[str], what: str):
    """Magnitude pruning or clustering of one layer (``what``: "prune", "cluster"): pruneflow
    selects ``types``; tfmot's ``registry`` names the weights it acts on."""
    if is_custom(layer):
        return NO, f"a custom layer ({kind}): not in tfmot's {what} registry"
    if not registry.supports(layer):
        return NO, f"{kind} is not in tfmot's {what} registry"
    if not registry._weight_names(layer):
        return NO, f"tfmot's {what} registry holds no weight of {kind} to {what}"
    if kind not in types:
        return NO, f"pruneflow's {what} step takes only {', '.join(sorted(types))}"
    return YES, ""


def _qat(layer, kind: str, nested: bool, registry):
    from pruneflow.steps.quantize.qat import QAT_LAYER_TYPES

    if nested:
        return NO, "the model nests a model, which tfmot's QAT cannot take (tflite_int8 can)"
    if is_custom(layer):
        return NO, f"a custom layer ({kind}): not in tfmot's quantize registry, trained in float"
    if kind in QAT_LAYER_TYPES:
        return YES, ""
    if not registry.supports(layer):
        return NO, f"{kind} is not in tfmot's quantize registry: trained in float"
    types = ", ".join(sorted(QAT_LAYER_TYPES))
    return NO, f"pruneflow's QAT fake-quantizes only {types}: {kind} trains in float"


def _variant(v: Variant, layer, kind: str, status: dict[str, tuple[str, str]]):
    """How one TFLite variant treats the layer, from the registry entry's fields."""
    if v.from_qat:
        return status["qat"]
    if v.optimization == "sparsity":  # only pruning's zeros are stored sparse
        s, why = status["prune"]
        return (s, f"no zeros to store sparse: {why}") if s == NO else (s, why)
    custom = is_custom(layer)
    if v.full_int8:
        if custom:
            why = f"a custom layer ({kind}): converts only if TFLite has int8 kernels for its ops"
            return UNKNOWN, why
        return YES, ""
    if custom:
        return UNKNOWN, f"a custom layer ({kind}): converts only if its ops are TFLite builtins"
    if v.optimization == "default" and not v.supported_type:  # dynamic range: int8 weights
        if kind not in HYBRID_LAYER_TYPES:
            return NO, f"{kind} has no convolution or dense kernel to quantize"
        largest = max(int(w.shape.num_elements()) for w in layer.weights)
        if largest < DYNAMIC_MIN_WEIGHTS:
            return NO, f"fewer than {DYNAMIC_MIN_WEIGHTS} weights in a tensor: left float"
    return YES, ""


def _kept_why(reason: str, layers: dict) -> str:
    """The channel analyzer's reason for keeping a group (``<layer>: <why>``, in a user's
    terms already: :meth:`pruneflow.steps.prune.groups.Graph.kept`), with what the analyzer
    cannot name itself: the activation that is not 0 at 0, a custom layer's class."""
    if reason in ("the model's output", "the model's input"):
        return f"reaches {reason}"
    name, _, why = reason.partition(": ")
    layer = layers.get(name)
    if layer is None or not why:
        return reason
    if why.startswith("a value not 0 at 0"):
        act = getattr(getattr(layer, "activation", None), "__name__", "its activation")
        return f"{name}'s activation ({act}) is not 0 at 0: {why}"
    if is_custom(layer):
        return f"meets a custom layer ({name}, {type(layer).__name__})"
    return reason


def channel_status(model) -> dict[str, tuple[str, str]]:
    """{layer: (status, why)} of channel pruning for the layers the channel analyzer places in
    a channel group: ``yes`` where its output channels can go, ``input`` where only its input
    channels can, ``no`` with the reason its group is kept. Layers it places in none are
    absent; a model it cannot read gives {"": (no, why)}."""
    from pruneflow.steps.prune import channels

    try:
        graph = channels.analyze(model)
    except Exception as exc:  # noqa: BLE001 - a model the analyzer was not written for
        return {"": (NO, f"the channel analyzer cannot read this model ({exc})")}
    layers = {la.name: la for la in leaf_layers(model)}
    outputs = {t._keras_history.layer.name for t in model.outputs}  # the classifier, mostly
    status: dict[str, tuple[str, str]] = {}
    for grp in graph.groups.values():
        for name in (*grp.producers, *grp.followers):
            if name in outputs:
                status[name] = (NO, "reaches the model's output")
            elif grp.kept_because:
                status[name] = (NO, _kept_why(grp.kept_because, layers))
            else:
                status[name] = (YES, "")
    for grp in graph.groups.values():
        if grp.producers and not grp.kept_because:
            for name, _ in grp.consumers:
                s, why = status.get(name, (NO, "its output channels stay"))
                if s != YES:
                    status[name] = (INPUT, f"its output channels stay: {why}")
    return status


def _channels_alone(layer, kind: str) -> tuple[str, str]:
    """Channel pruning of a layer with weights that no channel group holds."""
    if getattr(layer, "groups", 1) > 1:
        return NO, f"a grouped convolution (groups={layer.groups}): its channels are kept"
    if len(layer._inbound_nodes) > 1:
        return NO, "one layer used on several inputs: its channels are kept"
    if is_custom(layer):
        return NO, f"a custom layer ({kind}): the analyzer does not follow its channels"
    return NO, f"the analyzer does not follow {kind}'s channels"


def inspect_model(model) -> list[Row]:
    """One :class:`Row` per leaf layer of ``model`` (nested models expanded), in order."""
    from pruneflow.steps.quantize.qat import nests_a_model

    prune_reg, cluster_reg, quant_reg = _registries()
    nested = nests_a_model(model)
    chan = channel_status(model)
    unread = chan.get("")
    rows = []
    for layer in leaf_layers(model):
        kind = type(layer).__name__
        macs = layer_macs(layer)
        row = Row(layer.name, kind, _out_channels(layer), int(layer.count_params()), macs)
        row.status = s = dict.fromkeys(TECHNIQUES, (NONE, ""))
        rows.append(row)
        if not layer.weights and not macs and not is_custom(layer):
            continue  # nothing to do; a custom layer's ops are still the converter's to take
        s["channels"] = unread or chan.get(layer.name) or _channels_alone(layer, kind)
        if layer.weights:
            s["prune"] = _by_registry(layer, kind, prune_reg, PRUNABLE_LAYER_TYPES, "prune")
            s["cluster"] = _by_registry(
                layer, kind, cluster_reg, CLUSTERABLE_LAYER_TYPES, "cluster"
            )
            s["qat"] = _qat(layer, kind, nested, quant_reg)
        for v in VARIANTS.values():
            if not v.given:  # a .tflite file of yours (backbone=tflite) is made by nothing here
                s[v.name] = _variant(v, layer, kind, s)
    return rows


def shares(rows: Sequence[Row]) -> list[Share]:
    """Per technique, the parameters and MACs of the layers it changes, and their share of the
    model's."""
    params = sum(r.params for r in rows) or 1
    macs = sum(r.macs for r in rows) or 1
    out = []
    for t in TECHNIQUES:
        hit = [r for r in rows if r.status[t][0] in TOUCHED]
        p, m = sum(r.params for r in hit), sum(r.macs for r in hit)
        out.append(Share(t, len(hit), p, m, p / params, m / macs))
    return out


def prunable_channels(rows: Sequence[Row]) -> tuple[int, int]:
    """(output channels channel pruning can remove, output channels of every layer that
    computes): the share of all channels, not only of those in prunable groups."""
    made = [r for r in rows if r.macs and r.out_channels]
    total = sum(r.out_channels for r in made)
    return sum(r.out_channels for r in made if r.status["channels"][0] == YES), total


def write_csv(rows: Sequence[Row], summary: Sequence[Share], path: str | os.PathLike) -> Path:
    """The layer table at ``path`` and the summary beside it (``<stem>_summary.csv``); returns
    the summary's path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = [r.as_dict() for r in rows]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]) if table else ["layer"])
        writer.writeheader()
        writer.writerows(table)
    beside = path.with_name(f"{path.stem}_summary.csv")
    with beside.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["technique", "layers", "params", MACS, "params_share", "macs_share"])
        for s in summary:
            share = (f"{s.params_share:.6f}", f"{s.macs_share:.6f}")
            writer.writerow([s.technique, s.layers, s.params, s.macs, *share])
    return beside
