"""What quantization-aware training adds to a run, in the names of the contract
(:mod:`pruneflow.results`)."""

from __future__ import annotations

from pruneflow.results import QAT_SCHEME_TAG, Record


def for_qat(scheme: str) -> Record:
    """Which quantization-aware scheme made ``tflite_int8_qat`` (pqat, cqat, pcqat:
    :func:`pruneflow.steps.quantize.qat.scheme_for`)."""
    return Record(tags={QAT_SCHEME_TAG: scheme})
