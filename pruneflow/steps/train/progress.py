"""The Keras callback behind every fit's per-epoch line (:func:`pruneflow.progress.epoch_line`).

Apart from :mod:`.train` so that it is not one of the sources whose edit invalidates the
baseline cache: it only reports, it changes nothing a fit computes.
"""

from __future__ import annotations

import logging
import time

import tf_keras as keras

from pruneflow.progress import epoch_line

log = logging.getLogger(__name__)


class EpochProgress(keras.callbacks.Callback):
    """Logs one line per epoch: ``label``, ``epoch n/N``, the training loss and the validation
    accuracy Keras has just computed (the history's own values: no extra evaluation), the
    time since the fit began and an estimate of what is left."""

    def __init__(self, label: str, epochs: int):
        super().__init__()
        self.label, self.epochs = label, epochs
        self._started = time.perf_counter()

    def on_train_begin(self, logs=None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        log.info(
            epoch_line(
                self.label,
                epoch + 1,
                self.epochs,
                _number(logs.get("loss")),
                _number(logs.get("val_accuracy")),
                time.perf_counter() - self._started,
            )
        )


def _number(value) -> float | None:
    return None if value is None else float(value)
