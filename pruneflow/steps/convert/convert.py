"""Convert step: save the Keras model and convert it to the TFLite variants the config names
(how each variant is made: :mod:`.variants`)."""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pruneflow.errors import require
from pruneflow.progress import duration
from pruneflow.steps.convert.variants import KERAS, VARIANTS, Variant

log = logging.getLogger(__name__)


@dataclass
class ModelFile:
    """One exported model file and what it holds."""

    path: Path
    size_bytes: int
    gzip_bytes: int
    sparsity: float | None  # zeros stored in a .tflite file's weights; None for Keras
    # clustered runs: the most distinct values in a clustered weight tensor (unique_weights)
    unique_weights: int | None = None


def describe(
    paths: Mapping[str, Path], clustered: Iterable[str] = (), keras_unique: int | None = None
) -> dict[str, ModelFile]:
    """{variant: ModelFile} for the files :func:`export_models` wrote; with the names of the
    ``clustered`` layers, each .tflite file's :func:`unique_weights` (the Keras model's,
    measured on its kernels, is ``keras_unique``)."""
    layers = list(clustered)
    files = {}
    for variant, path in paths.items():
        raw, gz = file_sizes(path)
        if variant == KERAS:
            files[variant] = ModelFile(Path(path), raw, gz, None, keras_unique if layers else None)
        else:
            unique = unique_weights(path, layers) if layers else None
            files[variant] = ModelFile(Path(path), raw, gz, weight_sparsity(path), unique)
    return files


def file_sizes(path: str | Path) -> tuple[int, int]:
    """(raw bytes, gzip bytes) of a file: gzip shows what pruning's zeros save in transit.

    gzip's default level 6, as `gzip FILE` ships it: level 9 saves a few percent more on very
    sparse files but costs 5-15x the time (bench: 0.2 s against 16 ms for a 420 KB model).
    """
    data = Path(path).read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=6, mtime=0))


def _converter(model, variant: Variant, representative: np.ndarray):
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant.optimization == "sparsity":
        conv.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    elif variant.optimization == "default":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant.supported_type:
        conv.target_spec.supported_types = [getattr(tf, variant.supported_type)]
    if variant.full_int8:
        samples = representative.astype(np.float32)

        def gen():
            for i in range(len(samples)):
                yield [samples[i : i + 1]]

        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv


def export_models(
    model,
    variants: Iterable[str],
    out_dir: str | Path,
    representative: np.ndarray,
    qat_model=None,
) -> dict[str, Path]:
    """Write ``keras.keras`` and ``<variant>.tflite`` for each variant into ``out_dir``.

    ``representative`` holds training images (uint8 NHWC) for int8 calibration;
    ``qat_model`` is the quantization-aware model that the ``from_qat`` variants convert.
    Returns {variant name: path}, the Keras model under ``keras``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {KERAS: out / "keras.keras"}
    model.save(paths[KERAS])
    for name in variants:
        variant = VARIANTS[name]
        source = model
        if variant.from_qat:
            require(
                qat_model is not None,
                "qat_model",
                None,
                f"the quantization-aware model that {name} is converted from",
                required=True,
            )
            source = qat_model
        path = out / f"{name}.tflite"
        started = time.perf_counter()
        path.write_bytes(_converter(source, variant, representative).convert())
        _converted(name, path, time.perf_counter() - started)
        paths[name] = path
    return paths


def _converted(name: str, path: Path, seconds: float) -> None:
    """Say that variant ``name`` is written to ``path`` (in ``seconds``, its size): a
    conversion can take seconds to minutes, and a user sees each one end."""
    log.info("converted %s in %s: %.1f KB", name, duration(seconds), path.stat().st_size / 1024)


def _weight_tensors(path: str | Path):
    """The constant weight tensors (rank >= 2) of a .tflite file, as (name, stored values,
    dense size, axis of per-channel quantization or None, whether in sparse format): a tensor
    in sparse format stores only its nonzero blocks, so its dense size is larger."""
    from tensorflow.lite.python import schema_py_generated as fb

    dtypes = {
        fb.TensorType.FLOAT32: np.float32,
        fb.TensorType.FLOAT16: np.float16,
        fb.TensorType.INT8: np.int8,
    }
    buf = Path(path).read_bytes()
    model = fb.Model.GetRootAsModel(buf, 0)
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            data = model.Buffers(tensor.Buffer())
            dtype = dtypes.get(tensor.Type())
            if dtype is None or tensor.ShapeLength() < 2 or data is None or not data.DataLength():
                continue
            values = np.frombuffer(data.DataAsNumpy().tobytes(), dtype=dtype)
            shape = tuple(int(d) for d in tensor.ShapeAsNumpy())
            sparse = tensor.Sparsity() is not None
            quant = tensor.Quantization()
            axis = quant.QuantizedDimension() if quant and quant.ScaleLength() > 1 else None
            if not sparse:
                values = values.reshape(shape)
            yield tensor.Name().decode(), values, int(np.prod(shape)), axis, sparse


def weight_sparsity(path: str | Path) -> float:
    """Fraction of exact zeros over the constant weight tensors (rank >= 2) of a .tflite file
    (for a tensor in sparse format, the zeros it does not store count as zeros).

    What the deployed file really holds: int8 weights keep pruning's zeros only if quantization
    preserved them.
    """
    zeros = total = 0
    for _, values, size, _, _ in _weight_tensors(path):
        zeros += int(size - np.count_nonzero(values))
        total += size
    return zeros / total if total else 0.0


def unique_weights(path: str | Path, layers: Iterable[str]) -> int | None:
    """The most distinct values in any weight tensor of ``layers`` (Keras layer names) in a
    .tflite file, counted from the file; None when no tensor of theirs is found.

    A tensor belongs to a layer when the layer's name is one part of the tensor's name (the
    converter names weights after the ops that use them, ``cnn/conv1/Conv2D``, and
    quantization-aware layers ``quant_<name>``). A tensor quantized per channel (int8
    convolutions: every output channel has its own scale) is counted per channel, where
    clustering's shared values stay shared; a tensor in sparse format counts its zeros too.
    """
    wanted = set(layers)
    most = None
    for name, values, size, axis, sparse in _weight_tensors(path):
        parts = {p.removeprefix("quant_") for op in name.split(";") for p in op.split("/")}
        if not parts & wanted:
            continue
        if axis is None:
            unstored_zeros = sparse and size > values.size and values.all()
            n = len(np.unique(values)) + int(unstored_zeros)
        else:
            n = max(len(np.unique(s)) for s in np.moveaxis(values, axis, 0))
        most = n if most is None else max(most, n)
    return most
