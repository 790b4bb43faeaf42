"""`pruneflow inspect`: per layer what each technique can do with a model, read from a model
file written here by tf_keras, from a backbone as a run builds it, and from a run's model; its
CSV checked against what the model really has (Keras's own parameter counts, MACs by hand)."""

from __future__ import annotations

import csv
import importlib
import math
import re
import sys
from pathlib import Path

import pytest

from helpers.cli import compose, pruneflow_command, read_runs, run_cli

# A module that registers a custom layer, as a user's own code would (imported with --import).
LAYERS_MODULE = '''
import tf_keras as keras


@keras.utils.register_keras_serializable(package="mine")
class Scale(keras.layers.Layer):
    """One learned factor per channel."""

    def build(self, shape):
        self.factor = self.add_weight(name="factor", shape=(shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.factor
'''

# why b's and c's output channels stay: the channel analyzer's own words
CAT_KEPT = (
    "its output channels stay: cat: a Concatenate (its inputs' channels are not followed "
    "through it)"
)


def inspect_cli(tmp: Path, *args: str, timeout: float = 300):
    return run_cli(["inspect", *args], cwd=tmp, command=pruneflow_command(), timeout=timeout)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def one_line_error(proc, *words: str) -> str:
    """The command's stderr: one line starting ``pruneflow inspect: error:``, naming ``words``."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("pruneflow inspect: error: "), lines
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _layers_module(tmp: Path):
    (tmp / "mylayers.py").write_text(LAYERS_MODULE)
    sys.path.insert(0, str(tmp))
    try:
        return importlib.import_module("mylayers")
    finally:
        sys.path.remove(str(tmp))
        sys.modules.pop("mylayers", None)


def _model_with_everything(tmp: Path):
    """A functional tf_keras model with what keeps channels: a Concatenate, a grouped
    convolution, a custom layer, a sigmoid, the classifier; a depthwise convolution and a
    PReLU."""
    import tf_keras as keras

    scale = _layers_module(tmp).Scale
    L = keras.layers
    i = keras.Input((16, 16, 1), name="image")
    a = L.Conv2D(8, 3, padding="same", activation="relu", name="a")(i)
    b = L.Conv2D(8, 3, padding="same", activation="relu", name="b")(a)
    c = L.Conv2D(8, 3, padding="same", activation="relu", name="c")(a)
    x = L.Concatenate(name="cat")([b, c])
    x = L.Conv2D(16, 3, padding="same", groups=2, name="grouped")(x)
    x = scale(name="scale")(x)
    x = L.Conv2D(8, 1, activation="sigmoid", name="sig")(x)
    x = L.PReLU(shared_axes=[1, 2], name="prelu")(x)  # weights no tfmot registry holds
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.Conv2D(128, 1, activation="relu", name="wide")(x)  # 1024 weights: dynamic-range int8
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(i, L.Dense(10, activation="softmax", name="probs")(x), name="mine")


def test_a_model_file_with_a_concatenate_and_a_custom_layer_is_inspected(tmp_path):
    model = _model_with_everything(tmp_path)
    model.save(tmp_path / "mine.keras")
    proc = inspect_cli(tmp_path, "mine.keras", "--import", "mylayers", "--csv", "out/mine.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["layer"]: r for r in read_csv(tmp_path / "out" / "mine.csv")}
    # every layer, with Keras's own parameter count; MACs of a 3x3 conv by hand
    assert list(rows) == [la.name for la in model.layers]
    for layer in model.layers:
        assert int(rows[layer.name]["params"]) == layer.count_params(), layer.name
        assert rows[layer.name]["type"] == type(layer).__name__
    assert sum(int(r["params"]) for r in rows.values()) == model.count_params()
    assert int(rows["b"]["macs"]) == 16 * 16 * 3 * 3 * 8 * 8
    assert int(rows["grouped"]["macs"]) == 16 * 16 * 3 * 3 * 8 * 16  # 8 inputs per group
    assert rows["grouped"]["out_channels"] == "16"
    # channel pruning: what keeps channels, in its own words
    chan = {name: (r["channels"], r["channels_why"]) for name, r in rows.items()}
    assert chan["a"] == ("yes", "")
    # b and c: their input channels (a's) go, their own meet the Concatenate
    assert chan["b"] == chan["c"] == ("input", CAT_KEPT)
    assert chan["grouped"][0] == "no" and "grouped convolution (groups=2)" in chan["grouped"][1]
    assert chan["scale"][0] == "no" and "custom layer (Scale)" in chan["scale"][1]
    # sig's channels: kept by the PReLU it feeds (the analyzer's first reason for the group)
    assert chan["sig"] == chan["dw"] == ("no", "prelu: a PReLU (not followed channel by channel)")
    assert chan["probs"] == ("input", "its output channels stay: reaches the model's output")
    assert chan["cat"] == ("-", "")  # no weights: nothing to do
    # tfmot's registries and pruneflow's steps
    assert rows["a"]["prune"] == rows["a"]["cluster"] == rows["a"]["qat"] == "yes"
    assert rows["dw"]["prune"] == "no" and "DepthwiseConv2D" in rows["dw"]["prune_why"]
    assert rows["dw"]["qat"] == "yes"
    for technique in ("prune", "cluster", "qat"):
        assert rows["scale"][technique] == "no", technique
        assert "custom layer (Scale)" in rows["scale"][f"{technique}_why"]
    assert rows["scale"]["tflite_int8"] == "?"
    assert rows["prelu"]["prune"] == "no"
    assert rows["prelu"]["prune_why"] == "PReLU is not in tfmot's prune registry"
    assert rows["prelu"]["qat_why"] == "PReLU is not in tfmot's quantize registry: trained in float"
    assert rows["wide"]["tflite_dynamic"] == "yes" and rows["b"]["tflite_dynamic"] == "no"
    # the summary beside it: shares of Keras's parameters
    summary = {r["technique"]: r for r in read_csv(tmp_path / "out" / "mine_summary.csv")}
    pruned = [n for n, r in rows.items() if r["prune"] == "yes"]
    assert pruned == ["a", "b", "c", "grouped", "sig", "wide", "probs"]
    share = sum(model.get_layer(n).count_params() for n in pruned) / model.count_params()
    assert math.isclose(float(summary["prune"]["params_share"]), share, rel_tol=1e-5)
    assert "custom layer (Scale)" in proc.stdout and "channel pruning" in proc.stdout
    # without the module that registers it: one line naming the layer and the way in
    proc = inspect_cli(tmp_path, "mine.keras")
    assert proc.returncode == 2
    one_line_error(proc, "'Scale'", "--import")


@pytest.mark.parametrize(
    "args, words",
    [
        (["missing.keras"], ["missing.keras does not exist", ".h5", "SavedModel"]),
        (["notes.txt"], ["notes.txt is not a model tf_keras can load"]),
        (["--bogus"], ["unrecognized arguments: --bogus"]),
        (["backbone=cnn", "backbone.filterz=[8]"], ["backbone.filterz"]),
        (["backbone=resnet5"], ["backbone", "resnet50"]),
        (["mine.keras", "backbone=cnn"], ["give one of"]),
        (["backbone=cnn", "--classes", "0"], ["--classes 0 is invalid"]),
        (["notes.txt", "--classes", "3"], ["--classes 3 is invalid", "has its own"]),
        (["--run", "0123abcd"], ["no MLflow store at", "mlruns", "--tracking-uri"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, words):
    (tmp_path / "notes.txt").write_text("not a model\n")
    proc = inspect_cli(tmp_path, *args)
    assert proc.returncode in (1, 2), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    one_line_error(proc, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing made


def _built(overrides: list[str], classes: int):
    """The model as the command builds it, in a fresh Keras session (the layers' automatic
    names, `input_1`, count from the session's start: this process has built others)."""
    import tf_keras as keras

    from pruneflow.config import check, instantiate

    keras.backend.clear_session()

    config = check(compose(overrides))
    d = config.dataset
    return instantiate(config.backbone, (d.image_size, d.image_size, d.channels), classes)


def test_the_default_cnn_on_digits_as_a_run_builds_it(tmp_path):
    proc = inspect_cli(tmp_path, "backbone=cnn", "dataset=digits", "--csv", "cnn.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = _built(["backbone=cnn", "dataset=digits"], 10)  # the digits' ten classes
    rows = {r["layer"]: r for r in read_csv(tmp_path / "cnn.csv")}
    assert list(rows) == [la.name for la in model.layers]
    # every variant a Keras model is converted to; not backbone=tflite's file (made by nothing)
    assert "tflite_int8" in rows["conv1"] and "tflite_file" not in rows["conv1"]
    assert "tflite_file" not in proc.stdout
    assert {n: int(r["params"]) for n, r in rows.items()} == {
        la.name: la.count_params() for la in model.layers
    }
    assert int(rows["conv1"]["macs"]) == 28 * 28 * 3 * 3 * 1 * 16
    assert rows["probs"]["out_channels"] == "10"
    # every kernel is pruned, clustered, quantization-aware; conv1's and conv2's channels go
    for name in ("conv1", "conv2", "dense", "probs"):
        assert rows[name]["prune"] == rows[name]["cluster"] == rows[name]["qat"] == "yes"
    assert rows["conv1"]["channels"] == rows["conv2"]["channels"] == "yes"
    assert proc.stdout.startswith(f"cnn (backbone=cnn dataset=digits, untrained): {len(rows)} ")


def test_mobilenetv2_untrained_has_its_depthwise_layers_dense_and_no_qat(tmp_path):
    keys = ["backbone=mobilenetv2", "backbone.weights=null", "backbone.input_size=32"]
    proc = inspect_cli(tmp_path, *keys, "--classes", "3", "--csv", "m.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    from pruneflow.steps.model.measure import leaf_layers, macs

    model = _built(keys, 3)
    rows = read_csv(tmp_path / "m.csv")
    assert [r["layer"] for r in rows] == [la.name for la in leaf_layers(model)]
    assert sum(int(r["params"]) for r in rows) == model.count_params()
    assert sum(int(r["macs"]) for r in rows) == macs(model)
    depthwise = [r for r in rows if r["type"] == "DepthwiseConv2D"]
    assert len(depthwise) == 17 and all(r["prune"] == "no" for r in depthwise)
    weighted = [r for r in rows if int(r["params"])]
    assert all(r["qat"] == r["tflite_int8_qat"] == "no" for r in weighted)
    assert all("nests a model" in r["qat_why"] for r in weighted)
    assert all(r["tflite_int8"] == "yes" for r in weighted)
    assert re.search(r"quantization-aware training \(stage=qat\) +0 +0\.0% +0\.0%", proc.stdout)


def test_a_runs_model_is_read_from_the_store(console_sweep):
    """The stripped Keras model of a `+debug=tiny` job (the session's sweep, conftest.py)."""
    tmp, _ = console_sweep
    client, runs = read_runs(tmp)
    run = runs[0]
    proc = inspect_cli(tmp, "--run", run.info.run_id, "--csv", str(tmp / "inspect" / "run.csv"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = client.download_artifacts(run.info.run_id, "models/keras.keras", str(tmp / "dl"))
    import tf_keras as keras

    model = keras.models.load_model(path, compile=False)
    rows = read_csv(tmp / "inspect" / "run.csv")
    assert [(r["layer"], int(r["params"])) for r in rows] == [
        (la.name, la.count_params()) for la in model.layers
    ]
    assert proc.stdout.startswith(f"cnn (run {run.info.run_id}): ")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mine.h5", "mine_savedmodel"])
def test_an_h5_file_and_a_savedmodel_folder_read_as_the_keras_file(tmp_path, name):
    """The same model in tf_keras's other formats: the same layers, parameters and verdicts."""
    model = _model_with_everything(tmp_path)
    model.save(tmp_path / name)
    proc = inspect_cli(tmp_path, name, "--import", "mylayers", "--csv", "out.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["layer"]: r for r in read_csv(tmp_path / "out.csv")}
    assert {n: int(r["params"]) for n, r in rows.items()} == {
        la.name: la.count_params() for la in model.layers
    }
    assert rows["b"]["channels_why"] == CAT_KEPT
    assert rows["scale"]["prune"] == "no" and "custom layer" in rows["scale"]["prune_why"]
    assert rows["dw"]["prune"] == "no" and rows["wide"]["tflite_dynamic"] == "yes"


def test_an_activation_not_0_at_0_names_itself_as_the_reason():
    """A sigmoid's removed channels would be 0.5, not 0, where the next convolution reads them:
    its group stays, and the reason names the layer and its activation."""
    import tf_keras as keras

    from pruneflow.steps.model.inspect import channel_status

    L = keras.layers
    i = keras.Input((8, 8, 1))
    x = L.Conv2D(4, 3, activation="sigmoid", name="sig")(i)
    x = L.Conv2D(4, 3, activation="relu", name="next")(x)
    model = keras.Model(i, L.Dense(3)(L.GlobalAveragePooling2D()(x)))
    status, why = channel_status(model)["sig"]
    assert status == "no" and why.startswith("sig's activation (sigmoid) is not 0 at 0"), why
