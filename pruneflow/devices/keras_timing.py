"""A saved Keras model timed by the device runner's protocol (:func:`runner.timed_passes`, the
runner's own image decoder): shipped beside the runner and loaded by it only for a Keras model,
so that TensorFlow is imported here alone (on a device that has it, or in pruneflow's process)."""

from __future__ import annotations

import os
import time


def time_keras(runner, model_path: str, images: list, warmup: int, repeats: int) -> dict:
    """Run the protocol of ``runner`` (the runner module that loaded this file) for the Keras
    model at ``model_path``."""
    import numpy as np
    import tensorflow as tf

    try:  # pruneflow saves Keras 2 models (tf_keras); TensorFlow <= 2.15 is Keras 2 itself
        import tf_keras as keras
    except ImportError:
        from tensorflow import keras

    t0 = time.perf_counter()
    model = keras.models.load_model(model_path)
    # A traced function costs ~0.6 ms a call against ~32 ms for predict; its tracing falls
    # in the first image, which is reported apart.
    infer = tf.function(lambda x: model(x, training=False))
    load_ms = (time.perf_counter() - t0) * 1e3

    def decode(path, height, width, channels):
        return tf.constant(runner.load_image(path, height, width, channels).astype(np.float32))

    def predict(x):
        return infer(x).numpy()

    shape = tuple(model.input_shape)
    timed = runner.timed_passes(images, shape, decode, predict, warmup, repeats)
    return {
        "model": os.path.basename(model_path),
        "kernels": "tensorflow",
        "note": "",
        "load_ms": load_ms,
        "threads": None,
        "threads_used": None,
        **timed,
        "tensorflow": tf.__version__,
    }
