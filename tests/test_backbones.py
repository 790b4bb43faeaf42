"""Transfer backbones with weights=null at a small input size: one training step, then prune,
strip and every post-training TFLite variant. ImageNet weights cannot be downloaded here; their
code path is tested for its offline failure."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from helpers.models import cnn, transfer
from pruneflow.steps.convert.convert import export_models, weight_sparsity
from pruneflow.steps.data.loaders import from_arrays
from pruneflow.steps.evaluate import evaluate
from pruneflow.steps.model.build import WeightsUnavailable
from pruneflow.steps.prune.config import PruneConfig
from pruneflow.steps.prune.prune import prune_model
from pruneflow.steps.train.config import TrainConfig
from pruneflow.steps.train.train import load_model, train_baseline

VARIANTS = ["tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]


@pytest.fixture(scope="module")
def tiny(digits):
    """32 training and 16 validation digits: grayscale 28x28, so the backbones also exercise
    the gray-to-RGB and resize layers."""
    return from_arrays(
        "tiny",
        digits.train_sample(32),
        np.arange(32) % 10,
        digits.x_val[:16],
        digits.y_val[:16],
        digits.class_names,
    )


def _digest(path) -> str:
    model = load_model(path)
    return hashlib.sha256(b"".join(w.numpy().tobytes() for w in model.weights)).hexdigest()


def _through_the_pipeline(arch, tiny, tmp_path, frozen_epochs=0, variants=VARIANTS):
    baseline = train_baseline(
        tiny,
        lambda: transfer(tiny.image_shape, tiny.num_classes, arch, weights=None, input_size=32),
        TrainConfig(epochs=1, frozen_epochs=frozen_epochs),
        seed=0,
        cache_dir=tmp_path,
        key_spec={"arch": arch},
    )
    before = _digest(baseline.model_path)
    pruned = prune_model(
        baseline.model_path,
        tiny,
        # every layer at the target (uniform), so that each selected row says 0.5
        PruneConfig(
            sparsity=0.5, schedule="constant", epochs=1, frequency=1, distribution="uniform"
        ),
        batch_size=32,
        seed=0,
    )
    assert _digest(baseline.model_path) == before  # the cached baseline is never altered
    selected = [row for row in pruned.layers if row["selected"]]
    assert len(selected) > 5  # pruning reached into the nested backbone
    for row in selected:
        assert row["sparsity"] == pytest.approx(0.5, abs=0.01), row
    paths = export_models(pruned.model, variants, tmp_path / "models", tiny.train_sample(8))
    acc = evaluate({v: paths[v] for v in variants}, tiny.x_val, tiny.y_val)
    assert all(0.0 <= a <= 1.0 for a in acc.values())
    assert weight_sparsity(paths["tflite_fp32"]) == pytest.approx(pruned.sparsity, abs=0.02)
    return baseline, pruned


def test_mobilenetv2_through_prune_strip_fp32_and_int8(tiny, tmp_path):
    """A nested keras.applications base through the chain; fp32 (the sparsity the file keeps)
    and int8 (the calibrated conversion) in make test, every variant in the slow tests below."""
    baseline, pruned = _through_the_pipeline(
        "mobilenetv2", tiny, tmp_path, frozen_epochs=1, variants=("tflite_fp32", "tflite_int8")
    )
    assert len(baseline.history["loss"]) == 2  # one frozen epoch, one fine-tuning epoch
    # DepthwiseConv2D is never pruned: reported dense, and the overall figure says so
    depthwise = [row for row in pruned.layers if row["type"] == "DepthwiseConv2D"]
    assert depthwise and all(not r["selected"] and r["sparsity"] == 0.0 for r in depthwise)
    assert 0.3 < pruned.sparsity < 0.5


# slow: a second backbone through the same chain; mobilenetv2's test above keeps it in make test
@pytest.mark.slow
def test_vgg16_through_prune_strip_and_every_variant(tiny, tmp_path):
    _, pruned = _through_the_pipeline("vgg16", tiny, tmp_path)
    assert pruned.sparsity == pytest.approx(0.5, abs=0.01)


@pytest.mark.slow
def test_resnet50_through_prune_strip_and_every_variant(tiny, tmp_path):
    _, pruned = _through_the_pipeline("resnet50", tiny, tmp_path)
    assert pruned.sparsity == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("arch", ["mobilenetv2", "vgg16", "resnet50"])
def test_imagenet_weights_offline_fail_fast_naming_the_offline_choice(arch, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no cached weights in ~/.keras
    with pytest.raises(WeightsUnavailable, match=r"backbone.weights=null"):
        transfer((32, 32, 3), 2, arch, weights="imagenet")


def test_frozen_phase_needs_a_pretrained_base(tiny, tmp_path):
    with pytest.raises(ValueError, match="frozen_epochs='> 0' is invalid: .*pretrained base"):
        train_baseline(
            tiny,
            lambda: cnn(tiny.image_shape, tiny.num_classes),
            TrainConfig(epochs=1, frozen_epochs=1),
            seed=0,
            cache_dir=tmp_path,
            key_spec={},
        )


def test_unknown_arch_is_rejected():
    with pytest.raises(ValueError, match="valid values are"):
        transfer((32, 32, 3), 2, "alexnet", weights=None)
