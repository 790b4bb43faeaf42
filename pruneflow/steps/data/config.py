"""The ``dataset`` group's schemas: one dataclass per kind of option, checked when built.

Light (no TensorFlow): :mod:`pruneflow.config` composes these before any work. The loader an
option names (``_target_``, in :mod:`.loaders`) receives the option itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from omegaconf import MISSING, SI

from pruneflow.errors import ArgumentError, require
from pruneflow.steps.data import folder
from pruneflow.steps.train.config import check_seed

TFDS_DATA_DIR = "~/tensorflow_datasets"  # where tfds keeps prepared datasets by default
DIGIT_CLASSES = 10  # scikit-learn's digits: 0..9


def check_image(image_size: int, channels: int | None, minimum: int = 1) -> None:
    require(
        isinstance(image_size, int) and image_size >= minimum,
        "image_size",
        image_size,
        f"integers >= {minimum}",
    )
    if channels is not None:
        require(channels in (1, 3), "channels", channels, "1 (grayscale) or 3 (RGB)")


def check_fraction(val_fraction: float) -> None:
    require(0.0 < val_fraction < 1.0, "val_fraction", val_fraction, "floats in (0, 1)")


def check_limit(name: str, limit: int | None) -> None:
    require(limit is None or limit >= 1, name, limit, "null (the whole split) or integers >= 1")


def check_folder(root: str | None) -> None:
    """A folder dataset needs an existing root with at least two classes of images."""
    require(bool(root), "root", root, "a folder of <class>/<image> files", required=True)
    path = os.path.expanduser(root)
    if not os.path.isdir(path):
        why = "it is a file, not a folder" if os.path.exists(path) else "it does not exist"
        require(False, "root", root, f"an existing folder of <class>/<image> files ({why})")
    classes = folder.scan(root).counts()  # refuses a link loop, a link out of the root
    found = {c: n for c, n in classes.items() if n}
    if len(found) < 2:
        raise ArgumentError(
            "root",
            root,
            "a folder with at least two class sub-folders of images (a classifier needs two "
            f"classes); found {len(found)}: {found or classes or 'no sub-folders'}",
        )


@dataclass
class DatasetConfig:
    _target_: str = MISSING  # the loader: a function of this option returning an ImageDataset
    image_size: int = MISSING  # images are resized to image_size x image_size pixels
    seed: int = SI("${seed}")  # the split's and the shuffles' seed: the run's seed

    @property
    def label(self) -> str:
        """A short name for run names: ``digits``, ``mnist``, the folder's name."""
        raise NotImplementedError

    def content(self) -> str | None:
        """A fingerprint of the files this option reads, where they can change while the
        option stays the same (a job key includes it); None where they cannot."""
        return None

    def classes(self) -> int | None:
        """The number of classes, where it is known before loading (None where not)."""
        return None


@dataclass
class DigitsConfig(DatasetConfig):
    """scikit-learn's 1797 digits, embedded (offline)."""

    _target_: str = "pruneflow.steps.data.loaders.load_digits"
    image_size: int = 28
    val_fraction: float = 0.3  # the share of the images held out for validation

    def __post_init__(self) -> None:
        check_seed(self.seed)
        check_image(self.image_size, None, minimum=8)
        check_fraction(self.val_fraction)

    @property
    def label(self) -> str:
        return "digits"

    @property
    def channels(self) -> int:
        return 1  # grayscale digits

    def classes(self) -> int | None:
        return DIGIT_CLASSES


@dataclass
class TfdsConfig(DatasetConfig):
    """A tensorflow-datasets dataset (downloaded on first use)."""

    _target_: str = "pruneflow.steps.data.loaders.load_tfds"
    name: str = MISSING  # the tensorflow-datasets name, e.g. mnist, svhn_cropped
    channels: int = 3  # 1 (grayscale) or 3 (RGB)
    train_split: str = "train[:70%]"  # the paper's 70/30 split of the training split
    val_split: str = "train[70%:]"  # the validation split, in tfds's split syntax
    data_dir: str | None = None  # null: ~/tensorflow_datasets
    download: bool = True  # false: use only what data_dir already holds
    cache: bool = True  # keep decoded, resized training images in memory across epochs
    train_limit: int | None = None  # null: the whole split; N: the first N examples
    val_limit: int | None = None  # null: the whole split; N: the first N examples

    def __post_init__(self) -> None:
        check_seed(self.seed)
        check_image(self.image_size, self.channels)
        check_limit("train_limit", self.train_limit)
        check_limit("val_limit", self.val_limit)

    @property
    def label(self) -> str:
        return self.name

    def content(self) -> str | None:
        """The prepared dataset's files in ``data_dir`` (paths, sizes, times); None while it
        is not prepared there (the download then makes tfds's canonical files)."""
        where = self.data_dir or os.environ.get("TFDS_DATA_DIR") or TFDS_DATA_DIR  # tfds's rule
        name = self.name.split("/")[0].split(":")[0]  # name[/config][:version]
        return folder.tree_fingerprint(os.path.join(os.path.expanduser(where), name))


@dataclass
class FolderConfig(DatasetConfig):
    """Your own images in ``root/<class>/*.{jpg,png,...}``."""

    _target_: str = "pruneflow.steps.data.loaders.load_folder"
    root: str | None = None  # required: the folder of <class>/<image> files
    image_size: int = 96
    channels: int = 3  # 1 (grayscale) or 3 (RGB)
    val_fraction: float = 0.3  # the share of the images held out for validation
    cache: bool = True  # keep decoded, resized training images in memory across epochs

    def __post_init__(self) -> None:
        check_seed(self.seed)
        check_folder(self.root)
        check_image(self.image_size, self.channels)
        check_fraction(self.val_fraction)

    @property
    def label(self) -> str:
        return os.path.basename(os.path.normpath(self.root))

    def content(self) -> str | None:
        """The images below ``root``: paths, sizes, times (:meth:`.folder.Folder.fingerprint`)."""
        return folder.scan(self.root).fingerprint()

    def classes(self) -> int | None:
        return len(folder.scan(self.root).class_names)


# The schemas the group's YAML options extend (`defaults: [/schema/dataset/tfds@_here_]`).
SCHEMAS = {"digits": DigitsConfig, "tfds": TfdsConfig, "folder": FolderConfig}
