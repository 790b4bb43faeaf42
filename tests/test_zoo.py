"""Every keras.applications classifier as backbone.arch: the table (steps/model/zoo.py) checked
against tf_keras itself, channel pruning exact on their graphs (squeeze-and-excitation,
hard-swish, grouped and depthwise-as-grouped convolutions, Concatenate), the kept groups with
their reasons, the whole-model metrics, and the bad inputs as one line through the console
script. The smallest archs run in `make test`; the others are `slow`."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from helpers.cli import TINY, outputs_to, pruneflow_command, run_cli
from helpers.models import logits_model, prune_quick, transfer
from pruneflow.steps.model import zoo

# keras.applications' own preprocess_input on three pixels, by the mode it implements
PIXELS = np.array([[[[10.0, 100.0, 200.0]]]])
MODES = {
    "none": PIXELS,
    "tf": PIXELS / 127.5 - 1,
    "torch": (PIXELS / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
    "caffe": PIXELS[..., ::-1] - np.array([103.939, 116.779, 123.68]),
}


def _keras_classifiers() -> list[str]:
    import tf_keras as keras

    apps = keras.applications
    return sorted(n for n in dir(apps) if n[:1].isupper() and callable(getattr(apps, n)))


def test_the_table_is_every_keras_applications_classifier_with_its_own_preprocessing_and_size():
    """Derived from tf_keras: each constructor's module's preprocess_input gives the mode, its
    refusal of an 8x8 input gives the smallest size."""
    import tf_keras as keras

    assert sorted(zoo.KERAS_ARCHS) == _keras_classifiers()
    for name, (mode, least) in zoo.KERAS_ARCHS.items():
        constructor = getattr(keras.applications, name)
        module = sys.modules[constructor.__module__]
        np.testing.assert_allclose(
            module.preprocess_input(PIXELS.copy()), MODES[mode], err_msg=name
        )
        with pytest.raises(ValueError, match=rf"at least {least}x{least}"):
            constructor(input_shape=(8, 8, 3), include_top=False, weights=None)


@pytest.mark.parametrize("mode", zoo.PREPROCESSING)
def test_the_model_preprocesses_raw_pixels_as_keras_would(mode):
    """The layers build_transfer puts before the base give keras.applications' own
    preprocess_input (caffe: in RGB order, the BGR order being folded into the first conv)."""
    import tf_keras as keras

    from pruneflow.steps.model.build import preprocess

    inputs = keras.Input((1, 1, 3))
    model = keras.Model(inputs, preprocess(inputs, mode))
    want = MODES[mode][..., ::-1] if mode == "caffe" else MODES[mode]
    np.testing.assert_allclose(model(PIXELS.astype("float32")).numpy(), want, rtol=1e-5, atol=1e-4)


def test_docs_models_lists_every_arch():
    """The bad-arch line points at docs/models.md: every name is there (B0 ... B7 in one)."""
    from helpers.cli import ROOT

    text = (ROOT / "docs" / "models.md").read_text()
    listed = set(re.findall(r"[a-z][a-z0-9]+", text)) | {f"efficientnetb{i}" for i in range(8)}
    assert set(zoo.ARCHS) <= listed


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("mobilenetv2", "mobilenetv2"),
        ("MobileNetV2", "mobilenetv2"),
        ("EfficientNet_B0", "efficientnetb0"),
    ],
)
def test_an_arch_is_its_lower_case_name_in_any_spelling(given, name):
    assert zoo.arch_name(given) == name


def _thin_equals_masked(arch: str, size: int) -> tuple[float, float]:
    """Thin and masked logits on inputs in [-1, 1]: (removed fraction, MACs after / before)."""
    from pruneflow.steps.model.measure import macs
    from pruneflow.steps.prune import channels
    from pruneflow.steps.prune.config import PruneConfig

    model = logits_model(arch, size)
    plan = channels.plan(model, 0.5, PruneConfig(channels=0.5, channel_criterion="bn"))
    thin, masked = channels.rebuild(model, plan), channels.masked(model, plan)
    x = np.random.default_rng(1).uniform(-1, 1, (4, size, size, 3)).astype("float32")
    original, want, got = model(x).numpy(), masked(x).numpy(), thin(x).numpy()
    scale = np.abs(want).max()
    assert scale > 1e-3, arch  # logits, not a saturated or vanished output
    assert np.abs(got - want).max() <= 1e-5 * scale, arch
    assert np.abs(original - want).max() > 1e-3 * scale, arch  # the masked channels mattered
    assert plan.removed_fraction == pytest.approx(0.5, abs=0.05)
    return plan.removed_fraction, macs(thin) / macs(model)


# the smallest (make test): squeeze-and-excitation with hard-swish, and with swish and Reshape
@pytest.mark.parametrize(
    ("arch", "most_macs"), [("mobilenetv3small", 0.4), ("efficientnetb0", 0.4)]
)
def test_the_thin_model_equals_the_masked_original(arch, most_macs):
    _, kept_macs = _thin_equals_masked(arch, 32)
    assert kept_macs <= most_macs  # the squeeze-and-excitation blocks' channels went too


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "size"),
    [
        ("mobilenet", 64),
        ("efficientnetv2b0", 64),
        ("densenet121", 64),  # Concatenate: kept
        ("convnexttiny", 64),  # LayerNormalization kept, depthwise-as-grouped followed
        ("regnety002", 64),  # grouped convolutions kept, squeeze-and-excitation followed
        ("resnet50v2", 64),
        ("mobilenetv3large", 64),
        ("inceptionv3", 75),  # BatchNorm without gamma; Concatenate kept
    ],
)
def test_the_thin_model_equals_the_masked_original_across_the_zoo(arch, size):
    _thin_equals_masked(arch, size)


def test_kept_groups_say_why():
    from pruneflow.steps.prune import channels

    graph = channels.analyze(transfer((32, 32, 3), 10, "regnetx002", weights=None))
    conv = "regnetx002_Stage_0_XBlock_0_conv_3x3"
    assert (conv, "a grouped convolution (not thinned)") in graph.blocked
    kept = dict(graph.kept())  # the 1x1 convolution before it keeps its channels, and says why
    assert kept["regnetx002_Stage_0_XBlock_0_conv_1x1_1"] == (
        f"{conv}: a grouped convolution (not thinned)"
    )
    assert "softmax" in kept["probs"]
    assert graph.prunable()  # the 1x1 convolutions between them still go
    assert graph.summary().startswith("13 x a grouped convolution (not thinned); ")


def test_a_value_not_0_at_0_is_kept_only_where_a_layer_reads_it():
    """sigmoid(conv) gated by a Multiply with a removable channel: followed (zero again); the
    same sigmoid read by a convolution: kept, saying which layer made it non-zero."""
    import tf_keras as keras

    from pruneflow.steps.prune import channels

    layers = keras.layers
    x = inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="a")(x)
    gate = layers.Conv2D(8, 1, activation="sigmoid", name="gate")(x)
    x = layers.Multiply(name="excite")([x, gate])
    x = layers.Conv2D(8, 3, padding="same", name="b")(x)
    x = layers.Conv2D(8, 1, activation="sigmoid", name="c")(x)
    x = layers.Conv2D(6, 1, activation="relu", name="d")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, layers.Dense(3, name="logits")(x))
    graph = channels.analyze(model)
    group = _group_of(graph, "a")
    assert group.producers == ["a", "gate"] and not group.kept_because
    kept = dict(graph.kept())
    assert "a" not in kept and "b" not in kept and "d" not in kept
    assert kept["c"] == "c: a value not 0 at 0 reaches d"
    plan = channels.plan(model, 0.5, _options())
    thin, masked = channels.rebuild(model, plan), channels.masked(model, plan)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(thin(x).numpy(), masked(x).numpy(), rtol=1e-5, atol=1e-6)


def _group_of(graph, layer):
    return next(g for g in graph.groups.values() if layer in g.producers)


def _options():
    from pruneflow.steps.prune.config import PruneConfig

    return PruneConfig(channels=0.5)


def test_a_model_with_nothing_to_remove_names_itself_the_value_and_why():
    import tf_keras as keras

    from pruneflow.errors import ArgumentError
    from pruneflow.steps.prune import channels
    from pruneflow.steps.prune.config import PruneConfig

    layers = keras.layers
    x = inputs = keras.Input((8, 8, 3))
    a = layers.Conv2D(4, 3, name="a")(x)
    b = layers.Conv2D(4, 3, name="b")(x)
    x = layers.GlobalAveragePooling2D()(layers.Concatenate(name="cat")([a, b]))
    model = keras.Model(inputs, x, name="catnet")
    with pytest.raises(ArgumentError) as err:
        channels.plan(model, 0.25, PruneConfig(channels=0.25))
    assert str(err.value) == (
        "channels=0.25 is invalid: valid values are 0 (off) for catnet: none of its channel "
        "groups can be removed, each kept because of 2 x a Concatenate (its inputs' channels "
        "are not followed through it)"
    )


def test_channels_all_and_macs_removed_are_of_the_whole_model(trained_model_path, digits):
    from pruneflow import results
    from pruneflow.steps.prune.record import for_pruning

    pruned = prune_quick(trained_model_path, digits, sparsity=0.0, channels=0.5)
    # the CNN's prunable channels: conv1 16, conv2 32, dense 64; the classifier's 10 stay
    assert pruned.channels == pytest.approx(0.5, abs=0.01)
    assert pruned.channels_all == pytest.approx(56 / 122, abs=0.01)
    assert pruned.macs_removed == pytest.approx(1 - pruned.macs / pruned.baseline_macs)
    assert 0.5 < pruned.macs_removed < 1
    metrics = for_pruning(pruned, 1, trained_model_path.parent).metrics
    assert metrics[results.CHANNELS_ALL] == pruned.channels_all
    assert metrics[results.MACS_REMOVED] == pruned.macs_removed


def _cli(tmp_path, *args):
    proc = run_cli([*TINY, *outputs_to(tmp_path), *args], cwd=tmp_path, command=pruneflow_command())
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "cache").exists()  # nothing was trained
    return proc.stderr.strip().splitlines()[-1]


def test_an_arch_that_is_no_classifier_is_one_line_with_the_nearest_names(tmp_path):
    line = _cli(tmp_path, "backbone=keras", "backbone.arch=efficientnet_b9")
    assert line.startswith("pruneflow: error: backbone.arch='efficientnet_b9' is invalid")
    assert "did you mean efficientnetb7" in line


def test_an_input_below_the_arch_smallest_is_one_line_naming_the_arch_size_and_fix(tmp_path):
    line = _cli(tmp_path, "backbone=keras", "backbone.arch=InceptionV3", "backbone.weights=null")
    assert re.search(r"dataset.image_size=\d+ is too small for backbone.arch=inceptionv3", line)
    assert "75x75" in line and "backbone.input_size to at least 75" in line
    line = _cli(tmp_path, "backbone=keras", "backbone.arch=xception", "backbone.input_size=64")
    assert (
        "backbone.input_size=64 is invalid" in line
        and ">= 71 (the smallest input of xception)" in line
    )


@pytest.mark.slow
def test_nasnet_with_channels_is_one_line_saying_why_nothing_can_go(tmp_path):
    line = _cli(
        tmp_path,
        "backbone=keras",
        "backbone.arch=NASNetMobile",
        "backbone.weights=null",
        "backbone.input_size=32",
        "prune.channels=0.5",
    )
    assert line.startswith(
        "pruneflow: error: prune.channels=0.5 is invalid: valid values are 0 (off) for "
        "nasnetmobile: none of its channel groups can be removed"
    )
    assert "a Concatenate" in line and "a separable convolution" in line
