"""Data stage: load a dataset as a tf.data training stream and an in-memory validation split.

Images are uint8 in [0, 255], NHWC, at the dataset option's ``image_size`` and ``channels``;
every model carries its own preprocessing layers, so the .tflite files take raw pixels and the
device runner needs nothing but an image decoder. The training split is a cached,
prefetched tf.data pipeline; the validation split is held as numpy arrays because every stage
uses all of it (accuracy on the whole split, benchmark images).

Options: ``load_digits`` (embedded, offline), ``load_tfds`` (tensorflow-datasets: mnist,
svhn_cropped, horses_or_humans, cats_vs_dogs, tf_flowers, ...), ``load_folder`` (your own
``ROOT/<class>/*.jpg|png``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from pruneflow.errors import PruneflowError, clip
from pruneflow.steps.data import folder
from pruneflow.steps.data.config import DIGIT_CLASSES, DigitsConfig, FolderConfig, TfdsConfig

log = logging.getLogger(__name__)

SHUFFLE_BUFFER = 10_000


class DatasetUnavailable(PruneflowError, RuntimeError):
    """The data cannot be had here (offline, missing folder); the message says what to do."""


@dataclass
class ImageDataset:
    """A classification dataset: a tf.data training stream and an in-memory validation split."""

    name: str
    train: Any  # tf.data.Dataset of (uint8 HWC image, int64 label), unbatched, cached
    train_size: int
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: list[str]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_val.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """A hash of the data as loaded (class names, split sizes, every validation image and
        label), so that a cached baseline is not reused after a dataset's files changed."""
        import hashlib

        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.class_names, self.train_size, self.x_val.shape)).encode())
        h.update(np.ascontiguousarray(self.x_val).data)
        h.update(np.ascontiguousarray(self.y_val).data)
        return h.hexdigest()

    def train_batches(self, batch_size: int, seed: int = 0):
        """The training split shuffled (reshuffled every epoch), batched and prefetched."""
        import tensorflow as tf

        buffer = max(1, min(self.train_size, SHUFFLE_BUFFER))
        return (
            self.train.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

    def train_sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` training images (seeded draw) as a uint8 array, e.g. to calibrate int8."""
        buffer = max(1, min(self.train_size, SHUFFLE_BUFFER))
        ds = self.train.shuffle(buffer, seed=seed, reshuffle_each_iteration=False).take(n)
        return np.stack([img for img, _ in ds.as_numpy_iterator()])


def from_arrays(name, x_train, y_train, x_val, y_val, class_names) -> ImageDataset:
    """An :class:`ImageDataset` from in-memory uint8 NHWC arrays and integer labels."""
    import tensorflow as tf

    train = tf.data.Dataset.from_tensor_slices((x_train, y_train.astype(np.int64)))
    return ImageDataset(name, train, len(x_train), x_val, y_val.astype(np.int64), list(class_names))


def _prepare(image_size: int, channels: int):
    """A tf.data map: any image to uint8 ``image_size`` x ``image_size`` x ``channels``."""
    import tensorflow as tf

    def prep(image, label):
        if image.shape[-1] == 1 and channels == 3:
            image = tf.image.grayscale_to_rgb(image)
        elif image.shape[-1] in (3, 4) and channels == 1:
            image = tf.image.rgb_to_grayscale(image[..., :3])
        elif image.shape[-1] == 4:
            image = image[..., :3]
        image = tf.image.resize(image, (image_size, image_size), antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return image, tf.cast(label, tf.int64)

    return prep


def _materialize(ds, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    if limit is not None:
        ds = ds.take(limit)
    xs, ys = [], []
    for x, y in ds.batch(256).as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DatasetUnavailable("the validation split is empty")
    return np.concatenate(xs), np.concatenate(ys)


def _stream(
    name,
    train,
    val,
    class_names,
    image_size,
    channels,
    *,
    cache: bool,
    train_limit: int | None,
    val_limit: int | None,
    count: bool = False,
) -> ImageDataset:
    """``count``: read the training split once now (filling the cache), so that an unreadable
    file fails here, before any training, rather than in the first epoch."""
    import tensorflow as tf

    prep = _prepare(image_size, channels)
    train = train.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
    if train_limit is not None:
        train = train.take(train_limit)
    if cache:
        train = train.cache()
    size = int(train.cardinality())
    if size < 0 or count:  # unknown (filtered or mocked splits): count once, fills the cache
        size = int(train.reduce(0, lambda n, _: n + 1))
    if size == 0:
        raise DatasetUnavailable(f"dataset {name}: the training split is empty")
    x_val, y_val = _materialize(val.map(prep, num_parallel_calls=tf.data.AUTOTUNE), val_limit)
    return ImageDataset(name, train, size, x_val, y_val, list(class_names))


def load_digits(config: DigitsConfig) -> ImageDataset:
    """scikit-learn's 1797 real 8x8 handwritten digits, upsampled to ``image_size`` (offline).

    The split is stratified by class and fixed by ``seed``. Writes nothing.
    """
    from PIL import Image
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    image_size, val_fraction, seed = config.image_size, config.val_fraction, config.seed
    digits = sk_load_digits()
    # Pixel values are 0..16 in the source; scale to the 0..255 of an ordinary image file.
    small = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    size = (image_size, image_size)
    images = np.stack(
        [np.asarray(Image.fromarray(im).resize(size, Image.BILINEAR)) for im in small]
    )[..., None]
    labels = digits.target.astype(np.int64)
    x_train, x_val, y_train, y_val = train_test_split(
        images, labels, test_size=val_fraction, stratify=labels, random_state=seed
    )
    names = [str(i) for i in range(DIGIT_CLASSES)]
    return from_arrays("digits", x_train, y_train, x_val, y_val, names)


def load_tfds(config: TfdsConfig) -> ImageDataset:
    """A tensorflow-datasets image classification dataset, e.g. ``mnist`` or ``tf_flowers``.

    ``data_dir`` is where tfds keeps prepared datasets (null: ``~/tensorflow_datasets``). When the
    dataset is not prepared there it is downloaded (``download``), with no retries: offline
    this fails within seconds with :class:`DatasetUnavailable`, where a default tfds download
    would retry for minutes. Writes the prepared dataset into ``data_dir`` when downloading.
    """
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import downloader

    c = config
    name, image_size, channels, download = c.name, c.image_size, c.channels, c.download
    data_dir = os.path.expanduser(c.data_dir) if c.data_dir else None
    retries = downloader.MAX_RETRIES
    downloader.MAX_RETRIES = 0
    try:
        (train, val), info = tfds.load(
            name,
            split=[c.train_split, c.val_split],
            as_supervised=True,
            with_info=True,
            data_dir=data_dir,
            download=download,
            shuffle_files=True,
            read_config=tfds.ReadConfig(shuffle_seed=c.seed),
        )
    except Exception as exc:  # noqa: BLE001 - network, missing files, bad split names
        where = data_dir or "~/tensorflow_datasets"
        raise DatasetUnavailable(
            f"dataset {name!r} is not prepared in {where} and could not be "
            f"{'downloaded' if download else 'loaded (dataset.download=false)'}: "
            f"{type(exc).__name__}: {clip(str(exc), 200)}; "
            f"it needs a download. On a machine with internet run `tfds build {name} "
            f"--data_dir DIR` (or any pruneflow run with dataset.data_dir=DIR), copy DIR here "
            f"and set dataset.data_dir=DIR."
        ) from exc
    finally:
        downloader.MAX_RETRIES = retries
    names = info.features["label"].names
    return _stream(
        name,
        train,
        val,
        names,
        image_size,
        channels,
        cache=c.cache,
        train_limit=c.train_limit,
        val_limit=c.val_limit,
    )


def load_folder(config: FolderConfig) -> ImageDataset:
    """Your own images in ``root/<class>/*.{jpg,png,...}``, split by ``val_fraction`` (seeded).

    Class names are the sub-folder names, sorted; a class's images include those in folders
    below it. The folder is walked by :func:`.folder.scan` (the walk the config's check and the
    job key use): links are followed only inside ``root``, each real folder once; a link loop
    or a link out of ``root`` is refused naming it, and every copy of one image file (links,
    hard links) goes into one split. The split is Keras's ``image_dataset_from_directory``
    split for the same seed, and images are decoded and resized as it does. An image that
    cannot be decoded stops the load before any training, naming the file
    (:class:`DatasetUnavailable`). Writes nothing.
    """
    import tensorflow as tf

    root, image_size, channels = config.root, config.image_size, config.channels
    found = folder.scan(root)
    train_images, val_images = found.split(config.val_fraction, config.seed)
    if not train_images or not val_images:
        raise DatasetUnavailable(
            f"dataset {root}: {len(found.images)} images are too few for a training and a "
            f"validation split at val_fraction={config.val_fraction}"
        )
    if found.duplicates():
        log.warning(
            "dataset %s: %d image file(s) found in more than one place (links or hard links): "
            "each file's copies are kept together in one split",
            root,
            found.duplicates(),
        )

    def decode(path):  # what keras.utils.image_dataset_from_directory does to each file
        image = tf.image.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
        image = tf.image.resize(image, (image_size, image_size), method="bilinear")
        image.set_shape((image_size, image_size, channels))
        return image

    def dataset(images):
        paths = tf.data.Dataset.from_tensor_slices([i.path for i in images])
        labels = tf.data.Dataset.from_tensor_slices(np.array([i.label for i in images], np.int32))
        return tf.data.Dataset.zip((paths.map(decode, num_parallel_calls=tf.data.AUTOTUNE), labels))

    train = dataset(train_images).shuffle(1024, seed=config.seed)  # as Keras shuffles it
    try:
        return _stream(
            os.path.basename(os.path.normpath(root)),
            train,
            dataset(val_images),
            found.class_names,
            image_size,
            channels,
            cache=config.cache,
            train_limit=None,
            val_limit=None,
            count=True,
        )
    except tf.errors.InvalidArgumentError as exc:  # TensorFlow's decoders name no file
        bad = undecodable_images(found)
        if not bad:
            raise
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DatasetUnavailable(
            f"dataset {root}: {len(bad)} image file(s) cannot be decoded: {shown}. "
            "Remove or replace them."
        ) from exc


def undecodable_images(found: folder.Folder) -> list[str]:
    """The images of ``found`` that Pillow cannot decode (checked only after TensorFlow
    failed to decode one, so a good folder pays nothing)."""
    from PIL import Image

    bad = []
    for image in found.images:
        try:
            with Image.open(image.path) as img:
                img.load()
        except Exception:  # noqa: BLE001 - any decoder error marks the file
            bad.append(image.path)
    return bad
