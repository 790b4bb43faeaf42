"""Quantize step: prune-preserving quantization-aware training (:mod:`.qat`), configured by
the ``stage`` schema (:mod:`pruneflow.steps.convert.config`)."""
