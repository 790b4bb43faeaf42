"""Issue #28's round trip: a tf_keras model trained outside pruneflow, given to it as a file.

This script trains a small CNN on scikit-learn's digits with its own code (no pruneflow), saves
it as ``.keras``, evaluates it itself on the validation images pruneflow uses (the same split,
rebuilt here: digits scaled to 0..255, resized to 28x28 bilinear, a stratified 30% with seed 42),
then runs ``pruneflow backbone=file backbone.path=... train.epochs=0`` and checks that the
baseline's predictions (``predictions.csv``) equal its own, image for image.

    python bench/own_model.py [EPOCHS]            # the round trip; bench/results/own_model.json
    python bench/own_model.py --save my_model.keras   # only train and save the model
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf_keras: the Keras that tfmot takes
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SIZE, SEED, VAL_FRACTION = 28, 42, 0.3
RESULTS = Path(__file__).parent / "results" / "own_model.json"


def digits():
    """(x_train, y_train, x_val, y_val): uint8 28x28x1 images, as pruneflow's digits are."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    small = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    big = [Image.fromarray(im).resize((SIZE, SIZE), Image.BILINEAR) for im in small]
    images = np.stack([np.asarray(im) for im in big])[..., None]
    labels = d.target.astype(np.int64)
    return train_test_split(
        images, labels, test_size=VAL_FRACTION, stratify=labels, random_state=SEED
    )


def train(path: str, epochs: int) -> None:
    """A small CNN fed 0..1 pixels (x / 255), trained and saved to ``path``."""
    import tf_keras as keras

    x_train, x_val, y_train, y_val = digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),  # logits
        ]
    )
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    )
    model.fit(x_train / 255.0, y_train, epochs=epochs, batch_size=32, verbose=0)
    model.save(path)


def own_predictions(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, the model's predictions) on the validation images, by this script's code."""
    import tf_keras as keras

    _, x_val, _, y_val = digits()
    model = keras.models.load_model(path)
    return y_val, np.argmax(model.predict(x_val / 255.0, verbose=0), axis=1)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--save"]:
        train(argv[1], epochs=5)
        print(f"saved {argv[1]}")
        return 0
    epochs = int(argv[0]) if argv else 5
    work = Path(tempfile.mkdtemp(prefix="own_model-"))
    path = str(work / "digits_cnn.keras")
    t0 = time.perf_counter()
    train(path, epochs)
    labels, mine = own_predictions(path)
    trained_s = time.perf_counter() - t0
    command = [
        str(Path(sys.executable).parent / "pruneflow"),
        "backbone=file",
        f"backbone.path={path}",
        "train.epochs=0",
        "+debug=tiny",
        f"paths.cache_dir={work / 'cache'}",
        f"tracking.dir={work / 'mlruns'}",
        f"hydra.run.dir={work / 'run'}",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=work, capture_output=True, text=True)
    pruneflow_s = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        return 1
    with open(work / "run" / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    theirs = np.array([int(r["baseline"]) for r in rows])
    their_labels = np.array([int(r["label"]) for r in rows])
    variants = [k for k in rows[0] if k not in ("index", "label")]
    accuracy = {v: float(np.mean([int(r[v]) == int(r["label"]) for r in rows])) for v in variants}
    result = {
        "epochs": epochs,
        "images": int(len(labels)),
        "same_labels": bool(np.array_equal(labels, their_labels)),
        "own_accuracy": float(np.mean(mine == labels)),
        "pruneflow_baseline_accuracy": accuracy["baseline"],
        "predictions_differing": int(np.sum(mine != theirs)),
        "accuracy_by_variant": accuracy,
        "train_and_own_eval_s": round(trained_s, 1),
        "pruneflow_s": round(pruneflow_s, 1),
        "command": " ".join(["pruneflow", *command[1:4], "+debug=tiny"]),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    same = result["same_labels"] and result["predictions_differing"] == 0
    print("image for image: " + ("EQUAL" if same else "DIFFERENT"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
