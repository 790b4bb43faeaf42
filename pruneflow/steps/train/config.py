"""The ``train`` section's schema: how the baseline is trained. Light: no TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

from pruneflow.errors import require


@dataclass
class TrainConfig:
    epochs: int = 12  # the baseline's training epochs
    batch_size: int = 32  # images per step, in training and every fine-tuning
    learning_rate: float = 1e-3  # the baseline's learning rate (Adam)
    frozen_epochs: int = 0  # transfer backbones: head-only epochs on a frozen base first
    fine_tune_learning_rate: float | None = None  # after the frozen phase; null: learning_rate

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "epochs", self.epochs, "integers >= 1")
        require(self.batch_size >= 1, "batch_size", self.batch_size, "integers >= 1")
        require(self.learning_rate > 0, "learning_rate", self.learning_rate, "floats > 0")
        require(self.frozen_epochs >= 0, "frozen_epochs", self.frozen_epochs, "integers >= 0")
        require(
            self.fine_tune_learning_rate is None or self.fine_tune_learning_rate > 0,
            "fine_tune_learning_rate",
            self.fine_tune_learning_rate,
            "null (learning_rate) or floats > 0",
        )
