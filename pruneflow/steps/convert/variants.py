"""The TFLite variants pruneflow builds: a registry, one entry per variant, the one place that
says how each is converted. Adding a variant is adding an entry here.

- ``tflite_fp32``: plain float32 conversion.
- ``tflite_fp32_sparse``: float32 with pruned weights stored in TFLite's sparse format
  (``Optimize.EXPERIMENTAL_SPARSITY``); XNNPACK can run 1x1 convolutions of at least 2/3 zeros
  with sparse kernels (a speed-up expected on ARM). float32 only: XNNPACK rejects sparse int8.
- ``tflite_dynamic``: dynamic-range quantization (int8 weights, float activations).
- ``tflite_float16``: float16 weights (computed in float32: its metadata says fp16accfp32).
- ``tflite_float16_compute``: float16 weights and float16 arithmetic: the converter writes the
  reduced-precision metadata ``fp16accfp16``, for which XNNPACK computes the whole model in
  float16 on a CPU with FP16 arithmetic (ARMv8.2 ``fphp asimdhp``: a Pi 5's Cortex-A76, not a
  Pi 4's A72); elsewhere it computes in float32 as ``tflite_float16`` does. A run says which
  happened (:func:`pruneflow.results.arithmetic_tag`).
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
    # the accumulation type the converter records in the reduced-precision metadata
    # (target_spec._experimental_supported_accumulation_type): float16 asks for FP16 arithmetic
    accumulation: str | None = None
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
        Variant(
            "tflite_float16_compute",
            optimization="default",
            supported_type="float16",
            accumulation="float16",
            rank=6,
        ),
        Variant("tflite_int8", optimization="default", full_int8=True, rank=0),
        Variant("tflite_int8_qat", optimization="default", full_int8=True, from_qat=True, rank=1),
        Variant("tflite_file", rank=8, given=True),
    )
}
GIVEN_VARIANTS = tuple(v.name for v in VARIANTS.values() if v.given)
QAT_VARIANTS = tuple(v.name for v in VARIANTS.values() if v.from_qat)
# the variants that ask for FP16 arithmetic (a device without it computes them in float32)
FLOAT16_COMPUTE_VARIANTS = tuple(v.name for v in VARIANTS.values() if v.accumulation == "float16")


def fp16_asked(variants) -> list[str]:
    """Those of ``variants`` that ask for FP16 arithmetic."""
    return [v for v in variants if v in FLOAT16_COMPUTE_VARIANTS]
