"""Prune-preserving quantization-aware training: int8 that keeps pruning's zeros."""

import pytest

from helpers.models import prune_quick, transfer
from pruneflow.errors import ArgumentError
from pruneflow.steps.convert.config import StageConfig
from pruneflow.steps.convert.convert import export_models, weight_sparsity
from pruneflow.steps.evaluate import tflite_accuracy
from pruneflow.steps.prune.prune import kernel_arrays, sparsity_of
from pruneflow.steps.quantize.qat import quantize_aware

QAT = ["tflite_int8_qat"]


@pytest.fixture(scope="module")
def pruned(trained_model_path, digits):
    return prune_quick(trained_model_path, digits)


@pytest.fixture(scope="module")
def qat(pruned, digits):
    return quantize_aware(
        pruned.model,
        digits,
        StageConfig(QAT, qat_epochs=1, qat_learning_rate=1e-4),
        batch_size=64,
        seed=0,
    )


def test_pqat_keeps_the_zeros_into_the_int8_file(pruned, qat, digits, tmp_path):
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
    with pytest.raises(
        ArgumentError, match="qat_epochs=0 is invalid: valid values are integers >= 1"
    ):
        StageConfig(QAT, qat_epochs=0)
    nested = transfer((32, 32, 1), 10, "mobilenetv2", weights=None)
    with pytest.raises(ValueError, match="nested"):
        quantize_aware(nested, digits, StageConfig(QAT, qat_epochs=1), batch_size=64, seed=0)


def test_qat_variant_without_a_qat_model_is_an_error(pruned, digits, tmp_path):
    with pytest.raises(ValueError, match="qat_model is required: the quantization-aware model"):
        export_models(pruned.model, ["tflite_int8_qat"], tmp_path, digits.train_sample(8))


def test_the_sparse_fp32_file_stores_only_the_nonzeros_and_predicts_the_same(
    pruned, digits, tmp_path
):
    """tflite_fp32_sparse: TFLite's sparse format. Its measured zeros count what it does not
    store; the runner runs it (XNNPACK, or builtin kernels and says why) and predicts as the
    dense file does."""
    from pruneflow.devices.config import LocalDeviceConfig
    from pruneflow.devices.local import LocalDevice
    from pruneflow.steps.convert.convert import describe

    paths = export_models(
        pruned.model, ["tflite_fp32", "tflite_fp32_sparse"], tmp_path / "m", digits.train_sample(8)
    )
    files = describe(paths)
    dense, sparse = files["tflite_fp32"], files["tflite_fp32_sparse"]
    assert sparse.size_bytes < dense.size_bytes  # zeros not stored (an index is, instead)
    assert sparse.sparsity == pytest.approx(dense.sparsity, abs=0.01)
    assert dense.sparsity == pytest.approx(0.5, abs=0.02)
    from pruneflow.steps.benchmark.benchmark import write_images

    images = write_images(
        digits.x_val, digits.y_val, digits.class_names, 12, tmp_path / "img", seed=0
    )
    with LocalDevice(LocalDeviceConfig()) as dev:
        doc = dev.benchmark(
            [paths["tflite_fp32"], paths["tflite_fp32_sparse"]],
            images,
            tmp_path / "r.json",
            {"name": "xnnpack", "threads": 1},
        )
    r = doc.results
    assert r["tflite_fp32_sparse"].predictions == r["tflite_fp32"].predictions
    assert r["tflite_fp32_sparse"].kernels in ("xnnpack", "builtin")


@pytest.mark.parametrize("workers", [0, 1])
def test_each_file_is_the_converters_own_byte_for_byte(
    pruned, qat, digits, tmp_path, workers, caplog
):
    """export_models exports each model once for all its variants, and converts them in this
    process or also in a worker process (here forced for a small model, which would stay
    serial); every file is the one TFLite's own Keras conversion (which exports the model again
    for each) writes."""
    from pruneflow.steps.convert.convert import _converter
    from pruneflow.steps.convert.variants import VARIANTS

    sample = digits.train_sample(8)
    names = list(VARIANTS)
    with caplog.at_level("INFO", logger="pruneflow.steps.convert.convert"):
        paths = export_models(pruned.model, names, tmp_path, sample, qat_model=qat, workers=workers)
    said = [r.message for r in caplog.records if r.message.startswith("converted ")]
    assert len(said) == len(names)  # one line per variant, wherever it was converted
    assert any("in a worker" in line for line in said) == bool(workers)
    assert list(paths) == ["keras", *names]
    for name, variant in VARIANTS.items():
        source = qat if variant.from_qat else pruned.model
        own = _converter(source, variant, sample).convert()
        assert paths[name].read_bytes() == own, name
