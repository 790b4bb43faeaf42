"""The ``benchmark`` section's schema: which images are timed, and how. Light: no TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

from pruneflow.devices.config import runner_arguments
from pruneflow.devices.runner import check_protocol
from pruneflow.errors import require
from pruneflow.stats import MIN_TIMES
from pruneflow.steps.train.config import check_seed

KERAS_WHERE = ("auto", "device", "host", "off")  # where the Keras model is timed


@dataclass
class BenchmarkConfig:
    images: int = 100  # validation images saved as files and timed one by one
    seed: int = 0  # which validation images are timed
    warmup: int = 0  # untimed images before the timed ones (0: the paper's protocol)
    repeats: int = 1  # passes over the images (the paper's statistics use the first)
    # where the Keras model is timed: auto (on the device when it has TensorFlow, else on this
    # machine, tagged) | device (fail if it cannot) | host | off
    keras: str = "auto"

    def __post_init__(self) -> None:
        require(
            self.images >= MIN_TIMES,
            "images",
            self.images,
            f"integers >= {MIN_TIMES} (the first image is reported apart; a deviation needs two "
            "more)",
        )
        with runner_arguments():
            check_protocol(self.warmup, self.repeats)
        check_seed(self.seed)
        require(
            self.keras in KERAS_WHERE,
            "keras",
            self.keras,
            f"{list(KERAS_WHERE)} (auto: on the device when it has TensorFlow, else on this "
            "machine)",
        )
