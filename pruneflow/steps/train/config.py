"""The ``train`` section's schema: how the baseline is trained. Light: no TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

from pruneflow.errors import positive, require

# The seeds numpy takes (keras.utils.set_random_seed seeds numpy, Python and TensorFlow with
# it; scikit-learn's split takes the same): every seed of a job, checked before any work.
MAX_SEED = 2**32 - 1


def check_seed(seed: int) -> None:
    valid = f"integers in [0, {MAX_SEED}]"
    require(isinstance(seed, int) and 0 <= seed <= MAX_SEED, "seed", seed, valid)


@dataclass
class TrainConfig:
    epochs: int = 12  # the baseline's training epochs (backbone=file: 0, evaluated as it is)
    batch_size: int = 32  # images per step, in training and every fine-tuning
    learning_rate: float = 1e-3  # the baseline's learning rate (Adam)
    frozen_epochs: int = 0  # transfer backbones: head-only epochs on a frozen base first
    fine_tune_learning_rate: float | None = None  # after the frozen phase; null: learning_rate

    def __post_init__(self) -> None:
        require(self.epochs >= 0, "epochs", self.epochs, "integers >= 1 (0: backbone=file)")
        require(self.batch_size >= 1, "batch_size", self.batch_size, "integers >= 1")
        rate = self.learning_rate
        require(positive(rate), "learning_rate", rate, "finite floats > 0")
        require(self.frozen_epochs >= 0, "frozen_epochs", self.frozen_epochs, "integers >= 0")
        require(
            self.fine_tune_learning_rate is None or positive(self.fine_tune_learning_rate),
            "fine_tune_learning_rate",
            self.fine_tune_learning_rate,
            "null (learning_rate) or finite floats > 0",
        )
