"""The steps of one job, in the order :mod:`pruneflow.pipeline` runs them.

Each step is a folder with its schema beside its code: ``config.py`` (a light dataclass, the
one place its defaults and checks are written), the implementation, which receives that
config object and returns a small typed result, and ``record.py``, which turns that result
into what the run logs, in the names of :mod:`pruneflow.results` (the evaluate step, one
module, has its record in it):

- :mod:`.data`: the dataset (``dataset`` group): loaders for digits, tfds, your own folder;
- :mod:`.model`: the backbone (``backbone`` group): a small CNN, keras.applications bases;
- :mod:`.train`: the baseline, trained once and cached (``train`` section);
- :mod:`.prune`: magnitude pruning and fine-tuning (``prune`` group), its distributions;
- :mod:`.quantize`: prune-preserving quantization-aware training (for ``tflite_int8_qat``);
- :mod:`.convert`: the TFLite variants (``stage`` group) and their registry;
- :mod:`.evaluate`: accuracy on the whole validation split;
- :mod:`.benchmark`: images on disk, timed on the device (``benchmark`` section).
"""


def import_libraries() -> None:
    """Import what every job's steps use: TensorFlow (through tf_keras, ~3 s) and tfmot. For
    a caller that can pay for them while it waits on another process (a new store's schema:
    :func:`pruneflow.tracking.runs.prepare_store`)."""
    import tensorflow_model_optimization  # noqa: F401
    import tf_keras  # noqa: F401
