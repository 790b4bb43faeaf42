"""The reference for bench/sweep_overhead.py: a plain, hand-written tfmot script doing the work
of `python -m pruneflow -m prune.sparsity=0.25,0.5,0.9` with no framework around it.

Same data (scikit-learn digits at 28x28, stratified 70/30), same CNN, 12 baseline epochs, then
for each sparsity: prune with a polynomial schedule, 3 fine-tuning epochs, strip, convert to the
four TFLite variants, accuracy on the whole validation split, 100 images written to disk and
each variant (and the Keras model) timed image by image. No Hydra, no MLflow, no subprocess.
Prints one JSON line with the seconds spent per stage.

    python bench/plain_tfmot.py [--naive] [SPARSITY ...]

With ``--naive``, the baseline is trained again for every sparsity (what a script without a
baseline cache does), the reference of issue #8's "against a naive script".
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

T0 = time.perf_counter()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

NAIVE = "--naive" in sys.argv
SPARSITIES = [
    float(s) for s in ([a for a in sys.argv[1:] if a != "--naive"] or ["0.25", "0.5", "0.9"])
]
times = {"import": time.perf_counter() - T0}


def tick(stage, t0):
    times[stage] = times.get(stage, 0.0) + time.perf_counter() - t0


t = time.perf_counter()
digits = load_digits()
imgs = np.round(digits.images * (255 / 16)).astype(np.uint8)
imgs = np.stack([np.asarray(Image.fromarray(i).resize((28, 28), Image.BILINEAR)) for i in imgs])
x_tr, x_va, y_tr, y_va = train_test_split(
    imgs[..., None], digits.target, test_size=0.3, stratify=digits.target, random_state=42
)
tick("data", t)


def build():
    inp = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255)(inp)
    for f in (16, 32):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Dropout(0.25)(x)
    return keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x))


def compile_fit(model, epochs, callbacks=()):
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(
        x_tr,
        y_tr,
        validation_data=(x_va, y_va),
        epochs=epochs,
        batch_size=32,
        verbose=0,
        callbacks=list(callbacks),
    )


work = tempfile.mkdtemp()


def train_baseline():
    t = time.perf_counter()
    keras.utils.set_random_seed(42)
    baseline = build()
    compile_fit(baseline, 12)
    baseline.save(f"{work}/baseline.keras")
    tick("train", t)


train_baseline()

t = time.perf_counter()
sel = np.random.default_rng(0).permutation(len(x_va))[:100]
paths = []
for i, j in enumerate(sel):
    os.makedirs(f"{work}/images/{y_va[j]}", exist_ok=True)
    paths.append(f"{work}/images/{y_va[j]}/{i:05d}.png")
    Image.fromarray(x_va[j][..., 0]).save(paths[-1])
tick("benchmark", t)


def convert(model, variant):
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant != "fp32":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        c.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        rep = x_tr[:100].astype(np.float32)
        c.representative_dataset = lambda: ([rep[i : i + 1]] for i in range(len(rep)))
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = c.inference_output_type = tf.int8
    return c.convert()


def quant(x, d):
    if d["dtype"] == np.int8:
        s, z = d["quantization"]
        return np.clip(np.round(x / s + z), -128, 127).astype(np.int8)
    return x.astype(np.float32)


for n, s in enumerate(SPARSITIES):
    if NAIVE and n > 0:
        train_baseline()
    t = time.perf_counter()
    model = keras.models.load_model(f"{work}/baseline.keras")
    steps = 3 * int(np.ceil(len(x_tr) / 32))
    sched = tfmot.sparsity.keras.PolynomialDecay(0.0, s, 0, 10 * ((steps - 1) // 10), frequency=10)

    class Policy(tfmot.sparsity.keras.PruningPolicy):
        def allow_pruning(self, layer):
            return isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))

        def ensure_model_supports_pruning(self, model):
            pass

    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        model, pruning_schedule=sched, pruning_policy=Policy()
    )
    compile_fit(pruned, 3, [tfmot.sparsity.keras.UpdatePruningStep()])
    model = tfmot.sparsity.keras.strip_pruning(pruned)
    tick("prune", t)

    t = time.perf_counter()
    model.save(f"{work}/s{s}.keras")
    blobs = {v: convert(model, v) for v in ("fp32", "dynamic", "float16", "int8")}
    for v, b in blobs.items():
        open(f"{work}/s{s}_{v}.tflite", "wb").write(b)
    tick("convert", t)

    t = time.perf_counter()
    acc = {"keras": float(np.mean(model.predict(x_va, verbose=0).argmax(-1) == y_va))}
    for v, b in blobs.items():
        it = Interpreter(model_content=b)
        d, o = it.get_input_details()[0], it.get_output_details()[0]
        it.resize_tensor_input(d["index"], [len(x_va), 28, 28, 1])
        it.allocate_tensors()
        it.set_tensor(d["index"], quant(x_va, d))
        it.invoke()
        acc[v] = float(np.mean(it.get_tensor(o["index"]).argmax(-1) == y_va))
    tick("evaluate", t)

    t = time.perf_counter()
    lat = {}
    for v in blobs:
        it = Interpreter(model_path=f"{work}/s{s}_{v}.tflite", num_threads=1)
        it.allocate_tensors()
        d, o = it.get_input_details()[0], it.get_output_details()[0]
        ts = []
        for p in paths:
            t1 = time.perf_counter()
            x = np.asarray(Image.open(p).convert("L"), dtype=np.uint8)[None, ..., None]
            it.set_tensor(d["index"], quant(x, d))
            it.invoke()
            int(np.argmax(it.get_tensor(o["index"])[0]))
            ts.append(time.perf_counter() - t1)
        lat[v] = float(np.mean(ts[1:]) * 1e3)
    fn = tf.function(lambda x, m=model: m(x, training=False))
    for p in paths:
        x = np.asarray(Image.open(p).convert("L"), dtype=np.float32)[None, ..., None]
        int(np.argmax(fn(tf.constant(x)).numpy()[0]))
    tick("benchmark", t)

print(json.dumps({"seconds": times, "total": time.perf_counter() - T0}))
