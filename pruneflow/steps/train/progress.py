"""The Keras callback behind every fit's per-epoch line (:func:`pruneflow.progress.epoch_line`).

Apart from :mod:`.train` so that it is not one of the sources whose edit invalidates the
baseline cache: it only reports, it changes nothing a fit computes.
"""

from __future__ import annotations

import logging
import sys
import time

import tf_keras as keras

from pruneflow import progress

log = logging.getLogger(__name__)


def epoch_progress(label: str, epochs: int) -> EpochProgress:
    """The callback a fit reports with: plain lines, and a live bar within each epoch when the
    command line says the console is a terminal this job has to itself (``progress.live``)."""
    if progress.live:
        return LiveEpochProgress(label, epochs, sys.stdout)
    return EpochProgress(label, epochs)


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
            progress.epoch_line(
                self.label,
                epoch + 1,
                self.epochs,
                _number(logs.get("loss")),
                _number(logs.get("val_accuracy")),
                time.perf_counter() - self._started,
            )
        )


class LiveEpochProgress(EpochProgress):
    """:class:`EpochProgress` that also redraws one line on ``stream`` (a terminal) within each
    epoch, ``train epoch 2/5: batch 37/120`` then ``train epoch 2/5: validating``, at most
    every :data:`progress.REDRAW_S`; the line is cleared before each epoch's logged line. Its
    batch hook reads no metric (Keras then copies none per batch)."""

    _supports_tf_logs = True

    def __init__(self, label: str, epochs: int, stream):
        super().__init__(label, epochs)
        self.stream, self._epoch, self._drawn = stream, 1, 0.0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if time.perf_counter() - self._drawn >= progress.REDRAW_S:
            self._draw(f"batch {batch + 1}/{self.params.get('steps') or '?'}")

    def on_test_begin(self, logs=None) -> None:  # the epoch's validation
        self._draw("validating")

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self._clear()
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None) -> None:
        self._clear()

    def _draw(self, what: str) -> None:
        name = progress.epoch_name(self.label, self._epoch, self.epochs)
        self.stream.write(f"\r{name}: {what}\033[K")
        self.stream.flush()
        self._drawn = time.perf_counter()

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = 0.0


def _number(value) -> float | None:
    return None if value is None else float(value)
