"""Issue #28: your own .tflite through `backbone=tflite`, against LiteRT's own evaluation.

A small tf_keras CNN is trained here, outside pruneflow, on the digits training images (the
split `dataset=digits` makes), and converted by TFLite's converter to float32 and full int8
(int8 input and output). Each file goes through the console script as a user would give it,
`pruneflow backbone=tflite backbone.path=FILE`, into a fresh MLflow store; its accuracy and
its per-image predictions (the run's eval/predictions.csv) are compared with what
tf.lite.Interpreter predicts here on the same validation images, the int8 input quantized with
the scale and zero point read from the file. Prints one row per file and one JSON line.

    python bench/own_tflite.py [EPOCHS]
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import csv  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from pruneflow.steps.data.config import DigitsConfig  # noqa: E402
from pruneflow.steps.data.loaders import load_digits  # noqa: E402

EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def train(data):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(data.image_shape)
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for f in (16, 32):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(data.num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.train.batch(32), epochs=EPOCHS, verbose=0)
    return model


def convert(model, int8: bool, representative: np.ndarray) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x[None].astype(np.float32)] for x in representative)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


def litert_predictions(path: Path, x: np.ndarray) -> np.ndarray:
    """Each image's class by tf.lite.Interpreter, one image at a time."""
    interp = tf.lite.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    preds = []
    for image in x:
        pixels = image[None].astype(np.float32)
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            pixels = np.clip(np.round(pixels / scale + zero), -128, 127)
        interp.set_tensor(inp["index"], pixels.astype(inp["dtype"]))
        interp.invoke()
        preds.append(int(np.argmax(interp.get_tensor(out["index"])[0])))
    return np.array(preds)


def through_pruneflow(path: Path, tmp: Path) -> tuple[dict, np.ndarray, float]:
    """(the run's metrics, its predictions, wall seconds) of `pruneflow backbone=tflite`."""
    from mlflow.tracking import MlflowClient

    store = tmp / "mlruns"
    script = Path(sys.executable).parent / "pruneflow"
    args = [
        str(script if script.exists() else shutil.which("pruneflow")),
        "backbone=tflite",
        f"backbone.path={path}",
        f"tracking.dir={store}",
        f"paths.cache_dir={tmp / 'cache'}",
        f"hydra.run.dir={tmp / 'out'}",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    exp = client.get_experiment_by_name("pruneflow")
    (run,) = client.search_runs([exp.experiment_id])
    with open(tmp / "out" / "predictions.csv") as fh:
        preds = np.array([int(r["tflite_file"]) for r in csv.DictReader(fh)])
    return run.data.metrics, preds, seconds


def main() -> None:
    data = load_digits(DigitsConfig(seed=42))  # the images `dataset=digits` gives the job
    model = train(data)
    keras_acc = float(np.mean(np.argmax(model.predict(data.x_val, verbose=0), -1) == data.y_val))
    rows = {}
    with tempfile.TemporaryDirectory(prefix="own_tflite-") as tmp:
        for name, int8 in (("fp32", False), ("int8", True)):
            work = Path(tmp) / name
            work.mkdir()
            path = work / f"digits_{name}.tflite"
            path.write_bytes(convert(model, int8, data.train_sample(100, seed=0)))
            mine = litert_predictions(path, data.x_val)
            metrics, theirs, seconds = through_pruneflow(path, work)
            rows[name] = {
                "litert_accuracy": float(np.mean(mine == data.y_val)),
                "pruneflow_accuracy": metrics["tflite_file/accuracy"],
                "images_that_differ": int(np.sum(mine != theirs)),
                "val_images": len(data.y_val),
                "p50_ms": metrics["tflite_file/latency_p50_ms"],
                "size_bytes": int(metrics["tflite_file/size_bytes"]),
                "run_s": round(seconds, 1),
            }
    print(f"keras (trained here, {EPOCHS} epochs): accuracy {keras_acc:.4f}")
    print(f"{'file':<6}{'LiteRT acc':>12}{'pruneflow acc':>15}{'differ':>8}{'p50 ms':>9}")
    for name, r in rows.items():
        print(
            f"{name:<6}{r['litert_accuracy']:>12.4f}{r['pruneflow_accuracy']:>15.4f}"
            f"{r['images_that_differ']:>8}{r['p50_ms']:>9.3f}"
        )
    print(json.dumps({"keras_accuracy": keras_acc, **rows}))


if __name__ == "__main__":
    main()
