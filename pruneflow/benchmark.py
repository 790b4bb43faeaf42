"""Benchmark stage: benchmark images on disk, the device runner for the .tflite variants,
timed Keras inference.

The TFLite variants are timed by the device runner (:mod:`pruneflow.device`); the Keras model,
which needs TensorFlow, is timed here in-process with the same per-image protocol and the same
image decoder.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pruneflow.convert import KERAS
from pruneflow.device_runner import load_image, read_images
from pruneflow.errors import require
from pruneflow.stats import MIN_TIMES


def check_images(images: int) -> None:
    require(
        images >= MIN_TIMES,
        "images",
        images,
        f"integers >= {MIN_TIMES} (the first image is reported apart; a deviation needs two more)",
    )


@dataclass
class Timing:
    """Per-image timings of every variant, and where they were measured."""

    results: dict[str, dict]  # {variant: the runner's result (times_ms, kernels, note ...)}
    device: dict[str, str]  # the device's facts as the runner saw them
    steps: dict[str, float]  # the device's step timings (connect_s, run_s, lock_wait_s ...)
    runner_json: Path  # the runner's raw result
    latency_csv: Path  # one row per variant and image
    window: tuple[float, float]  # when the timing held its lock(s), seconds since the epoch


def run_benchmark(
    keras_model: Path,
    tflite_models: Mapping[str, Path],
    images_dir: Path,
    device: Mapping,
    delegate: Mapping,
    out_dir: Path,
) -> Timing:
    """Time the .tflite models on ``device`` (the ``device`` options: kind, name, ...) with
    ``delegate``, and the Keras model here. Writes ``runner.json`` and ``latency.csv`` into
    ``out_dir``.

    Timing is exclusive: this machine's timing lock is held while the Keras model is timed
    here and, for ``device=local``, while the runner times; an SSH device holds its own lock
    while its runner times (:mod:`pruneflow.device`).
    """
    from pruneflow.device import open_device, timing_lock

    out_dir = Path(out_dir)
    runner_json = out_dir / "runner.json"
    models = list(tflite_models.values())
    with open_device(**device) as dev:
        if device["kind"] == "local":  # the device is this machine: one turn for both
            with timing_lock() as lock:
                doc = dev.benchmark(models, images_dir, runner_json, dict(delegate))
                keras = time_keras(keras_model, images_dir)
            start = lock.start
        else:
            start = time.time()
            doc = dev.benchmark(models, images_dir, runner_json, dict(delegate))
    if device["kind"] != "local":
        with timing_lock() as lock:  # the Keras model is timed on this machine
            keras = time_keras(keras_model, images_dir)
    steps = {**dev.timings, "lock_wait_s": dev.timings.get("lock_wait_s", 0.0) + lock.wait_s}
    results = {KERAS: keras, **doc["results"]}
    csv_path = write_latency_csv(results, doc["images"], out_dir / "latency.csv")
    return Timing(results, doc["device"], steps, runner_json, csv_path, (start, lock.end))


def write_images(
    x: np.ndarray, y: np.ndarray, class_names: list[str], n: int, out_dir: str | Path, seed: int = 0
) -> Path:
    """Save ``n`` images drawn from ``x`` (seeded) as ``out_dir/<class>/<i>.png``.

    Also writes ``manifest.json`` fixing their order and labels. Returns ``out_dir``.
    """
    from PIL import Image

    out = Path(out_dir)
    idx = np.random.default_rng(seed).permutation(len(x))[: min(n, len(x))]
    entries = []
    for i, j in enumerate(idx):
        label = int(y[j])
        rel = Path(class_names[label]) / f"{i:05d}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        img = x[j][..., 0] if x.shape[-1] == 1 else x[j]
        Image.fromarray(img).save(out / rel)
        entries.append([str(rel), label])
    (out / "manifest.json").write_text(json.dumps({"classes": class_names, "images": entries}))
    return out


def time_keras(model_path: str | Path, images_dir: str | Path) -> dict:
    """Per-image timing of a saved Keras model, in the device runner's result format."""
    import tensorflow as tf

    from pruneflow.train import load_model

    _, images = read_images(str(images_dir))
    t0 = time.perf_counter()
    model = load_model(model_path)
    # A traced function costs ~0.6 ms a call against ~32 ms for predict (shared/STACK.md); its
    # tracing falls in the first image, which is reported apart.
    infer = tf.function(lambda x: model(x, training=False))
    load_ms = (time.perf_counter() - t0) * 1e3
    _, height, width, channels = model.input_shape
    times, preds = [], []
    for path, _ in images:
        start = time.perf_counter()
        x = load_image(path, height, width, channels).astype(np.float32)
        pred = int(np.argmax(infer(tf.constant(x)).numpy()[0]))
        times.append((time.perf_counter() - start) * 1e3)
        preds.append(pred)
    return {
        "model": Path(model_path).name,
        "kernels": "tensorflow",
        "note": "",
        "load_ms": load_ms,
        "times_ms": times,
        "predictions": preds,
        "labels": [lbl for _, lbl in images],
    }


def write_latency_csv(results: dict[str, dict], images: list[str], path: str | Path) -> Path:
    """One row per (variant, image): the per-image table behind every latency statistic."""
    path = Path(path)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["variant", "index", "image", "label", "prediction", "latency_ms", "first"])
        for variant, r in results.items():
            for i, (t, p, lbl) in enumerate(
                zip(r["times_ms"], r["predictions"], r["labels"], strict=True)
            ):
                w.writerow([variant, i, images[i], lbl, p, f"{t:.6f}", int(i == 0)])
    return path
