"""Channel pruning (prune.channels): the channel groups of every backbone's real graph, a
rebuilt thin model equal to the original with those channels masked, its composition with
unstructured pruning, int8 and QAT, and bad input refused before any training."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from helpers.cli import TINY, outputs_to, read_runs, run_cli
from helpers.models import cnn, prune_quick, transfer
from pruneflow import results

BACKBONES = {  # small inputs, random weights (offline)
    "cnn": lambda: cnn((28, 28, 1), 10),
    "vgg16": lambda: transfer((32, 32, 3), 3, "vgg16", weights=None),
    "mobilenetv2": lambda: transfer((32, 32, 3), 3, "mobilenetv2", weights=None),
    "resnet50": lambda: transfer((32, 32, 3), 3, "resnet50", weights=None),
}


def _options(**keys):
    """The prune schema with channel pruning on (its defaults unless ``keys`` say otherwise)."""
    from pruneflow.steps.prune.config import PruneConfig

    return PruneConfig(**{"channels": 0.5, **keys})


def _random_batchnorm(model, seed: int = 0) -> None:
    """BatchNorm statistics away from their initial 1/0, so a channel that is not zero where
    it should be shows in the outputs."""
    from pruneflow.steps.model.measure import leaf_layers

    rng = np.random.default_rng(seed)
    for layer in leaf_layers(model):
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.3, beta.shape).astype("float32"),
                    rng.normal(0, 0.3, mean.shape).astype("float32"),
                    rng.uniform(0.5, 1.5, var.shape).astype("float32"),
                ]
            )


@pytest.mark.parametrize("distribution", ["uniform", "global"])
@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_the_thin_model_equals_the_original_with_those_channels_masked(backbone, distribution):
    from pruneflow.steps.model.measure import macs
    from pruneflow.steps.prune import channels

    model = BACKBONES[backbone]()
    _random_batchnorm(model)
    criterion = "l1" if backbone == "cnn" else "bn"
    plan = channels.plan(
        model, 0.5, _options(channel_criterion=criterion, channel_distribution=distribution)
    )
    thin, masked = channels.rebuild(model, plan), channels.masked(model, plan)
    x = np.random.default_rng(1).uniform(0, 255, (4, *model.input_shape[1:])).astype("float32")
    original, want, got = model(x).numpy(), masked(x).numpy(), thin(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(original - want).max() > 1e-3  # the masked channels mattered
    assert abs(plan.removed_fraction - 0.5) < 0.05
    assert thin.count_params() < 0.4 * model.count_params()
    # uniform: half of every layer's filters and half its inputs; global spreads unevenly
    assert macs(thin) <= (0.3 if distribution == "uniform" else 0.6) * macs(model)
    # the nested backbone stays nested (training freezes it by name)
    assert [la.name for la in thin.layers] == [la.name for la in model.layers]


def _group_with(graph, layer):
    return next(g for g in graph.groups.values() if layer in (*g.producers, *g.followers))


def test_each_backbones_channel_groups():
    from pruneflow.steps.prune import channels

    g = channels.analyze(BACKBONES["cnn"]())
    dense = _group_with(g, "conv2")
    assert dense.consumers == [("dense", 7 * 7)]  # Flatten -> Dense: each channel at 49 places
    assert _group_with(g, "probs").kept_because  # the classifier's outputs (softmax) stay
    assert set(g.prunable()) == {g.find(g.group_of[n]) for n in ("conv1", "conv2", "dense")}

    g = channels.analyze(BACKBONES["mobilenetv2"]())
    residual = _group_with(g, "block_2_project")  # block_2_add joins block 1 and 2
    assert {"block_1_project", "block_2_project"} <= set(residual.producers)
    assert {"block_1_project_BN", "block_2_project_BN"} <= set(residual.followers)
    assert not residual.kept_because
    expand = _group_with(g, "block_2_expand")  # the expansion's depthwise follows it
    assert {"block_2_expand_BN", "block_2_depthwise", "block_2_depthwise_BN"} <= set(
        expand.followers
    )
    assert _group_with(g, "Conv_1").consumers == [("probs", 1)]  # via the global pooling

    g = channels.analyze(BACKBONES["resnet50"]())
    stage = _group_with(g, "conv2_block1_0_conv")  # the shortcut and every block's last conv
    assert set(stage.producers) == {
        "conv2_block1_0_conv",
        "conv2_block1_3_conv",
        "conv2_block2_3_conv",
        "conv2_block3_3_conv",
    }
    inner = _group_with(g, "conv2_block1_1_conv")
    assert inner.producers == ["conv2_block1_1_conv"] and inner.followers == ["conv2_block1_1_bn"]

    g = channels.analyze(BACKBONES["vgg16"]())
    assert all(len(grp.producers) == 1 for grp in g.prunable().values())
    assert len(g.prunable()) == 13  # every convolution; the classifier's outputs are kept


def test_residual_groups_share_one_mask():
    from pruneflow.steps.prune import channels

    model = BACKBONES["mobilenetv2"]()
    plan = channels.plan(model, 0.5, _options())
    np.testing.assert_array_equal(plan.kept("block_1_project"), plan.kept("block_2_project"))
    assert len(plan.kept("block_1_project")) == 12  # of 24
    thin = channels.rebuild(model, plan)
    assert thin.get_layer("base").get_layer("block_2_add").output_shape[-1] == 12


def test_kept_layers_and_the_minimum():
    from pruneflow.steps.prune import channels

    model = BACKBONES["cnn"]()
    plan = channels.plan(model, 0.9, _options(channel_exclude=["conv1"], channel_min=8))
    counts = plan.channels()
    assert counts["conv1"] == (16, 16) and counts["conv2"] == (32, 8) and counts["dense"][1] == 8
    plan = channels.plan(model, 0.5, _options(channel_keep_first_last=True))
    assert plan.channels()["conv1"] == (16, 16) and plan.channels()["dense"] == (64, 64)
    assert plan.channels()["conv2"] == (32, 16)


def test_channels_compose_with_sparsity_int8_and_qat(tmp_path, trained_model_path, digits):
    from pruneflow.results import KERAS
    from pruneflow.steps.convert.config import StageConfig
    from pruneflow.steps.convert.convert import export_models
    from pruneflow.steps.evaluate import evaluate
    from pruneflow.steps.quantize.qat import quantize_aware

    pruned = prune_quick(trained_model_path, digits, sparsity=0.5, channels=0.5)
    assert abs(pruned.channels - 0.5) < 0.02 and abs(pruned.sparsity - 0.5) < 0.05
    assert pruned.macs <= 0.3 * pruned.baseline_macs
    rows = {r["layer"]: r for r in pruned.layers}
    assert (rows["conv2"]["channels_before"], rows["conv2"]["channels_after"]) == (32, 16)
    assert rows["probs"]["channels_after"] == 10
    stage = StageConfig(variants=["tflite_int8", "tflite_int8_qat"], qat_epochs=1)
    qat = quantize_aware(pruned.model, digits, stage, batch_size=64, seed=0)
    paths = export_models(
        pruned.model, stage.variants, tmp_path, digits.train_sample(16, seed=0), qat_model=qat
    )
    acc = evaluate(
        {KERAS: pruned.model, **{v: p for v, p in paths.items() if v != KERAS}},
        digits.x_val,
        digits.y_val,
    )
    assert all(a > 0.5 for a in acc.values()), acc  # ten classes: chance is 0.1


def test_gradual_removes_a_share_every_epoch(trained_model_path, digits):
    pruned = prune_quick(
        trained_model_path,
        digits,
        sparsity=0.0,
        channels=0.5,
        channel_schedule="gradual",
        epochs=2,
    )
    assert abs(pruned.channels - 0.5) < 0.03
    assert len(pruned.history["loss"]) == 2


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("prune.channels=1.0", "prune.channels=1.0 is invalid: valid values are floats in [0, 1)"),
        ("prune.channels=-0.25", "prune.channels=-0.25 is invalid"),
        ("prune.channel_min=0", "prune.channel_min=0 is invalid: valid values are integers >= 1"),
        ("prune.channel_criterion=l3", "prune.channel_criterion='l3' is invalid"),
        ("prune.channel_exclude=[conv9]", "prune.channel_exclude=['conv9'] is invalid"),
    ],
)
def test_bad_channel_settings_are_one_line_before_any_training(tmp_path, override, says):
    proc = run_cli([*TINY, *outputs_to(tmp_path), "prune.channels=0.5", override], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert says in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "cache").exists()  # no baseline was trained


def test_the_job_key_ignores_channel_keys_while_channels_are_off(cfg_tiny):
    from pruneflow.config import check

    base = check(cfg_tiny).job_key
    cfg_tiny.prune.channel_criterion = "bn"
    assert check(cfg_tiny).job_key == base  # stores made before channel pruning resume
    cfg_tiny.prune.channels = 0.5
    thin = check(cfg_tiny).job_key
    cfg_tiny.prune.channel_criterion = "l1"
    assert len({base, thin, check(cfg_tiny).job_key}) == 3


def test_a_sweep_over_channels_logs_their_cost_and_ends_with_a_report_that_has_them(tmp_path):
    """`pruneflow -m prune.channels=0,0.5 prune.sparsity=0 stage=int8` (the console script):
    real runs with channels, MACs and the per-layer channels in prune/layers.csv; the report at
    the sweep's end keeps the two apart and plots latency and MACs against channels."""
    from helpers.cli import sweep_cli

    proc = sweep_cli(tmp_path, "prune.channels=0,0.5", "prune.sparsity=0", "stage=int8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, runs = read_runs(tmp_path)
    assert sorted(r.info.run_name for r in runs) == ["digits-cnn-s0", "digits-cnn-s0-c0.5"]
    thin, full = sorted(runs, key=lambda r: -float(r.data.params["prune.channels"]))
    m = thin.data.metrics
    assert abs(m[results.CHANNELS] - 0.5) < 0.02 and full.data.metrics[results.CHANNELS] == 0
    assert 0 < m[results.MACS] <= 0.3 * m[results.BASELINE_MACS]
    assert m[results.BASELINE_MACS] == full.data.metrics[results.MACS]
    # of the whole model: the classifier's 10 outputs stay, so less than 0.5 of all channels
    assert 0.4 < m[results.CHANNELS_ALL] < m[results.CHANNELS]
    assert m[results.MACS_REMOVED] == pytest.approx(1 - m[results.MACS] / m[results.BASELINE_MACS])
    assert m["tflite_int8/accuracy"] > 0.5
    path = client.download_artifacts(thin.info.run_id, "prune/layers.csv", str(tmp_path))
    rows = {r["layer"]: r for r in csv.DictReader(open(path))}
    assert rows["conv1"]["channels_before"] == "16" and rows["conv1"]["channels_after"] == "8"
    assert "best sparsity/channels (non-inferior within" in proc.stdout, proc.stdout[-2000:]
    report = tmp_path / "multirun" / "report"
    assert (report / "latency_vs_channels.png").is_file()
    assert (report / "macs_vs_channels.png").is_file()
    text = (report / "report.md").read_text()
    assert "channels" in text


def test_channels_a_layer_cannot_follow_are_kept_and_the_rest_still_exact():
    """A Concatenate in the middle and a layer called twice: their channels stay, the other
    layers' go, and the thin model still equals the masked one."""
    import tf_keras as keras

    from pruneflow.steps.prune import channels

    layers = keras.layers
    x = inputs = keras.Input((16, 16, 3))
    a = layers.Conv2D(8, 3, padding="same", activation="relu", name="a")(x)
    b = layers.Conv2D(8, 3, padding="same", activation="relu", name="b")(x)
    x = layers.Concatenate(name="cat")([a, b])
    x = layers.Conv2D(12, 3, padding="same", name="c")(x)
    x = layers.BatchNormalization(name="c_bn")(x)
    x = layers.ReLU(name="c_relu")(x)
    twice = layers.Conv2D(12, 1, name="twice")
    x = layers.Add(name="add")([twice(x), twice(layers.ReLU(name="r2")(x))])
    x = layers.Conv2D(10, 3, padding="same", activation="relu", name="d")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(4, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs)
    _random_batchnorm(model)
    graph = channels.analyze(model)
    assert "cat" in _group_with(graph, "a").kept_because
    assert "twice" in _group_with(graph, "c").kept_because
    plan = channels.plan(model, 0.5, _options())
    assert set(plan.channels()) >= {"d"} and plan.channels()["d"] == (10, 5)
    assert plan.channels()["a"] == (8, 8) and plan.channels()["c"] == (12, 12)
    thin, masked = channels.rebuild(model, plan), channels.masked(model, plan)
    x = np.random.default_rng(2).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(thin(x).numpy(), masked(x).numpy(), atol=1e-5)
