"""Train stage: fit the baseline model once and cache it on disk by a hash of its inputs.

A sweep over sparsities shares one baseline: the cache key covers everything that determines it
(:func:`pruneflow.identity.baseline_spec`: dataset and backbone options, training settings, seed,
the data, the files they name, and the code that builds and trains it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pruneflow.errors import PruneflowError, require
from pruneflow.files import locked, written_whole
from pruneflow.identity import baseline_key, file_digest
from pruneflow.steps.data.loaders import ImageDataset
from pruneflow.steps.evaluate import keras_accuracy
from pruneflow.steps.model.build import BASE_LAYER
from pruneflow.steps.train.config import TrainConfig

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
META_FILE = "meta.json"


@dataclass
class Baseline:
    """A trained baseline: where its model lives and how it was obtained."""

    model_path: Path
    key: str
    accuracy: float
    history: dict[str, list[float]] = field(default_factory=dict)
    cache_hit: bool = False
    source: str = "trained"  # cache (this machine's) | store (the tracking store) | trained


def fit(
    model,
    data: ImageDataset,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    callbacks=(),
    seed: int = 0,
    label: str = "train",
) -> dict[str, list[float]]:
    """Compile ``model`` and fit it on the training split, validating on the whole validation
    split after every epoch. Returns the Keras history (loss, accuracy, val_loss, val_accuracy).

    Every epoch logs one line named ``label`` (what this fit is: ``train``, ``fine-tune``,
    ``cluster``, ``qat``; :func:`~pruneflow.steps.train.progress.epoch_progress`).
    """
    import tf_keras as keras

    from pruneflow.steps.train.progress import epoch_progress

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    if epochs <= 0:
        return {}
    hist = model.fit(
        data.train_batches(batch_size, seed),
        validation_data=(data.x_val, data.y_val),
        validation_batch_size=max(batch_size, 256),
        epochs=epochs,
        verbose=0,
        callbacks=[*callbacks, epoch_progress(label, epochs)],
    )
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def _set_base_trainable(model, trainable: bool) -> None:
    names = [layer.name for layer in model.layers]
    require(
        BASE_LAYER in names,
        "frozen_epochs",
        "> 0",
        f"0 for {model.name}: freezing needs a pretrained base layer named {BASE_LAYER!r}",
    )
    model.get_layer(BASE_LAYER).trainable = trainable


class TrainingDiverged(PruneflowError):
    """The baseline's loss became inf or NaN: nothing is cached; the message names the rate."""


def diverged(history: dict[str, list[float]]) -> str | None:
    """``loss nan in epoch 2``: the first loss (training or validation) in ``history`` that is
    not finite; None when every one is. A model trained to NaN predicts one class: it is no
    baseline, and caching it would hand it to every later job of its key."""
    for key in ("loss", "val_loss"):
        for epoch, value in enumerate(history.get(key, []), 1):
            if not math.isfinite(value):
                return f"{key} {value} in epoch {epoch}"
    return None


class CorruptEntry(Exception):
    """A cache entry whose files are not whole (it has been removed); the message says why."""


def read_entry(entry: Path) -> dict | None:
    """The metadata of cache entry ``entry`` if its model file is whole (its sha256 matches the
    one written beside it); None if there is no entry. A corrupt entry (truncated, edited, from
    a version without checksums, a model trained to a loss of NaN) is removed and raises
    :class:`CorruptEntry` saying why: what happens next is the caller's to say."""
    meta_path, model_path = entry / META_FILE, entry / MODEL_FILE
    if not meta_path.exists() and not model_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if not model_path.exists():
            why = f"{MODEL_FILE} is missing"
        elif meta.get("sha256") != file_digest(model_path):
            why = f"{MODEL_FILE} does not match the sha256 in {META_FILE}"
        elif diverged(meta.get("history", {})):
            why = f"its training diverged ({diverged(meta['history'])})"
        else:
            return meta
    except (OSError, ValueError, TypeError) as exc:
        why = f"{META_FILE} cannot be read: {exc}"
    shutil.rmtree(entry, ignore_errors=True)
    raise CorruptEntry(why)


def train_baseline(
    data: ImageDataset,
    build_model: Callable[[], object],
    config: TrainConfig,
    *,
    seed: int,
    cache_dir: str | os.PathLike,
    key_spec: dict,
    store=None,
    train: bool = True,
) -> Baseline | None:
    """Return the baseline for ``key_spec``, training it only when no cache has it
    (``train=False``: None then).

    Looks in the local cache (``<cache_dir>/baselines/<key>/{model.keras,meta.json}``, its
    model checked against the sha256 in its metadata), then in ``store`` (a
    :class:`~pruneflow.tracking.baselines.BaselineStore`: baselines trained on other machines), and
    trains only if neither has it; a trained baseline goes into both, and one found in the
    local cache goes into a store that lacks it (a new store, or one emptied). A corrupt copy
    (local or the store's) is removed and said; a store's corrupt run is marked FAILED once the
    retrained baseline is stored in its place. Jobs of this machine that need the same
    baseline at once wait for one trainer (a file lock). Entries are written atomically (a
    crashed run leaves no half-written entry). A training whose loss is not finite raises
    :class:`TrainingDiverged` and caches nothing.

    With ``frozen_epochs``, the backbone's pretrained base is frozen for that many epochs of
    head training, then everything trains for ``epochs`` at ``fine_tune_learning_rate``.
    """
    import tf_keras as keras

    epochs, batch_size, learning_rate = config.epochs, config.batch_size, config.learning_rate
    frozen_epochs = config.frozen_epochs
    key = baseline_key(key_spec)
    entry = Path(cache_dir) / "baselines" / key
    entry.parent.mkdir(parents=True, exist_ok=True)
    with locked(entry.parent / f"{key}.lock"):  # parallel sweep jobs wait for one trainer
        meta, source, corrupt = None, "cache", None  # corrupt: (store run id, why)
        try:
            meta = read_entry(entry)
        except CorruptEntry as exc:
            then = "looking in the tracking store" if store is not None else "training it again"
            log.warning("baseline cache entry %s is corrupt (%s): removed; %s", entry, exc, then)
        if meta is None and store is not None:
            run_id = _fetch(store, key, entry)
            if run_id is not None:
                try:
                    meta, source = read_entry(entry), "store"
                except CorruptEntry as exc:
                    corrupt = (run_id, str(exc))
                    log.warning(
                        "baseline %s restored from the tracking store (run %s) is corrupt (%s): "
                        "removed from the local cache; training it again, to store in its place",
                        key,
                        run_id,
                        exc,
                    )
        if meta is not None:
            log.info(
                "baseline %s (cache hit, %s): val accuracy %.4f", key, source, meta["accuracy"]
            )
            if source == "cache" and store is not None:
                _share(store, key, entry)
            return Baseline(
                entry / MODEL_FILE, key, meta["accuracy"], meta["history"], True, source
            )
        if not train:
            return None

        keras.utils.set_random_seed(seed)
        model = build_model()
        history: dict[str, list[float]] = {}
        if frozen_epochs > 0:  # train the new head on a frozen base first
            _set_base_trainable(model, False)
            history = fit(
                model,
                data,
                epochs=frozen_epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                seed=seed,
                label="train (frozen base)",
            )
            _set_base_trainable(model, True)
        tuned = fit(
            model,
            data,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=config.fine_tune_learning_rate or learning_rate,
            seed=seed + 1,
        )
        history = {k: history.get(k, []) + tuned.get(k, []) for k in {*history, *tuned}}
        bad = diverged(history)
        if bad is not None:
            rates = f"learning_rate={learning_rate:g}"
            if config.fine_tune_learning_rate is not None and frozen_epochs > 0:
                rates += f" (fine_tune_learning_rate={config.fine_tune_learning_rate:g})"
            raise TrainingDiverged(
                f"the baseline's training diverged ({bad}) at train.{rates}: nothing was "
                "cached; try a smaller train.learning_rate"
            )
        accuracy = keras_accuracy(model, data.x_val, data.y_val)

        with written_whole(entry) as tmp:
            model.save(tmp / MODEL_FILE)
            meta = {
                "accuracy": accuracy,
                "history": history,
                "spec": key_spec,
                "sha256": file_digest(tmp / MODEL_FILE),
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        if store is not None:
            try:
                run_id = store.publish(key, entry)
            except Exception as exc:  # noqa: BLE001 - the run goes on with its local copy
                log.warning("baseline %s not stored in the tracking store: %s", key, exc)
            else:
                if corrupt:
                    _replace_corrupt(store, key, *corrupt, run_id)
    log.info("baseline %s (cache miss, trained): val accuracy %.4f", key, accuracy)
    return Baseline(entry / MODEL_FILE, key, accuracy, history, False, "trained")


def _fetch(store, key: str, entry: Path) -> str | None:
    """Copy baseline ``key`` from the tracking store into the local cache; the id of the run
    it came from, None if absent."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=entry.parent))
    try:
        run_id = store.fetch(key, tmp)
        if run_id is not None:
            os.replace(tmp / "baseline", entry)
        return run_id
    except Exception as exc:  # noqa: BLE001 - a store that cannot be read: train instead
        log.warning("baseline %s could not be read from the tracking store: %s", key, exc)
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace_corrupt(store, key: str, corrupt_run: str, why: str, run_id: str) -> None:
    """Mark the store's corrupt run of baseline ``key`` FAILED, now that ``run_id`` holds it."""
    try:
        store.discard(corrupt_run, f"corrupt ({why}): replaced by run {run_id}")
    except Exception as exc:  # noqa: BLE001 - the new run is the newest: fetches read it
        log.warning(
            "baseline %s stored in the tracking store (run %s); the corrupt run %s could not "
            "be marked FAILED: %s",
            key,
            run_id,
            corrupt_run,
            exc,
        )
        return
    log.info(
        "baseline %s stored in the tracking store (run %s) in place of the corrupt run %s, "
        "now marked FAILED",
        key,
        run_id,
        corrupt_run,
    )


def _share(store, key: str, entry: Path) -> None:
    """Put cache entry ``entry`` (checked whole) into a tracking store that lacks baseline
    ``key``: a new store, or one emptied, so that other machines sharing it reuse it."""
    try:
        if store.find(key) is None:
            run_id = store.publish(key, entry)
            log.info(
                "baseline %s was not in the tracking store: stored there from the local cache "
                "(run %s)",
                key,
                run_id,
            )
    except Exception as exc:  # noqa: BLE001 - the run goes on with its local copy
        log.warning("baseline %s not stored in the tracking store: %s", key, exc)


def load_model(path: str | os.PathLike):
    """Load a fresh copy of a saved tf_keras model (pruning wraps layers in place, so every
    pruned variant must start from its own copy)."""
    import tf_keras as keras

    return keras.models.load_model(path)
