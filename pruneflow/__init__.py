"""pruneflow: declarative experiments that prune, quantize and time image classifiers.

Public surface: :func:`run` (the whole pipeline for one composed config) and ``__version__``.
"""

import os

# tfmot works only with Keras 2 (tf_keras). The variable must be set before TensorFlow is first
# imported: importing tfmot sets it too, so import order would decide which Keras `tf.keras` is.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ INFO lines drown the run's own output; users can still lower this.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


def run(cfg):  # noqa: D401 - thin re-export, keeps `import pruneflow` free of TensorFlow
    """Run the whole pipeline for one composed config; see :func:`pruneflow.pipeline.run`."""
    from pruneflow.pipeline import run as _run

    return _run(cfg)


__all__ = ["__version__", "run"]
