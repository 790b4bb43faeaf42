"""Evaluate stage: accuracy of the Keras model and of every TFLite variant on a whole split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pruneflow.devices.runner import make_interpreter, to_input


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
