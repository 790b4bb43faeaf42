"""The ``backbone`` group's schemas; the builder an option names (``_target_``, in
:mod:`.build`) receives the option itself. Light: no TensorFlow."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from pruneflow.errors import require
from pruneflow.steps.model.zoo import arch_name, min_input

log = logging.getLogger(__name__)


def check_dropout(dropout: float) -> None:
    require(0.0 <= dropout < 1.0, "dropout", dropout, "floats in [0, 1)")


def check_cnn(filters: Sequence[int], dense_units: int, dropout: float) -> None:
    require(
        len(filters) > 0 and all(isinstance(f, int) and f >= 1 for f in filters),
        "filters",
        list(filters),
        "a non-empty list of integers >= 1",
    )
    require(dense_units >= 1, "dense_units", dense_units, "integers >= 1")
    check_dropout(dropout)


def check_transfer(arch: str, input_size: int | None, dropout: float) -> str:
    """The checked ``arch``'s lower-case name (:mod:`.zoo`)."""
    arch = arch_name(arch)
    least = min_input(arch)
    require(
        input_size is None or input_size >= least,
        "input_size",
        input_size,
        f"null (the dataset's image size) or integers >= {least} (the smallest input of {arch})",
    )
    check_dropout(dropout)
    return arch


@dataclass
class BackboneConfig:
    _target_: str = MISSING  # the builder: f(option, input_shape, num_classes) -> model
    dropout: float = 0.2  # dropout before the classification layer
    # A model nested inside the classifier (a keras.applications base): tfmot's QAT refuses it.
    nests_a_model: ClassVar[bool] = False
    # A model trained already (a file): it may be evaluated as it is (train.epochs=0).
    trained: ClassVar[bool] = False

    @property
    def label(self) -> str:
        raise NotImplementedError

    def adapt(self, dataset) -> None:
        """Rules across this option and the ``dataset`` section (a model given as a file
        sets the image size); nothing for a model built here."""

    def output_classes(self) -> int | None:
        """The class count the model must have, where the option fixes it (a model file
        keeping its head); None where the dataset's is taken."""
        return None


@dataclass
class CNNConfig(BackboneConfig):
    """A small custom CNN like the paper's MNIST model."""

    _target_: str = "pruneflow.steps.model.build.build_cnn"
    filters: list[int] = field(default_factory=lambda: [16, 32])  # one conv block per entry
    dense_units: int = 64  # units of the dense layer before the classifier
    dropout: float = 0.25

    def __post_init__(self) -> None:
        check_cnn(self.filters, self.dense_units, self.dropout)

    @property
    def label(self) -> str:
        return "cnn"


@dataclass
class TransferConfig(BackboneConfig):
    """A keras.applications base with its preprocessing and a new classification head."""

    _target_: str = "pruneflow.steps.model.build.build_transfer"
    arch: str = MISSING  # the keras.applications classifier (steps/model/zoo.py, any spelling)
    weights: str | None = "imagenet"  # imagenet | null (random init, offline) | a file path
    FILE_KEYS: ClassVar[tuple[str, ...]] = ("weights",)  # keys by their file's content too
    input_size: int | None = None  # null: the dataset's image size; else resized in the model
    nests_a_model: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.arch = check_transfer(self.arch, self.input_size, self.dropout)
        w = self.weights
        require(
            w in (None, "imagenet") or os.path.isfile(w),
            "weights",
            w,
            "imagenet, null (random initialisation, offline) or the path of a weights file "
            "that exists",
        )

    @property
    def label(self) -> str:
        return self.arch

    @property
    def min_input(self) -> int:
        """The smallest image side the base accepts (:mod:`.zoo`)."""
        return min_input(self.arch)


PIXELS = ("auto", "raw", "unit", "symmetric")
HEADS = ("keep", "new")


@dataclass
class FileConfig(BackboneConfig):
    """Your own tf_keras model (.keras, .h5, SavedModel folder) as the baseline. Its input
    shape sets the dataset's image size; train.epochs=0 (this option's default) evaluates it
    as it is. One that tfmot cannot take (a Keras 3 file, a subclassed model, a SavedModel not
    written by tf_keras: :func:`pruneflow.steps.model.foreign.why_not_tfmot`) is converted
    only (:func:`pruneflow.steps.model.foreign.route`)."""

    _target_: str = "pruneflow.steps.model.source.build_file"
    path: str = MISSING  # the model: a .keras or .h5 file, or a SavedModel folder
    # how pixels reach it (the data is 0..255): raw (0..255), unit (0..1), symmetric (-1..1);
    # auto: raw if the model rescales them itself (a Rescaling/Normalization layer first), else unit
    pixels: str = "auto"
    head: str = "keep"  # keep: its classes must be the dataset's; new: a new classifier, trained
    modules: list[str] = field(default_factory=list)  # modules to import: they register its layers
    custom_objects: list[str] = field(default_factory=list)  # module:Name, its custom layers
    dropout: float = 0.0  # dropout before a new head (head=new)
    FILE_KEYS: ClassVar[tuple[str, ...]] = ("path",)  # keys by the model's content too
    trained: ClassVar[bool] = True

    def __post_init__(self) -> None:
        from pruneflow.steps.model.source import NotKeras2Model, kind_of

        require(self.pixels in PIXELS, "pixels", self.pixels, "|".join(PIXELS))
        require(self.head in HEADS, "head", self.head, "|".join(HEADS))
        check_dropout(self.dropout)
        try:
            kind_of(self.path)  # light: no TensorFlow
        except NotKeras2Model:
            if not self.converted_only:  # else the conversion-only route takes it
                raise

    @property
    def converted_only(self) -> bool:
        """A model tfmot cannot take: the job converts it only (steps/model/foreign.py)."""
        from pruneflow.steps.model.foreign import why_not_tfmot

        return why_not_tfmot(self.path) is not None

    @property
    def label(self) -> str:
        return os.path.splitext(os.path.basename(os.path.normpath(self.path)))[0]

    def output_classes(self) -> int | None:
        from pruneflow.steps.model.source import describe

        if self.converted_only:  # not loaded by tf_keras; the route reads its output itself
            return None
        return describe(self).classes if self.head == "keep" else None

    def adapt(self, dataset) -> None:
        """The model's input shape sets ``dataset.image_size`` (the data is resized to it);
        its channels and (with ``head=keep``) its classes must be the dataset's."""
        from pruneflow.errors import ConfigError
        from pruneflow.steps.model.source import describe

        if self.converted_only:  # the conversion-only route resizes the data itself
            return
        info = describe(self)  # loads the model (TensorFlow): a bad one stops here
        height, width, channels = info.input_shape
        where = f"backbone.path={self.path}"
        if height != width:
            raise ConfigError(
                f"{where} takes {height}x{width} images: valid values are models of square "
                "images (the data is resized to image_size x image_size)"
            )
        if channels != dataset.channels:
            raise ConfigError(
                f"{where} takes {channels}-channel images, dataset={dataset.label} has "
                f"{dataset.channels}: valid values are a model of {dataset.channels}-channel "
                f"input, or a dataset of {channels}-channel images"
            )
        classes = dataset.classes()
        if self.head == "keep" and classes is not None and classes != info.classes:
            raise ConfigError(
                f"{where} has {info.classes} classes, dataset={dataset.label} {classes}: "
                "valid values are a model of as many classes, or backbone.head=new (a new "
                "classifier head, trained by train.epochs)"
            )
        if height is not None and height != dataset.image_size:
            log.info(
                "dataset.image_size=%d -> %d: the input of %s (the images are resized to it)",
                dataset.image_size,
                height,
                self.path,
            )
            dataset.image_size = int(height)


TFLITE_IDENTIFIER = b"TFL3"  # bytes 4..8 of every .tflite file (its flatbuffer's identifier)


@dataclass
class TFLiteConfig(BackboneConfig):
    """A .tflite file of yours, taken as it is: the job's one variant (``tflite_file``),
    evaluated and timed, never converted."""

    _target_: str = "pruneflow.steps.model.foreign.tflite_only"
    path: str = MISSING  # the .tflite file
    FILE_KEYS: ClassVar[tuple[str, ...]] = ("path",)  # keys by the file's content

    def __post_init__(self) -> None:
        valid = "the path of a .tflite file that exists"
        require(os.path.isfile(self.path), "path", self.path, valid)
        with open(self.path, "rb") as fh:
            head = fh.read(8)
        require(head[4:8] == TFLITE_IDENTIFIER, "path", self.path, f"{valid} (this is no .tflite)")

    @property
    def label(self) -> str:
        return os.path.splitext(os.path.basename(self.path))[0]


SCHEMAS = {"cnn": CNNConfig, "transfer": TransferConfig, "file": FileConfig, "tflite": TFLiteConfig}
