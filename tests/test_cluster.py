"""Weight clustering (cluster.clusters) and tfmot's collaborative chain: zeros preserved by
sparsity-preserving clustering, the centroids counted in the .tflite files, cluster-preserving
QAT (CQAT, PCQAT), clustering of a thin and of a nested model, bad input refused before any
training, and a real sweep over clusters through the console script to its report."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from helpers.cli import TINY, compose, outputs_to, read_runs, run_cli
from helpers.models import prune_quick, transfer
from pruneflow import results
from pruneflow.errors import ArgumentError, ConfigError
from pruneflow.steps.cluster.cluster import cluster_model, clustered_weight
from pruneflow.steps.cluster.config import ClusterConfig
from pruneflow.steps.convert.config import StageConfig
from pruneflow.steps.convert.convert import export_models, unique_weights, weight_sparsity
from pruneflow.steps.evaluate import tflite_accuracy
from pruneflow.steps.model.measure import leaf_layers
from pruneflow.steps.prune.prune import kernel_arrays, sparsity_of
from pruneflow.steps.quantize.qat import quantize_aware, scheme_for

CHAIN = ["tflite_fp32", "tflite_int8", "tflite_int8_qat"]


def _cluster(model, data, clusters=8, preserve=True, **keys):
    config = ClusterConfig(clusters=clusters, **{"epochs": 1, **keys})
    return cluster_model(model, data, config, preserve_sparsity=preserve, batch_size=64, seed=0)


def _kernels(model, names):
    return {la.name: clustered_weight(la).numpy() for la in leaf_layers(model) if la.name in names}


def test_sparsity_preserving_clustering_and_pcqat_keep_zeros_and_centroids_into_the_files(
    trained_model_path, digits, tmp_path
):
    """A 50%-pruned digits CNN clustered to 8 centroids: every kernel's zeros stay zeros, at
    most 8 values per kernel; PCQAT's int8 file and the fp32 and PTQ int8 files hold
    the same zeros and at most 8 values per tensor (per channel where int8 scales channels
    apart); the unclustered file holds hundreds."""
    pruned = prune_quick(trained_model_path, digits, sparsity=0.5)
    before = {n: a.copy() for n, a in _kernels(pruned.model, ["conv1", "conv2", "dense"]).items()}
    unclustered = export_models(
        pruned.model, ["tflite_int8"], tmp_path / "u", digits.train_sample(16)
    )
    clustered = _cluster(pruned.model, digits, clusters=8)
    assert clustered.layers == ["conv1", "conv2", "dense", "probs"]
    after = _kernels(clustered.model, clustered.layers)
    for name, kernel in before.items():
        assert not after[name][kernel == 0].any(), name  # pruning's zeros stay zeros
    assert max(len(np.unique(k)) for k in after.values()) <= 8 == clustered.unique_weights
    # weights whose nearest centroid is the zero one join the zeros: a few more, not fewer
    assert 0 <= sparsity_of(kernel_arrays(clustered.model)) - pruned.sparsity < 0.01

    stage = StageConfig(CHAIN, qat_epochs=1, qat_learning_rate=1e-4)
    qat = quantize_aware(clustered.model, digits, stage, batch_size=64, seed=0, scheme="pcqat")
    paths = export_models(
        clustered.model, CHAIN, tmp_path / "c", digits.train_sample(16), qat_model=qat
    )
    for variant in CHAIN:
        assert unique_weights(paths[variant], clustered.layers) <= 8, variant
        assert weight_sparsity(paths[variant]) == pytest.approx(pruned.sparsity, abs=0.01), variant
    assert unique_weights(unclustered["tflite_int8"], clustered.layers) > 100
    fp32 = tflite_accuracy(paths["tflite_fp32"], digits.x_val, digits.y_val)
    pcqat = tflite_accuracy(paths["tflite_int8_qat"], digits.x_val, digits.y_val)
    assert fp32 > 0.8 and abs(pcqat - fp32) < 0.05  # not the chance score of a broken scheme


def test_cqat_keeps_the_centroids_of_a_dense_model_and_the_scheme_follows_the_model(
    trained_model_path, digits, tmp_path
):
    from pruneflow.steps.train.train import load_model

    assert [scheme_for(c, p) for c, p in ((0, 0), (0, 1), (1, 0), (1, 1))] == [
        "pqat",
        "pqat",
        "cqat",
        "pcqat",
    ]
    clustered = _cluster(load_model(trained_model_path), digits, clusters=4, preserve=False)
    stage = StageConfig(["tflite_int8_qat"], qat_epochs=1, qat_learning_rate=1e-4)
    qat = quantize_aware(clustered.model, digits, stage, batch_size=64, seed=0, scheme="cqat")
    paths = export_models(
        clustered.model, stage.variants, tmp_path, digits.train_sample(16), qat_model=qat
    )
    assert unique_weights(paths["tflite_int8_qat"], clustered.layers) <= 4
    with pytest.raises(ArgumentError, match="scheme='qat' is invalid"):
        quantize_aware(clustered.model, digits, stage, batch_size=64, seed=0, scheme="qat")


def test_clustering_composes_with_channel_pruning_and_a_nested_backbone(trained_model_path, digits):
    """The thin model is clustered as it is (its channels stay removed); a keras.applications
    base is clustered inside its functional model, layer selection included."""
    thin = prune_quick(trained_model_path, digits, sparsity=0.0, channels=0.5)
    shapes = {n: k.shape for n, k in _kernels(thin.model, ["conv1", "conv2", "dense"]).items()}
    clustered = _cluster(thin.model, digits, clusters=8, preserve=False, exclude_layers=["probs"])
    assert "probs" not in clustered.layers and clustered.unique_weights <= 8
    kernels = _kernels(clustered.model, shapes)
    assert {n: k.shape for n, k in kernels.items()} == shapes  # still thin
    assert shapes["conv1"][-1] == 8
    probs = _kernels(clustered.model, ["probs"])["probs"]
    assert len(np.unique(probs)) > 8  # excluded: left as it was

    nested = transfer((32, 32, 3), 3, "mobilenetv2", weights=None)  # no training: no data
    out = _cluster(nested, digits, clusters=16, preserve=False, epochs=0, layer_types=["Conv2D"])
    kinds = {la.name: type(la).__name__ for la in leaf_layers(out.model)}
    assert len(out.layers) > 30 and {kinds[n] for n in out.layers} == {"Conv2D"}
    assert out.unique_weights <= 16


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("cluster.clusters=1", "cluster.clusters=1 is invalid: valid values are 0 (no "),
        ("cluster.init=kmeans", "cluster.init='kmeans' is invalid: valid values are ['kmeans_"),
        ("cluster.layer_types=[DepthwiseConv2D]", "it has no weight to cluster in Depthwise"),
        ("cluster.exclude_layers=[conv9]", "cluster.exclude_layers=['conv9'] is invalid"),
        (
            "cluster.clusters=200",
            "cluster.clusters=200 is invalid: valid values are integers from 2 to 143: layer "
            "conv1 has 144 weights",
        ),
        (  # the thin model's layers: conv1 keeps 8 of its 16 filters
            "cluster.clusters=100 prune.channels=0.5",
            "integers from 2 to 71: layer conv1 has 72 weights",
        ),
    ],
)
def test_bad_cluster_settings_are_one_line_before_any_run(tmp_path, override, says):
    from pruneflow import pipeline

    cfg = compose(
        [*TINY, *outputs_to(tmp_path, hydra=False), "cluster.clusters=8", *override.split()]
    )
    with pytest.raises(ConfigError) as err:
        pipeline.run(cfg)
    assert says in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "cache").exists()


def test_the_console_script_refuses_too_many_clusters_in_one_line(tmp_path):
    proc = run_cli([*TINY, *outputs_to(tmp_path), "cluster.clusters=1000"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("pruneflow: error: cluster.clusters=1000 is invalid")
    ), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "cache").exists()


def test_the_job_key_ignores_cluster_keys_while_clustering_is_off(cfg_tiny):
    from pruneflow.config import check

    base = check(cfg_tiny)
    cfg_tiny.cluster.init = "linear"
    assert check(cfg_tiny).job_key == base.job_key  # stores made before clustering resume
    cfg_tiny.cluster.clusters = 16
    shared = check(cfg_tiny)
    cfg_tiny.cluster.init = "random"
    assert len({base.job_key, shared.job_key, check(cfg_tiny).job_key}) == 3
    assert shared.run_name == base.run_name + "-cl16"


def test_a_sweep_over_clusters_logs_the_chain_and_ends_with_a_report_that_has_them(tmp_path):
    """`pruneflow -m cluster.clusters=0,8 prune.sparsity=0.5 stage=qat` (the console script):
    the clustered run's files hold at most 8 values per tensor and pruning's zeros, its QAT
    variant is tagged PCQAT, prune/layers.csv counts each layer's values, and the report at the
    sweep's end plots gzip size against clusters."""
    from helpers.cli import sweep_cli

    proc = sweep_cli(tmp_path, "cluster.clusters=0,8", "prune.sparsity=0.5", "stage=qat")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for phase in ("cluster", "qat"):  # the console says each epoch of both
        assert f"{phase} epoch 1/" in proc.stdout + proc.stderr, phase
    client, runs = read_runs(tmp_path)
    by_name = {r.info.run_name: r for r in runs}
    assert sorted(by_name) == ["digits-cnn-s0.5", "digits-cnn-s0.5-cl8"]
    shared, plain = by_name["digits-cnn-s0.5-cl8"], by_name["digits-cnn-s0.5"]
    m = shared.data.metrics
    for variant in ("keras", *CHAIN):
        assert 2 <= m[results.metric(variant, results.UNIQUE_WEIGHTS)] <= 8, variant
    for variant in CHAIN:
        assert m[results.metric(variant, results.FILE_SPARSITY)] == pytest.approx(0.5, abs=0.02)
        assert (
            m[results.metric(variant, "gzip_bytes")]
            < plain.data.metrics[results.metric(variant, "gzip_bytes")]
        ), variant
    assert not any(k.endswith(results.UNIQUE_WEIGHTS) for k in plain.data.metrics)
    assert shared.data.tags[results.QAT_SCHEME_TAG] == "pcqat"
    assert plain.data.tags[results.QAT_SCHEME_TAG] == "pqat"
    assert m["tflite_int8_qat/accuracy"] > 0.5
    path = client.download_artifacts(shared.info.run_id, "prune/layers.csv", str(tmp_path))
    rows = {r["layer"]: r for r in csv.DictReader(open(path))}
    assert rows["dense"]["clustered"] == "True" and 2 <= int(rows["dense"]["unique_values"]) <= 8
    assert (tmp_path / "multirun" / "report" / "gzip_vs_clusters.png").is_file()


def test_a_layer_with_fewer_nonzero_weights_than_clusters_is_left_as_it_is(
    trained_model_path, digits
):
    """S = 0.9 spread uniformly leaves conv1 14 of its 144 weights: 16 clusters would be more
    centroids than weights (tfmot's k-means++ fails), and it holds at most 15 values anyway."""
    pruned = prune_quick(trained_model_path, digits, sparsity=0.9, distribution="uniform")
    clustered = _cluster(pruned.model, digits, clusters=16)
    assert "conv1" not in clustered.layers and "dense" in clustered.layers
    for name, kernel in _kernels(clustered.model, ["conv1", "conv2", "dense", "probs"]).items():
        assert len(np.unique(kernel)) <= 17, name
