"""The ``backbone`` group's schemas; the builder an option names (``_target_``, in
:mod:`.build`) receives the option itself. Light: no TensorFlow."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from pruneflow.errors import require
from pruneflow.steps.model.zoo import arch_name, min_input


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


SCHEMAS = {"cnn": CNNConfig, "transfer": TransferConfig}
