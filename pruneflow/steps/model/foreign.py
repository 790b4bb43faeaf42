"""Models tfmot cannot take: a ``.tflite`` file (``backbone=tflite``), and a Keras 3 ``.keras``
file, a subclassed model or a SavedModel not written by tf_keras (``backbone=file``).

Which route a backbone takes (:func:`route`) and what tfmot cannot take in a file
(:func:`why_not_tfmot`) are read from the file's bytes, light (no TensorFlow), so that
:func:`refuse_options` stops an option that needs tfmot or a Keras model before any work. The
rest loads: a model to convert becomes one SavedModel (:func:`load_source`, a Keras 3 file
exported first), evaluated in TensorFlow as the run's baseline and converted by TFLite's
SavedModel converter (:func:`convert`); a .tflite file is the run's one variant
(:func:`take_tflite`). Both feed the model's input shape to the data (:func:`adapt_dataset`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from pruneflow.errors import ConfigError, PruneflowError
from pruneflow.steps.convert.variants import GIVEN_VARIANTS, QAT_VARIANTS, VARIANTS
from pruneflow.steps.model.config import FileConfig, TFLiteConfig

log = logging.getLogger(__name__)

TFLITE, CONVERT = "tflite", "convert"  # the routes of :func:`route`
FUNCTIONAL = ("Functional", "Sequential", "Model")  # tf_keras graph networks tfmot can take
SAVED_MODEL_FILE, KERAS_METADATA = "saved_model.pb", "keras_metadata.pb"
WHAT_TO_DO = (
    "re-save it with tf_keras (TF_USE_LEGACY_KERAS=1, import tf_keras as keras), or export the "
    "functional model"
)


class ForeignModel(PruneflowError, TypeError):
    """A model tfmot cannot take, given where a tf_keras model is needed; the message says why
    (:func:`why_not_tfmot`) and what to do."""


def why_not_tfmot(path: str | os.PathLike) -> str | None:
    """Why tfmot cannot take the model at ``path``, or None when it can (a tf_keras functional
    or Sequential model, in a ``.keras``/``.h5`` file or a SavedModel folder): ``a Keras 3
    .keras file (Keras 3.15.1)``, ``a subclassed model (class Sub)``, ``a SavedModel not
    written by tf_keras (no keras_metadata.pb)``. Reads the file's bytes only."""
    p = Path(path)
    if p.is_dir():
        if not (p / SAVED_MODEL_FILE).is_file():
            return None  # no SavedModel: the file loader says what it is
        meta = p / KERAS_METADATA
        if not meta.is_file():
            return f"a SavedModel not written by tf_keras (no {KERAS_METADATA})"
        # the root object's identifier comes first: _tf_keras_network (functional),
        # _tf_keras_sequential, or _tf_keras_model (a subclassed model)
        data = meta.read_bytes()
        at = data.find(b"_tf_keras_")
        kind = data[at + len(b"_tf_keras_") : at + 30].split(b"*")[0] if at >= 0 else b""
        if kind.startswith(b"model"):
            name = _json_after(data, at).get("class_name", "?")
            return f"a subclassed model (class {name}, a SavedModel by tf_keras)"
        return None
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
            if "metadata.json" not in names or "config.json" not in names:
                return None
            version = json.loads(z.read("metadata.json")).get("keras_version", "")
            config = json.loads(z.read("config.json"))
        if version.split(".")[0] not in ("", "2"):
            return f"a Keras {version.split('.')[0]} .keras file (Keras {version})"
        if config.get("class_name") not in FUNCTIONAL:
            return f"a subclassed model (class {config.get('class_name')})"
    return None


def _json_after(data: bytes, at: int) -> dict[str, Any]:
    """The JSON object that follows offset ``at`` of a keras_metadata.pb, or {}."""
    start = data.find(b"{", at)
    try:
        return json.JSONDecoder().raw_decode(data[start:].decode("utf-8", "replace"))[0]
    except ValueError:
        return {}


def route(backbone: Any) -> str | None:
    """``tflite`` for a .tflite file, ``convert`` for a file tfmot cannot take, else None (the
    whole chain: prune, cluster, QAT, convert)."""
    if isinstance(backbone, TFLiteConfig):
        return TFLITE
    if isinstance(backbone, FileConfig) and why_not_tfmot(backbone.path):
        return CONVERT
    return None


def refuse_options(config: Any, overrides: Iterable[str] = ()) -> None:
    """Raise :class:`ConfigError` for the first option ``config`` (a
    :class:`pruneflow.config.Config`) asks that its backbone's route cannot do: on a .tflite
    file nothing that needs a Keras model; on a model tfmot cannot take, nothing that needs
    tfmot. Defaults that stand for the whole chain are not asked: ``prune.sparsity``'s
    becomes 0 on both routes, and with ``backbone=tflite`` the default stage becomes
    ``stage=file`` (its one variant); ``overrides`` (the command line's ``key=value``) says
    which values were asked, so that ``prune.sparsity=0.5`` typed is refused all the same.
    Light: reads the model file's bytes only."""
    b = config.backbone
    way = route(b)
    given = [v for v in config.stage.variants if v in GIVEN_VARIANTS]
    if way is None:
        if given:
            raise ConfigError(
                f"stage.variants={config.stage.variants} is invalid for "
                f"backbone={b.label}: valid values are lists without {given} (the file of "
                "backbone=tflite backbone.path=...; this backbone converts its own)"
            )
        return
    from pruneflow.steps.convert.config import StageConfig
    from pruneflow.steps.prune.config import PruneConfig

    asked = {o.lstrip("+~").partition("=")[0]: o.partition("=")[2] for o in overrides}
    if "prune.sparsity" not in asked and config.prune.sparsity == PruneConfig.sparsity:
        config.prune.sparsity = 0.0  # the chain's default, not asked: nothing to prune here
    variants = list(config.stage.variants)
    if way == TFLITE and "stage" not in asked and variants == StageConfig().variants:
        config.stage.variants = list(GIVEN_VARIANTS)  # the default stage: the file is the one
    if way == TFLITE:
        subject = "backbone=tflite"
        why = "a .tflite file has no Keras model to"
        todo = "give the Keras model as backbone=file backbone.path=... to"
    else:
        reason = why_not_tfmot(b.path)
        subject = f"backbone.path={b.path}"
        why = f"it is {reason}, which tfmot cannot"
        todo = f"{WHAT_TO_DO} to"

    def refuse(key: str, value: Any, valid: str, what: str) -> None:
        raise ConfigError(
            f"{key}={value} is invalid with {subject}: valid values are {valid} ({why} {what}; "
            f"{todo} {what})"
        )

    p, c = config.prune, config.cluster
    if p.sparsity > 0:
        refuse("prune.sparsity", f"{p.sparsity:g}", "0", "prune")
    if p.channels > 0:
        refuse("prune.channels", f"{p.channels:g}", "0", "remove channels from")
    if c.clusters:
        refuse("cluster.clusters", c.clusters, "0", "cluster")
    if config.benchmark.keras in ("device", "host"):
        refuse("benchmark.keras", config.benchmark.keras, "auto or off", "time as Keras")
    variants = list(config.stage.variants)
    if way == TFLITE:
        if variants != list(GIVEN_VARIANTS):
            refuse("stage.variants", variants, f"{list(GIVEN_VARIANTS)} (stage=file)", "convert")
        return
    bad = [v for v in variants if v in QAT_VARIANTS or v in GIVEN_VARIANTS]
    if bad:
        kept = [v for v in VARIANTS if v not in QAT_VARIANTS and v not in GIVEN_VARIANTS]
        refuse("stage.variants", variants, f"lists drawn from {kept}", "train quantization-aware")


# ---- loading: TensorFlow from here on ----


def tflite_only(config: TFLiteConfig, input_shape=None, num_classes=None):
    """``backbone=tflite`` builds no Keras model: the file is the variant."""
    raise ForeignModel(f"backbone.path={config.path} is a .tflite file: there is no Keras model")


class SavedModelSource:
    """A SavedModel's ``serving_default`` signature, one image input: what the conversion
    route converts and evaluates as its baseline (``predict`` as a Keras model's)."""

    def __init__(self, folder: str | Path, path: str):
        import tensorflow as tf

        self.folder = Path(folder)
        self._loaded = tf.saved_model.load(str(folder))
        signature = self._loaded.signatures.get("serving_default")
        _, inputs = signature.structured_input_signature if signature else ((), {})
        if signature is None or len(inputs) != 1:
            raise ConfigError(
                f"backbone.path={path} is invalid: valid values are models with one image input "
                f"(a serving_default signature taking one tensor; this one takes "
                f"{sorted(inputs) if signature else 'none'}); save it with "
                "tf.saved_model.save(model, folder, signatures=...)"
            )
        (self._input, spec), *_ = inputs.items()
        self._output = sorted(signature.structured_outputs)[0]
        self._signature, self.dtype = signature, spec.dtype
        self.shape = tuple(spec.shape)

    def predict(self, x: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        import tensorflow as tf

        out = []
        for start in range(0, len(x), batch_size):
            batch = tf.constant(x[start : start + batch_size], dtype=self.dtype)
            out.append(self._signature(**{self._input: batch})[self._output].numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def load_source(path: str, workdir: Path) -> SavedModelSource:
    """The model at ``path`` as a :class:`SavedModelSource`: a SavedModel folder as it is; a
    ``.keras`` file exported to ``workdir`` first (Keras 3 by Keras 3, a subclassed tf_keras
    model by tf_keras; either must be loadable: its classes registered)."""
    if Path(path).is_dir():
        return SavedModelSource(path, path)
    folder = Path(workdir) / "saved_model"
    if folder.exists():
        shutil.rmtree(folder)
    version = why_not_tfmot(path) or ""
    try:
        if version.startswith("a Keras 3"):
            import keras  # Keras 3 itself, beside tf_keras (tfmot's)

            keras.saving.load_model(path, compile=False).export(str(folder), verbose=False)
        else:
            import tf_keras

            tf_keras.models.load_model(path, compile=False).export(str(folder))
    except (TypeError, ValueError) as exc:  # an unknown class or layer: its name is in there
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"backbone.path={path} cannot be loaded ({first}): register its classes "
            "(keras.saving.register_keras_serializable) or export it as a SavedModel"
        ) from None
    return SavedModelSource(folder, path)


def tflite_input(path: str | Path) -> tuple[tuple[int, ...], str]:
    """(input shape, what its input takes: ``int8 (scale 1, zero point -128)``, ``float32``)
    of a .tflite file, read by LiteRT: the evaluation and the device runner quantize raw
    pixels with that scale and zero point (:func:`pruneflow.devices.runner.to_input`)."""
    from pruneflow.devices.runner import runtime

    lite, _, _ = runtime()
    detail = lite.Interpreter(model_path=str(path)).get_input_details()[0]
    takes = np.dtype(detail["dtype"]).name
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero = detail["quantization"]
        takes += f" (scale {scale:g}, zero point {zero})"
    return tuple(int(d) for d in detail["shape"]), takes


def adapt_dataset(dataset: Any, shape: Iterable[int | None], path: str) -> Any:
    """``dataset`` (a dataset config) at the image size and channels of a model input of
    ``shape`` (NHWC, square images); says so when it changes them. A shape that is not one,
    or a channel count the dataset cannot give, is a :class:`ConfigError`."""
    dims = tuple(shape)
    if len(dims) != 4 or dims[1] is None or dims[1] != dims[2] or dims[3] not in (1, 3):
        raise ConfigError(
            f"backbone.path={path} is invalid: valid values are models taking square images "
            f"(batch, size, size, 1 or 3 channels); its input is {dims}"
        )
    size, depth = int(dims[1]), int(dims[3])
    changes: dict[str, int] = {}
    if dataset.image_size != size:
        changes["image_size"] = size
    if dataset.channels != depth:
        if "channels" not in {f.name for f in dataclasses.fields(dataset)}:
            raise ConfigError(
                f"backbone.path={path} takes {depth}-channel images; "
                f"dataset={dataset.label} has {dataset.channels}: give a dataset of "
                f"{depth}-channel images"
            )
        changes["channels"] = depth
    if changes:
        was = f"{dataset.image_size}x{dataset.image_size}x{dataset.channels}"
        log.info(
            "the model's input is %dx%dx%d: the data is resized to it (dataset %s)",
            size,
            size,
            depth,
            was,
        )
        return dataclasses.replace(dataset, **changes)
    return dataset


def _scales_itself(path: str) -> bool | None:
    """Whether the model of a ``.keras`` file (Keras 3 or tf_keras, Functional or Sequential)
    scales its pixels itself: a Rescaling or Normalization layer before any other, read from
    its ``config.json``; None where the file does not say (a SavedModel, a subclassed model)."""
    from pruneflow.steps.model.source import PREPROCESSING

    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as z:
        if "config.json" not in z.namelist():
            return None
        config = json.loads(z.read("config.json"))
    if config.get("class_name") not in FUNCTIONAL:
        return None
    layers = [la for la in config.get("config", {}).get("layers", []) if isinstance(la, dict)]
    first = next((la for la in layers if la.get("class_name") != "InputLayer"), None)
    return first is not None and first.get("class_name") in PREPROCESSING


def pixels_for(config: FileConfig) -> str:
    """``backbone.pixels`` in effect for a model converted only: ``auto`` is ``raw`` for a
    model that scales its pixels itself and ``unit`` (0..1) for one that does not, as for a
    tf_keras file (:func:`pruneflow.steps.model.source.pixels_of`); a model whose layers
    cannot be read (a SavedModel, a subclassed model) gets them raw, and the log says how to
    change that."""
    if config.pixels != "auto":
        return config.pixels
    scales = _scales_itself(config.path)
    if scales is None:
        log.info(
            "backbone.pixels=auto: %s does not say how it takes its pixels; they reach it raw "
            "(0..255): backbone.pixels=unit gives 0..1, symmetric -1..1",
            config.path,
        )
        return "raw"
    return "raw" if scales else "unit"


def with_pixels(source: SavedModelSource, pixels: str, workdir: Path) -> SavedModelSource:
    """``source`` taking raw 0..255 pixels, scaled as ``pixels`` says before its own graph (a
    SavedModel wrapping it, in ``workdir``): every variant then takes raw pixels, as the
    whole chain's do; ``raw``: ``source`` itself."""
    import tensorflow as tf

    from pruneflow.steps.model.source import PIXELS

    scaling = PIXELS[pixels]
    if scaling is None:
        return source
    scale, offset = scaling
    signature, name, output = source._signature, source._input, source._output

    class Scaled(tf.Module):
        def __init__(self):
            super().__init__()
            self.inner = source._loaded  # tracked: saved with it

        @tf.function(input_signature=[tf.TensorSpec(source.shape, source.dtype, name=name)])
        def serve(self, x):
            return {output: signature(**{name: x * scale + offset})[output]}

    module = Scaled()
    folder = Path(workdir) / f"saved_model_{pixels}"
    if folder.exists():
        shutil.rmtree(folder)
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    log.info("backbone.pixels=%s: the raw pixels are scaled by %g%+g first", pixels, scale, offset)
    return SavedModelSource(folder, str(folder))


def take_tflite(path: str, out_dir: Path) -> dict[str, Path]:
    """``{tflite_file: copy}``: the user's .tflite file as the run's one variant, copied into
    ``out_dir`` under the variant's name (the run's artifacts name variants alike)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (variant,) = GIVEN_VARIANTS
    copy = out / f"{variant}.tflite"
    shutil.copyfile(path, copy)
    return {variant: copy}


def convert(
    source: SavedModelSource, variants: Iterable[str], out_dir: Path, representative: np.ndarray
) -> dict[str, Path]:
    """Convert ``source`` to each variant by TFLite's SavedModel converter (how a variant is
    made: :func:`pruneflow.steps.convert.convert.configure`); ``{variant: path}``."""
    import tensorflow as tf

    from pruneflow.steps.convert.convert import configure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in variants:
        started = time.perf_counter()
        conv = tf.lite.TFLiteConverter.from_saved_model(str(source.folder))
        paths[name] = out / f"{name}.tflite"
        paths[name].write_bytes(configure(conv, VARIANTS[name], representative).convert())
        took = time.perf_counter() - started
        size = paths[name].stat().st_size / 1024
        log.info("converted %s from the SavedModel in %.1f s: %.1f KB", name, took, size)
    return paths
