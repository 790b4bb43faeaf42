"""The TFLite variants pruneflow builds: a registry, one entry per variant, the one place that
says how each is converted. Adding a variant is adding an entry here.

- ``tflite_fp32``: plain float32 conversion.
- ``tflite_fp32_sparse``: float32 with pruned weights stored in TFLite's sparse format
  (``Optimize.EXPERIMENTAL_SPARSITY``); XNNPACK can run 1x1 convolutions of at least 2/3 zeros
  with sparse kernels (a speed-up expected on ARM). float32 only: XNNPACK rejects sparse int8.
- ``tflite_dynamic``: dynamic-range quantization (int8 weights, float activations).
- ``tflite_float16``: float16 weights.
- ``tflite_int8``: full integer quantization calibrated on training images, int8 input and output.
- ``tflite_int8_qat``: the same from the prune-preserving quantization-aware model
  (:mod:`pruneflow.steps.quantize.qat`), which keeps pruning's zeros.
- ``tflite_file``: the .tflite file given as ``backbone=tflite``, taken as it is (never
  converted; ``stage=file``, the stage that option picks).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    """How one .tflite variant is made: the converter's optimization (``none``, ``default``
    or ``sparsity``), the weight type it keeps (``float16``), whether it is calibrated on
    training images with int8 input and output, and whether it converts the
    quantization-aware model instead of the pruned one. ``rank``: the order in which a
    summary prefers variants for its headline (lower first)."""

    name: str
    optimization: str = "none"
    supported_type: str | None = None
    full_int8: bool = False
    from_qat: bool = False
    rank: int = 9
    given: bool = False  # the user's own .tflite file (backbone=tflite), not converted


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("tflite_fp32", rank=4),
        Variant("tflite_fp32_sparse", optimization="sparsity", rank=5),
        Variant("tflite_dynamic", optimization="default", rank=3),
        Variant("tflite_float16", optimization="default", supported_type="float16", rank=2),
        Variant("tflite_int8", optimization="default", full_int8=True, rank=0),
        Variant("tflite_int8_qat", optimization="default", full_int8=True, from_qat=True, rank=1),
        Variant("tflite_file", rank=8, given=True),
    )
}
GIVEN_VARIANTS = tuple(v.name for v in VARIANTS.values() if v.given)
QAT_VARIANTS = tuple(v.name for v in VARIANTS.values() if v.from_qat)
