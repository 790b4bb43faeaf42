"""Your own model as the baseline: a tf_keras model saved as ``.keras``, ``.h5`` or a SavedModel
folder (``backbone=file backbone.path=PATH``).

:func:`kind_of` tells what a path holds without TensorFlow (bad paths are one line, in the
option's terms); :func:`load` loads it with tf_keras after importing the modules that register
its custom layers; :func:`describe` is what the config checks against the dataset (input shape,
class count, the layers no optimization handles); :func:`build_file` is the option's builder:
the model with its pixels scaled as it expects (the data reaches every model as raw 0..255
pixels), its output made probabilities, and optionally a new classifier head.

A model tfmot cannot take (a Keras 3 file, a subclassed model, a SavedModel not written by
tf_keras) raises :class:`NotKeras2Model`: the conversion-only route handles those.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pruneflow.errors import ArgumentError, ConfigError, require

if TYPE_CHECKING:
    from pruneflow.steps.model.config import FileConfig

log = logging.getLogger(__name__)

KERAS, H5, SAVEDMODEL = ".keras", ".h5", "SavedModel"
FORMATS = "a tf_keras model: a .keras file, a .h5 file or a SavedModel folder"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# How pixels reach the model (the data is raw 0..255): (scale, offset) of a Rescaling layer.
PIXELS = {"raw": None, "unit": (1.0 / 255.0, 0.0), "symmetric": (1.0 / 127.5, -1.0)}
# Layers that scale pixels inside a model: one right after the input means it takes raw pixels.
PREPROCESSING = ("Rescaling", "Normalization")
PIXELS_LAYER, PROBS_LAYER, HEAD_LAYER = "pixels", "probs", "head"
# Where Keras's own layers live (tfmot's wrappers too): any other layer class is a user's.
OURS = ("tf_keras.", "keras.", "tensorflow_model_optimization.", "tensorflow.")


class NotKeras2Model(ConfigError):
    """The file is a model that tfmot cannot take (a Keras 3 ``.keras``/``.h5``, a subclassed
    model, a SavedModel not written by tf_keras): only a conversion can use it."""

    def __init__(self, path: str, why: str):
        self.path, self.why = path, why
        super().__init__(
            f"backbone.path={path!r}: {why}; pruneflow prunes, clusters and trains only "
            "tf_keras (Keras 2) functional or Sequential models: re-save it with tf_keras "
            "(import tf_keras as keras; model.save('model.keras')), or export the functional model"
        )


def kind_of(path: str) -> str:
    """Which of :data:`KERAS`, :data:`H5`, :data:`SAVEDMODEL` ``path`` holds, read from its
    bytes (not its name); :class:`ArgumentError` (``path``) for anything else, and
    :class:`NotKeras2Model` for a model that Keras 3 or ``tf.saved_model.save`` wrote."""
    if not os.path.exists(path):
        require(False, "path", path, f"{FORMATS} that exists (it does not)")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            require(False, "path", path, f"{FORMATS} (a folder without saved_model.pb)")
        if not os.path.isfile(os.path.join(path, "keras_metadata.pb")):
            raise NotKeras2Model(path, "this SavedModel was not written by tf_keras")
        return SAVEDMODEL
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == HDF5_SIGNATURE:
        version = _h5_version(path)
        if version.startswith("3"):
            raise NotKeras2Model(path, f"it was written by Keras {version}")
        return H5
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "config.json" in names:
                meta = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
                version = str(meta.get("keras_version", ""))
                if version.startswith("3"):
                    raise NotKeras2Model(path, f"it was written by Keras {version}")
                return KERAS
    hint = "; a .tflite file is backbone=tflite" if head[4:8] == b"TFL3" else ""
    require(False, "path", path, f"{FORMATS} (this file is none of them{hint})")
    raise AssertionError  # unreachable: require raised


def _h5_version(path: str) -> str:
    import h5py

    with h5py.File(path, "r") as fh:
        version = fh.attrs.get("keras_version", "")
    return version.decode() if isinstance(version, bytes) else str(version)


def register(modules: Sequence[str], custom_objects: Sequence[str]) -> dict[str, object]:
    """Import ``modules`` (they register their layers with Keras as they load) and resolve
    ``custom_objects`` (``module:Name``), registered with Keras so that every later load in
    this process (the cached baseline, each pruned copy) finds them. Returns them by name."""
    import tf_keras as keras

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure of a user's module is this line
            require(False, "modules", list(modules), f"importable modules ({name}: {exc})")
    found = {}
    for spec in custom_objects:
        module, _, attr = spec.partition(":")
        try:
            found[attr] = getattr(importlib.import_module(module), attr)
        except Exception as exc:  # noqa: BLE001
            why = f"{spec}: {exc}" if attr else f"{spec} has no ':Name'"
            require(False, "custom_objects", list(custom_objects), f"module:Name entries ({why})")
    keras.saving.get_custom_objects().update(found)
    return found


def load(path: str, modules: Sequence[str], custom_objects: Sequence[str]):
    """The tf_keras model at ``path`` (uncompiled), its custom layers registered first."""
    import tf_keras as keras

    kind_of(path)
    register(modules, custom_objects)
    try:
        model = keras.models.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise _load_error(path, exc, modules) from None
    if not isinstance(model, keras.Model):
        raise NotKeras2Model(path, f"it loads as a {type(model).__name__}, not a Keras model")
    if not isinstance(model, keras.Sequential) and not getattr(model, "_is_graph_network", False):
        raise NotKeras2Model(path, f"{type(model).__name__} is a subclassed model")
    return model


def _load_error(path: str, exc: Exception, modules: Sequence[str]) -> Exception:
    """A load failure in one line: a layer Keras does not know named, with the keys that bring
    it in (tf_keras itself says ``'str' object is not callable`` of a .keras file's)."""
    unknown = unknown_layers(path)
    if unknown:
        return ArgumentError(
            "modules",
            list(modules),
            f"a module that registers layer {unknown[0]} of {path} (backbone.modules="
            f"[my_layers]), or backbone.custom_objects=[my_layers:{unknown[0].split('>')[-1]}]: "
            "it cannot be loaded without",
        )
    first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return ArgumentError("path", path, f"{FORMATS} that tf_keras loads ({first.strip()})")


def unknown_layers(path: str) -> list[str]:
    """The layer classes (their registered names) that a .keras or .h5 file's config names and
    Keras does not know here: neither its own nor registered (by a module, custom_objects)."""
    import tf_keras as keras

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    elif os.path.isfile(path):
        import h5py

        with h5py.File(path, "r") as fh:
            raw = fh.attrs.get("model_config", "{}")
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    else:
        return []  # a SavedModel: tf_keras names the layer itself
    found: list[str] = []

    def walk(layer: dict) -> None:  # a layer's entry; a model's has layers of its own
        cls = layer.get("class_name", "")
        name = layer.get("registered_name") or cls
        known = getattr(keras.layers, cls, None) or cls in ("Functional", "Sequential", "Model")
        if not known and keras.saving.get_registered_object(name) is None and name not in found:
            found.append(name)
        for inner in (layer.get("config") or {}).get("layers") or []:
            if isinstance(inner, dict):
                walk(inner)

    walk(config)
    return found


@dataclass(frozen=True)
class ModelInfo:
    """What the config checks of a model file: its input (height, width, channels; None where
    the model takes any size), its class count, whether it scales pixels itself, and its
    layers of classes that are not Keras's own (no optimization handles them)."""

    input_shape: tuple[int | None, int | None, int]
    classes: int
    own_preprocessing: bool
    custom_layers: tuple[str, ...]


@functools.lru_cache(maxsize=8)
def _describe(path: str, stamp: tuple, modules: tuple, custom_objects: tuple) -> ModelInfo:
    model = load(path, modules, custom_objects)
    shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else ()
    require(
        len(shape) == 3 and shape[-1] in (1, 3),
        "path",
        path,
        f"a model of one image input (height, width, 1 or 3 channels); its input is "
        f"{model.input_shape}",
    )
    out = model.output_shape
    require(
        not isinstance(out, list) and len(out) == 2 and out[-1],
        "path",
        path,
        f"a classifier: one output of class scores (batch, classes); its output is {out}",
    )
    return ModelInfo(shape, int(out[-1]), _scales_pixels(model), tuple(custom_layers(model)))


def describe(config: FileConfig) -> ModelInfo:
    """:class:`ModelInfo` of the model ``config`` names (loaded once per content stamp)."""
    st = os.stat(config.path)
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    return _describe(config.path, stamp, tuple(config.modules), tuple(config.custom_objects))


def _leaves(model):
    from pruneflow.steps.model.measure import leaf_layers

    return leaf_layers(model)


def custom_layers(model) -> list[str]:
    """Names of the layers of ``model`` whose class is not Keras's own (a user's layer):
    pruning, clustering and QAT leave them as they are."""
    return [la.name for la in _leaves(model) if not type(la).__module__.startswith(OURS)]


def _scales_pixels(model) -> bool:
    """Whether a :data:`PREPROCESSING` layer follows the input (before any weighted layer)."""
    for layer in _leaves(model):
        name = type(layer).__name__
        if name in PREPROCESSING:
            return True
        if layer.weights:
            return False
    return False


def pixels_of(config: FileConfig, info: ModelInfo) -> str:
    """The pixels setting in effect: ``auto`` is ``raw`` for a model that scales them itself
    (a Rescaling or Normalization layer after its input), else ``unit`` (0..1)."""
    if config.pixels != "auto":
        return config.pixels
    return "raw" if info.own_preprocessing else "unit"


def build_file(config: FileConfig, input_shape: Sequence[int], num_classes: int):
    """The baseline from ``config.path``: raw 0..255 pixels of ``input_shape`` in, scaled as
    ``config.pixels`` says (a ``pixels`` Rescaling layer first), class probabilities out (a
    softmax appended to a model whose last layer is linear); with ``head=new`` its last Dense
    layer replaced by a new one of ``num_classes`` (``dropout`` before it)."""
    import tf_keras as keras

    info = describe(config)
    model = load(config.path, config.modules, config.custom_objects)
    if config.head == "keep":
        require(
            info.classes == num_classes,
            "head",
            config.head,
            f"new (a new classifier head): the model has {info.classes} classes, the dataset "
            f"{num_classes}",
        )
    require(
        all(
            want in (None, int(got))
            for want, got in zip(info.input_shape, input_shape, strict=True)
        ),
        "path",
        config.path,
        f"a model of {tuple(input_shape)} images (the data's); it takes {info.input_shape}",
    )
    pixels = pixels_of(config, info)
    body = _with_pixels(model, PIXELS[pixels], tuple(int(d) for d in input_shape))
    if config.head == "new":
        dense = [la for la in body.layers if type(la).__name__ == "Dense"]
        require(bool(dense), "head", config.head, "keep: the model has no Dense layer to replace")
        features = dense[-1].input
        if config.dropout:
            drop = _free(body, f"{HEAD_LAYER}_dropout")
            features = keras.layers.Dropout(float(config.dropout), name=drop)(features)
        head = keras.layers.Dense(num_classes, activation="softmax", name=_free(body, HEAD_LAYER))
        outputs = head(features)
    else:
        outputs = body.outputs[0]
        last = body.layers[-1]
        if getattr(getattr(last, "activation", None), "__name__", "") == "linear":
            probs = keras.layers.Softmax(name=_free(body, PROBS_LAYER))  # scores to probabilities
            outputs = probs(outputs)
    auto = " (auto: the model scales them itself)" if config.pixels == "auto" else ""
    listed = f"; left dense (custom layers): {', '.join(info.custom_layers)}"
    log.info(
        "backbone %s: input %s, pixels %s%s, head %s (%d classes)%s",
        config.path,
        "x".join(str(d) for d in input_shape),
        pixels,
        auto if pixels == "raw" else "",
        config.head,
        num_classes,
        listed if info.custom_layers else "",
    )
    return keras.Model(body.inputs, outputs, name=model.name)


def _with_pixels(model, scaling: tuple[float, float] | None, input_shape: tuple[int, ...]):
    """``model`` as a flat functional model of raw pixels of ``input_shape``: a ``pixels``
    Rescaling layer (``scaling``: scale, offset; None: none) before its own layers, whose
    weights are kept. Flat, not nested: QAT refuses a model inside a model."""
    import tf_keras as keras

    if isinstance(model, keras.Sequential):
        inputs = keras.Input(shape=input_shape, name="image")
        x = inputs
        if scaling is not None:
            x = keras.layers.Rescaling(
                scaling[0], offset=scaling[1], name=_free(model, PIXELS_LAYER)
            )(x)
        for layer in model.layers:  # the same layer objects, called on the new input
            x = layer(x)
        return keras.Model(inputs, x, name=model.name)
    if scaling is None:
        return model
    # a functional model: the Rescaling layer spliced in after the input in its config, the
    # model rebuilt from it and its weights copied layer by layer (a clone on an inner tensor
    # never returns in tf_keras 2.21)
    config = model.get_config()
    (name, *_), *more = config["input_layers"]
    require(not more, "path", model.name, "a model of one image input")
    layers, pixels = [], _free(model, PIXELS_LAYER)
    for layer in config["layers"]:
        if layer["name"] != name:
            layer = {**layer, "inbound_nodes": _rename(layer["inbound_nodes"], name, pixels)}
        layers.append(layer)
        if layer["name"] == name:
            rescaling = keras.layers.Rescaling(scaling[0], offset=scaling[1], name=pixels)
            layers.append(
                {
                    "class_name": "Rescaling",
                    "name": pixels,
                    "config": rescaling.get_config(),
                    "inbound_nodes": [[[name, 0, 0, {}]]],
                }
            )
    rebuilt = keras.Model.from_config({**config, "layers": layers})
    for layer in model.layers:
        rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
    return rebuilt


def _free(model, name: str) -> str:
    """``name``, or ``name_2``, ``name_3``...: the first that no layer of ``model`` has."""
    taken = {layer.name for layer in model.layers}
    return next(n for n in (name, *(f"{name}_{i}" for i in range(2, 99))) if n not in taken)


def _rename(node, name: str, new: str):
    """``node`` (a layer's serialized inbound nodes) with each reference to tensors of layer
    ``name`` (``[name, node_index, tensor_index, ...]``) made one to layer ``new``."""
    if isinstance(node, list):
        if len(node) >= 3 and node[0] == name and isinstance(node[1], int):
            return [new, *node[1:]]
        return [_rename(n, name, new) for n in node]
    if isinstance(node, dict):
        return {k: _rename(v, name, new) for k, v in node.items()}
    return node
