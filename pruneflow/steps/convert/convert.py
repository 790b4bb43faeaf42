"""Convert step: save the Keras model and convert it to the TFLite variants the config names
(how each variant is made: :mod:`.variants`)."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pruneflow.errors import require
from pruneflow.steps.convert.variants import KERAS, VARIANTS, Variant


@dataclass
class ModelFile:
    """One exported model file and what it holds."""

    path: Path
    size_bytes: int
    gzip_bytes: int
    sparsity: float | None  # zeros stored in a .tflite file's weights; None for Keras


def describe(paths: Mapping[str, Path]) -> dict[str, ModelFile]:
    """{variant: ModelFile} for the files :func:`export_models` wrote."""
    files = {}
    for variant, path in paths.items():
        raw, gz = file_sizes(path)
        zeros = None if variant == KERAS else weight_sparsity(path)
        files[variant] = ModelFile(Path(path), raw, gz, zeros)
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
        path.write_bytes(_converter(source, variant, representative).convert())
        paths[name] = path
    return paths


def weight_sparsity(path: str | Path) -> float:
    """Fraction of exact zeros over the constant weight tensors (rank >= 2) of a .tflite file
    (for a tensor in sparse format, the zeros it does not store count as zeros).

    What the deployed file really holds: int8 weights keep pruning's zeros only if quantization
    preserved them.
    """
    from tensorflow.lite.python import schema_py_generated as fb

    dtypes = {
        fb.TensorType.FLOAT32: np.float32,
        fb.TensorType.FLOAT16: np.float16,
        fb.TensorType.INT8: np.int8,
    }
    buf = Path(path).read_bytes()
    model = fb.Model.GetRootAsModel(buf, 0)
    zeros = total = 0
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            data = model.Buffers(tensor.Buffer())
            dtype = dtypes.get(tensor.Type())
            if dtype is None or tensor.ShapeLength() < 2 or data is None or not data.DataLength():
                continue
            values = np.frombuffer(data.DataAsNumpy().tobytes(), dtype=dtype)
            # a tensor in sparse format stores only its nonzero blocks: count the dense shape
            size = values.size if tensor.Sparsity() is None else int(np.prod(tensor.ShapeAsNumpy()))
            zeros += int(size - np.count_nonzero(values))
            total += size
    return zeros / total if total else 0.0
