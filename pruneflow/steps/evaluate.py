"""Evaluate stage: accuracy of the Keras model and of every TFLite variant on a whole split,
and what it adds to a run (:func:`for_accuracy`, which writes ``eval/predictions.csv``)."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from pruneflow.devices.runner import make_interpreter, to_input
from pruneflow.results import (
    ACCURACY,
    ACCURACY_CI_HIGH,
    ACCURACY_CI_LOW,
    BASELINE,
    BASELINE_CI_HIGH,
    BASELINE_CI_LOW,
    EVAL_DIR,
    PREDICTIONS_FILE,
    VAL_IMAGES,
    VS_BASELINE,
    Record,
    metric,
)
from pruneflow.stats import paired_comparison, wilson_interval


def tflite_predict(
    model_path: str | Path, x: np.ndarray, batch_size: int = 64, delegate: dict | None = None
) -> np.ndarray:
    """Predicted class of every image of ``x`` (uint8 NHWC) with the LiteRT interpreter."""
    interp, _, _ = make_interpreter(str(model_path), delegate or {"name": "xnnpack"})
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    preds, current = [], None
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        if len(batch) != current:
            interp.resize_tensor_input(inp["index"], [len(batch), *x.shape[1:]])
            interp.allocate_tensors()
            current = len(batch)
        interp.set_tensor(inp["index"], to_input(batch, inp))
        interp.invoke()
        preds.append(np.argmax(interp.get_tensor(out["index"]), axis=-1))
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def tflite_accuracy(model_path: str | Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a .tflite model on every image of ``x``."""
    return float(np.mean(tflite_predict(model_path, x) == y))


def keras_predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted class of every image of ``x`` with a Keras model."""
    return np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=-1)


def keras_accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of a Keras model on every image of ``x``."""
    return float(np.mean(keras_predict(model, x, batch_size) == y))


def predict(models: dict[str, object], x: np.ndarray) -> dict[str, np.ndarray]:
    """{name: predicted class of every image of ``x``} for Keras models (objects) and .tflite
    files (paths): the same images for all, so that they can be compared image by image."""
    return {
        name: tflite_predict(m, x) if isinstance(m, (str, Path)) else keras_predict(m, x)
        for name, m in models.items()
    }


def evaluate(models: dict[str, object], x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """{variant: accuracy} for a Keras model (an object) and .tflite files (paths)."""
    return {name: float(np.mean(p == y)) for name, p in predict(models, x).items()}


def for_accuracy(predictions: Mapping[str, np.ndarray], labels, out_dir: Path) -> Record:
    """``{name: predicted classes}`` of the baseline model (:data:`~pruneflow.results.BASELINE`)
    and of every variant on the same validation images (:func:`predict`): each variant's
    accuracy and its Wilson interval, its paired comparison with the baseline, the baseline's
    interval, ``val/images``, and every prediction in ``out_dir/predictions.csv``."""
    y = np.asarray(labels)
    correct = {name: np.asarray(p) == y for name, p in predictions.items()}
    rec = Record(metrics={VAL_IMAGES: float(len(y))})
    base = correct.get(BASELINE)
    if base is not None:
        rec.metrics[BASELINE_CI_LOW], rec.metrics[BASELINE_CI_HIGH] = wilson_interval(
            int(base.sum()), len(y)
        )
    for name, ok in correct.items():
        if name == BASELINE:
            continue
        rec.metrics[metric(name, ACCURACY)] = float(ok.mean()) if len(ok) else float("nan")
        low, high = wilson_interval(int(ok.sum()), len(ok))
        rec.metrics[metric(name, ACCURACY_CI_LOW)] = low
        rec.metrics[metric(name, ACCURACY_CI_HIGH)] = high
        if base is not None:
            paired = paired_comparison(ok, base)
            for key, measure in VS_BASELINE.items():
                rec.metrics[metric(name, measure)] = float(paired[key])
    rec.artifacts.append((write_predictions(predictions, y, out_dir), EVAL_DIR))
    return rec


def write_predictions(predictions: Mapping[str, np.ndarray], labels, out_dir: Path) -> Path:
    """``out_dir/predictions.csv``: one row per image, its ``index`` and ``label``, then each
    model's predicted class in the order of ``predictions`` (the job puts the baseline's
    first)."""
    path = Path(out_dir) / PREDICTIONS_FILE
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "label", *predictions])
        for i, label in enumerate(labels):
            writer.writerow([i, int(label), *(int(p[i]) for p in predictions.values())])
    return path
