"""Data stage: load a dataset into uint8 image arrays with a train/validation split.

Images stay uint8 in [0, 255] (NHWC); every model carries its own preprocessing layers, so the
.tflite files take raw pixels and the device runner needs nothing but an image decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ImageDataset:
    """A classification dataset held in memory as uint8 NHWC arrays."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: list[str]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_digits(image_size: int = 28, val_fraction: float = 0.3, seed: int = 0) -> ImageDataset:
    """scikit-learn's 1797 real 8x8 handwritten digits, upsampled to ``image_size`` (offline).

    The split is stratified by class and fixed by ``seed``. Writes nothing.
    """
    from PIL import Image
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"dataset.val_fraction={val_fraction}: valid values are in (0, 1)")
    if image_size < 8:
        raise ValueError(f"dataset.image_size={image_size}: valid values are integers >= 8")
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
    return ImageDataset(
        name="digits",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        class_names=[str(i) for i in range(10)],
    )
