"""Prune-preserving quantization-aware training: int8 that keeps pruning's zeros."""

import pytest

from helpers.models import prune_quick
from pruneflow.convert import export_models, weight_sparsity
from pruneflow.evaluate import tflite_accuracy
from pruneflow.prune import kernel_arrays, sparsity_of
from pruneflow.quantize import quantize_aware


@pytest.fixture(scope="module")
def pruned(trained_model_path, digits):
    return prune_quick(trained_model_path, digits)


def test_pqat_keeps_the_zeros_into_the_int8_file(pruned, digits, tmp_path):
    qat = quantize_aware(pruned.model, digits, epochs=1, batch_size=64, learning_rate=1e-4)
    assert sparsity_of(kernel_arrays(qat)) == pytest.approx(pruned.sparsity, abs=1e-3)
    paths = export_models(
        pruned.model,
        ["tflite_fp32", "tflite_int8", "tflite_int8_qat"],
        tmp_path,
        digits.train_sample(32),
        qat_model=qat,
    )
    for variant in ("tflite_int8", "tflite_int8_qat"):
        assert weight_sparsity(paths[variant]) == pytest.approx(0.5, abs=0.01), variant
    fp32 = tflite_accuracy(paths["tflite_fp32"], digits.x_val, digits.y_val)
    qat_acc = tflite_accuracy(paths["tflite_int8_qat"], digits.x_val, digits.y_val)
    assert fp32 > 0.8 and abs(qat_acc - fp32) < 0.03  # not the chance score of a broken QAT


def test_qat_needs_training_and_a_flat_model(pruned, digits):
    with pytest.raises(ValueError, match="epochs=0 is invalid: valid values are integers >= 1"):
        quantize_aware(pruned.model, digits, epochs=0, batch_size=64, learning_rate=1e-4)
    from pruneflow.model import build_transfer

    nested = build_transfer((32, 32, 1), 10, "mobilenetv2", weights=None)
    with pytest.raises(ValueError, match="nested"):
        quantize_aware(nested, digits, epochs=1, batch_size=64, learning_rate=1e-4)


def test_qat_variant_without_a_qat_model_is_an_error(pruned, digits, tmp_path):
    with pytest.raises(ValueError, match="qat_model is required: the quantization-aware model"):
        export_models(pruned.model, ["tflite_int8_qat"], tmp_path, digits.train_sample(8))
