"""The ``backbone`` group's schemas; the builder an option names (``_target_``, in
:mod:`.build`) receives the option itself. Light: no TensorFlow."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from pruneflow.errors import require

MIN_TRANSFER_INPUT = 32  # keras.applications bases refuse smaller inputs
# Framework facts about keras.applications backbones: constructor name, the preprocessing its
# ImageNet weights expect, and the first convolution (whose input channels caffe-mode weights
# expect in BGR order).
ARCHS = {
    "mobilenetv2": ("MobileNetV2", "tf", None),
    "vgg16": ("VGG16", "caffe", "block1_conv1"),
    "resnet50": ("ResNet50", "caffe", "conv1_conv"),
}


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


def check_transfer(arch: str, input_size: int | None, dropout: float) -> None:
    require(arch in ARCHS, "arch", arch, str(sorted(ARCHS)))
    require(
        input_size is None or input_size >= MIN_TRANSFER_INPUT,
        "input_size",
        input_size,
        f"null (the dataset's image size) or integers >= {MIN_TRANSFER_INPUT}",
    )
    check_dropout(dropout)


@dataclass
class BackboneConfig:
    _target_: str = MISSING  # the builder: f(option, input_shape, num_classes) -> model
    dropout: float = 0.2  # dropout before the classification layer
    # A model nested inside the classifier (a keras.applications base): tfmot's QAT refuses it.
    nests_a_model: ClassVar[bool] = False

    @property
    def label(self) -> str:
        raise NotImplementedError


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
    arch: str = MISSING  # the keras.applications base
    weights: str | None = "imagenet"  # imagenet | null (random init, offline) | a file path
    FILE_KEYS: ClassVar[tuple[str, ...]] = ("weights",)  # keys by their file's content too
    input_size: int | None = None  # null: the dataset's image size; else resized in the model
    nests_a_model: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_transfer(self.arch, self.input_size, self.dropout)
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


@dataclass
class FileConfig(BackboneConfig):
    """A model file of yours (a ``.keras`` or ``.h5`` file, a SavedModel folder). One that
    tfmot cannot take (a Keras 3 file, a subclassed model, a SavedModel not written by
    tf_keras: :func:`pruneflow.steps.model.foreign.why_not_tfmot`) is converted only."""

    _target_: str = "pruneflow.steps.model.foreign.load_keras"
    path: str = MISSING  # the model: a .keras or .h5 file, or a SavedModel folder
    FILE_KEYS: ClassVar[tuple[str, ...]] = ("path",)  # keys by the file's (folder's) content

    def __post_init__(self) -> None:
        require(
            os.path.exists(self.path),
            "path",
            self.path,
            "the path of a .keras or .h5 file or of a SavedModel folder that exists",
        )

    @property
    def label(self) -> str:
        return os.path.splitext(os.path.basename(os.path.normpath(self.path)))[0]


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
