"""The ``stage`` group's schema: which TFLite variants are built, and how int8 and QAT are
trained and calibrated. Light: no TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass, field

from pruneflow.errors import positive, require
from pruneflow.steps.convert.variants import QAT_VARIANTS, VARIANTS


@dataclass
class StageConfig:
    """Which TFLite variants are built (group `stage`)."""

    # the TFLite variants built, converted and timed (the Keras model is always measured too)
    variants: list[str] = field(
        default_factory=lambda: ["tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]
    )
    representative_samples: int = 100  # training images calibrating int8
    qat_epochs: int = 4  # tflite_int8_qat: quantization-aware fine-tuning epochs
    qat_learning_rate: float = 3e-5  # tflite_int8_qat: its fine-tuning learning rate

    def __post_init__(self) -> None:
        v = list(self.variants)
        valid = f"a non-empty list drawn from {list(VARIANTS)}"  # none: a run with nothing to time
        require(bool(v) and all(x in VARIANTS for x in v), "variants", v, valid)
        require(len(set(v)) == len(v), "variants", v, "a list without repeats")
        require(
            self.representative_samples >= 1,
            "representative_samples",
            self.representative_samples,
            ">= 1",
        )
        if self.needs_qat:
            require(
                self.qat_epochs >= 1,
                "qat_epochs",
                self.qat_epochs,
                "integers >= 1 (a quantization-aware model is untrained before its first epoch)",
            )
        rate = self.qat_learning_rate
        require(positive(rate), "qat_learning_rate", rate, "finite floats > 0")

    @property
    def needs_qat(self) -> bool:
        """Whether a variant converts the quantization-aware model (so QAT runs)."""
        return any(v in QAT_VARIANTS for v in self.variants)
