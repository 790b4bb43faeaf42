"""Convert step: save the Keras model and convert it to the TFLite variants the config names
(how each variant is made: :mod:`.variants`)."""

from __future__ import annotations

import collections
import gzip
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pruneflow.errors import require
from pruneflow.progress import duration
from pruneflow.results import KERAS
from pruneflow.steps.convert.variants import VARIANTS, Variant

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


def _converter(
    model, variant: Variant, representative: np.ndarray, saved: _SavedModel | None = None
):
    """TFLite's converter of ``model`` for ``variant``; with ``saved``, it converts that export
    of the model instead of exporting the model again."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if saved is not None:
        saved.attach(conv)
    return configure(conv, variant, representative)


def configure(conv, variant: Variant, representative: np.ndarray):
    """Set a TFLite converter (of a Keras model or a SavedModel) up for ``variant``:
    optimization, weight type, the accumulation type its metadata records and, for full int8,
    calibration on ``representative`` (uint8 NHWC) with int8 input and output. Returns
    ``conv``."""
    import tensorflow as tf

    if variant.optimization == "sparsity":
        conv.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    elif variant.optimization == "default":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant.supported_type:
        conv.target_spec.supported_types = [getattr(tf, variant.supported_type)]
    if variant.accumulation:  # LiteRT's XNNPACK README: how a model asks for FP16 arithmetic
        conv.target_spec._experimental_supported_accumulation_type = getattr(
            tf, variant.accumulation
        )
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


class _SavedModel:
    """A Keras model exported once as the SavedModel TFLite's Keras converter makes of it, and
    loaded once, for all of a job's variants.

    ``TFLiteConverter.from_keras_model(m).convert()`` first saves ``m`` as a SavedModel (tracing
    every layer: 19 of the 20 s of one MobileNetV2 conversion) and loads it back, then converts
    that: the same work for every variant. Here it is done once, the way the converter does it
    (``_convert_keras_to_saved_model`` in tensorflow/lite/python/lite.py, TF 2.21), and each
    variant's converter is handed the result: the files are the same byte for byte (a test
    compares them with the converter's own path). Where the export fails, :meth:`export`
    returns None and each variant is converted as TFLite does on its own (which then falls
    back to freezing the Keras graph).
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._loaded = None  # (graph_def, input tensors, output tensors, loaded trackable)

    @classmethod
    def export(cls, model, folder: Path) -> _SavedModel | None:
        from tensorflow.python.saved_model import save, save_options

        try:
            save.save(model, str(folder), options=save_options.SaveOptions(save_debug_info=True))
        except Exception:  # noqa: BLE001 - TFLite's own fallback: convert without the export
            return None
        return cls(folder)

    def attach(self, conv) -> None:
        """Make ``conv`` (a Keras model converter) convert this export."""
        conv._convert_keras_to_saved_model = lambda _output_dir: self._prepare(conv)

    def _prepare(self, conv):
        from tensorflow.lite.python import lite

        conv.saved_model_dir = str(self.folder)
        conv._saved_model_tags = {"serve"}
        conv._saved_model_exported_names = ["serving_default"]
        conv._parse_saved_model_args(
            always_enable_saved_model_import=conv.experimental_lower_to_saved_model
        )
        if self._loaded is None:
            graph_def, inputs, outputs = conv._load_saved_model(
                conv.saved_model_dir, conv._saved_model_tags
            )
            trackable = lite._load(conv.saved_model_dir, conv._saved_model_tags)
            self._loaded = graph_def, inputs, outputs, trackable
        graph_def, inputs, outputs, conv._trackable_obj = self._loaded
        return graph_def, inputs, outputs


# A worker process pays only for a large model: before its first variant it imports
# TensorFlow (~3 s) and loads the export. Measured (BENCHMARKS.md, issue #21): the digits CNN
# (10 layers) converts its four variants in ~1 s in all, before a worker could start; MobileNetV2
# (159 layers) spends 9 s exporting and 5 s loading, while a worker gets ready; VGG16 has 24
# layers (serial), ResNet50 180.
WORKER_MIN_LAYERS = 40


def conversion_workers(model, variants: int) -> int:
    """Worker processes that convert variants beside this process: 1 where the machine has
    another core, there are two variants or more and the model has at least
    :data:`WORKER_MIN_LAYERS` layers (nested ones counted); else 0, serial."""
    from pruneflow.steps.model.measure import leaf_layers

    cores = len(os.sched_getaffinity(0))
    return int(cores >= 2 and variants >= 2 and len(leaf_layers(model)) >= WORKER_MIN_LAYERS)


def export_models(
    model,
    variants: Iterable[str],
    out_dir: str | Path,
    representative: np.ndarray,
    qat_model=None,
    workers: int | None = None,
) -> dict[str, Path]:
    """Write ``keras.keras`` and ``<variant>.tflite`` for each variant into ``out_dir``.

    ``representative`` holds training images (uint8 NHWC) for int8 calibration;
    ``qat_model`` is the quantization-aware model that the ``from_qat`` variants convert.
    Each model is exported once for all its variants (:class:`_SavedModel`); with ``workers``
    (default :func:`conversion_workers`), that many worker processes, started first so that
    they import TensorFlow while the model is exported, convert variants beside this process.
    The files are the same byte for byte either way. Returns {variant name: path}, the Keras
    model under ``keras``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(variants)
    sources = {}
    for name in names:
        if VARIANTS[name].from_qat:
            require(
                qat_model is not None,
                "qat_model",
                None,
                f"the quantization-aware model that {name} is converted from",
                required=True,
            )
        sources[name] = qat_model if VARIANTS[name].from_qat else model
    if workers is None:
        workers = conversion_workers(model, len(names))
    paths = {KERAS: out / "keras.keras"}
    with _Workers(workers) as pool, tempfile.TemporaryDirectory(prefix="pruneflow-") as tmp:
        model.save(paths[KERAS])
        exports: dict[int, _SavedModel | None] = {}  # by id of the model: one export each
        for source in sources.values():
            if id(source) not in exports:
                exports[id(source)] = _SavedModel.export(source, Path(tmp) / str(len(exports)))
        pool.wait_ready()  # a large model's export outlasts a worker's start: seldom a wait
        todo = collections.deque(names)
        running: dict = {}  # future -> variant, converting in a worker
        while todo or running:
            for future in [f for f in running if f.done()]:
                future.result()  # a worker's error is raised here, as the serial one would be
                name, started = running.pop(future)
                _converted(name, paths[name], time.perf_counter() - started, "in a worker")
            if not todo:
                if running:
                    futures.wait(running, return_when=futures.FIRST_COMPLETED)
                continue
            free = pool.free(len(running))  # a worker takes the last variant, this the first
            name = todo.pop() if free else todo.popleft()
            path, saved = out / f"{name}.tflite", exports[id(sources[name])]
            paths[name] = path
            started = time.perf_counter()
            if saved is not None and free:
                future = pool.submit(_convert_file, saved.folder, name, representative, path)
                running[future] = name, started
            else:
                converter = _converter(sources[name], VARIANTS[name], representative, saved)
                path.write_bytes(converter.convert())
                _converted(name, path, time.perf_counter() - started)
    return {KERAS: paths[KERAS], **{n: paths[n] for n in names}}


def _converted(name: str, path: Path, seconds: float, where: str = "") -> None:
    """Say that variant ``name`` is written to ``path`` (in ``seconds``, its size, and where:
    ``in a worker``): a conversion can take seconds to minutes, and a user sees each one end."""
    size = path.stat().st_size / 1024
    log.info(
        "converted %s in %s%s: %.1f KB", name, duration(seconds), f" {where}" * bool(where), size
    )


_WORKER_EXPORTS: dict[str, _SavedModel] = {}  # a worker process's loaded exports, by folder


def _convert_file(folder: Path, name: str, representative: np.ndarray, path: Path) -> None:
    """In a worker process: convert variant ``name`` of the export in ``folder`` to ``path``
    (the Keras model itself is not needed: only its export is converted)."""
    saved = _WORKER_EXPORTS.setdefault(str(folder), _SavedModel(Path(folder)))
    Path(path).write_bytes(_converter(None, VARIANTS[name], representative, saved).convert())


def _warm_up() -> None:
    """A worker's first task: import what converting needs."""
    import tensorflow  # noqa: F401


class _Workers:
    """``with _Workers(n) as pool``: n worker processes (spawned: a fork of a process running
    TensorFlow is not safe) that start importing TensorFlow at once; ``free(busy)`` says
    whether one is ready and idle. On leaving, however it is left (an error, Ctrl-C, SIGTERM),
    pending work is cancelled and the processes are ended, so none outlives the step or runs
    beside the timing that follows."""

    def __init__(self, n: int):
        self.n = n
        self._pool = None
        self._ready: list = []

    def __enter__(self) -> _Workers:
        if self.n > 0:
            import multiprocessing

            self._pool = futures.ProcessPoolExecutor(
                self.n, mp_context=multiprocessing.get_context("spawn")
            )
            self._ready = [self._pool.submit(_warm_up) for _ in range(self.n)]
        return self

    def wait_ready(self) -> None:
        futures.wait(self._ready)
        for f in self._ready:
            f.result()  # a worker that cannot start says why here

    def free(self, busy: int) -> bool:
        return self._pool is not None and busy < self.n and all(f.done() for f in self._ready)

    def submit(self, fn, *args):
        return self._pool.submit(fn, *args)

    def __exit__(self, *exc) -> None:
        if self._pool is None:
            return
        if exc[0] is not None:  # a worker still importing, or converting: ended now
            for p in list((self._pool._processes or {}).values()):
                p.terminate()
        # the pool's own thread reaps the processes (reaping them here too raced with it: a
        # process reaped by the other thread still read as alive here)
        self._pool.shutdown(wait=True, cancel_futures=True)


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
