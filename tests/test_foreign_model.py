"""Models tfmot cannot take: a .tflite file (``backbone=tflite``), and a Keras 3 ``.keras``
file, a subclassed model or a SavedModel not written by tf_keras (``backbone=file``, converted
only). Every file is written here by the tool a user would write it with: Keras 3 (in a child
process, without TF_USE_LEGACY_KERAS), ``tf.saved_model.save``, tf_keras and the TFLite
converter."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import TINY, compose, outputs_to, pruneflow_command, read_runs, run_cli
from pruneflow import pipeline
from pruneflow.results import ACCURACY, BASELINE_ACCURACY, GZIP, SIZE, latency, metric
from pruneflow.stats import MEASURES
from pruneflow.steps.model.foreign import why_not_tfmot

KERAS3 = """
import sys
import keras
inputs = keras.Input((28, 28, 1))
x = keras.layers.Rescaling(1 / 255)(inputs)
x = keras.layers.Conv2D(4, 3, activation="relu")(x)
x = keras.layers.GlobalAveragePooling2D()(x)
outputs = keras.layers.Dense(10, activation="softmax")(x)
keras.utils.set_random_seed(0)
keras.Model(inputs, outputs).save(sys.argv[1])
print(keras.__version__)
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: path} of small real models, each written by its own tool."""
    import tensorflow as tf
    import tf_keras as keras

    out = tmp_path_factory.mktemp("foreign")
    found = {"keras3": out / "keras3.keras"}
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # Keras 3 itself
    proc = subprocess.run(
        [sys.executable, "-c", KERAS3, str(found["keras3"])], env=env, capture_output=True
    )
    assert proc.returncode == 0 and proc.stdout.decode().startswith("3."), proc.stderr[-2000:]

    class Scaled(tf.Module):  # no Keras at all, taking 16x16 images
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_normal([256, 10], seed=[0, 1]))

        @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 1], tf.float32)])
        def serve(self, x):
            return {"probs": tf.nn.softmax(tf.reshape(x / 255.0, [-1, 256]) @ self.w)}

    module = Scaled()
    found["module"] = out / "module_savedmodel"
    tf.saved_model.save(module, str(found["module"]), signatures=module.serve)

    class Sub(keras.Model):  # a subclassed tf_keras model
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3, activation="relu")
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.probs = keras.layers.Dense(10, activation="softmax")

        def call(self, x):
            return self.probs(self.pool(self.conv(x / 255.0)))

    sub = Sub()
    sub(tf.zeros((1, 28, 28, 1)))
    found["subclassed"] = out / "subclassed_savedmodel"
    sub.save(found["subclassed"])  # tf_keras's SavedModel (keras_metadata.pb), subclassed

    inputs = keras.Input((28, 28, 1))
    functional = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    found["functional"] = out / "functional.keras"
    functional.save(found["functional"])
    found["functional_savedmodel"] = out / "functional_savedmodel"
    functional.save(found["functional_savedmodel"])
    return found


def test_what_tfmot_cannot_take_is_read_from_the_files(files):
    assert why_not_tfmot(files["keras3"]).startswith("a Keras 3 .keras file (Keras 3.")
    assert why_not_tfmot(files["module"]) == (
        "a SavedModel not written by tf_keras (no keras_metadata.pb)"
    )
    assert why_not_tfmot(files["subclassed"]).startswith("a subclassed model (class Sub")
    assert why_not_tfmot(files["functional"]) is None
    assert why_not_tfmot(files["functional_savedmodel"]) is None


def _run(tmp_path, *overrides):
    """The job of ``overrides`` in this process (the pipeline as the command line runs it)
    with the tiny budget: (its finished run, the output folder)."""
    out = tmp_path / "out"
    cfg = compose([*TINY, *outputs_to(tmp_path, hydra=False), *overrides])
    pipeline.run(cfg, output_dir=out)
    client, runs = read_runs(tmp_path)
    assert [r.info.status for r in runs] == ["FINISHED"]
    return client, runs[0], out


def _litert_predictions(path, x):
    """Each image's class by LiteRT itself, its int8 input scale and zero point from the file."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], [len(x), *x.shape[1:]])
    interp.allocate_tensors()
    pixels = x.astype(np.float32)
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        pixels = np.clip(np.round(pixels / scale + zero), -128, 127)
    interp.set_tensor(inp["index"], pixels.astype(inp["dtype"]))
    interp.invoke()
    return np.argmax(interp.get_tensor(out["index"]), axis=-1)


@pytest.mark.parametrize("variant", ["tflite_int8", "tflite_fp32"])
def test_a_tflite_file_is_the_one_variant_evaluated_as_litert_does(
    tmp_path, tflite_bench, digits, variant
):
    path = tflite_bench[0][variant]
    client, run, out = _run(tmp_path, "backbone=tflite", f"backbone.path={path}")
    m, params = run.data.metrics, run.data.params
    # image for image what LiteRT predicts on the same validation images
    with open(out / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["tflite_file"]) for r in rows] == _litert_predictions(path, digits.x_val).tolist()
    litert = np.mean(_litert_predictions(path, digits.x_val) == digits.y_val)
    assert m[metric("tflite_file", ACCURACY)] == pytest.approx(litert, abs=0)
    assert m[metric("tflite_file", ACCURACY)] > 0.5  # a trained model: not chance
    assert m[metric("tflite_file", SIZE)] == Path(path).stat().st_size
    assert 0 < m[metric("tflite_file", GZIP)] < Path(path).stat().st_size
    for stat in MEASURES:  # the paper's statistics, the first image apart
        assert metric("tflite_file", latency(stat)) in m, stat
    assert not [k for k in m if k.startswith("keras/")]  # no Keras model, no Keras numbers
    assert params["stage.variants.0"] == "tflite_file" and "stage.variants.1" not in params
    assert params["prune.sparsity"] == "0.0"  # the chain's default, not asked: nothing pruned
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "models")]
    assert artifacts == ["models/tflite_file.tflite"]


def test_a_keras3_file_is_converted_only_to_every_post_training_variant(tmp_path, files):
    client, run, out = _run(tmp_path, "backbone=file", f"backbone.path={files['keras3']}")
    m = run.data.metrics
    variants = ["tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]
    assert 0 <= m[BASELINE_ACCURACY] <= 1  # the model itself, in TensorFlow
    for v in variants:
        assert 0 <= m[metric(v, ACCURACY)] <= 1 and metric(v, latency("p50")) in m, v
    assert m[metric("tflite_fp32", ACCURACY)] == pytest.approx(m[BASELINE_ACCURACY], abs=0.01)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "models")}
    assert artifacts == {f"models/{v}.tflite" for v in variants}


@pytest.mark.parametrize("name", ["module", "subclassed"])
def test_a_savedmodel_tfmot_cannot_take_is_converted_its_input_sizing_the_data(
    tmp_path, files, name, caplog
):
    caplog.set_level("INFO")
    _, run, _ = _run(tmp_path, "backbone=file", f"backbone.path={files[name]}", "stage=int8")
    m = run.data.metrics
    assert {metric(v, ACCURACY) for v in ("tflite_fp32", "tflite_int8")} <= set(m)
    assert m[metric("tflite_fp32", ACCURACY)] == pytest.approx(m[BASELINE_ACCURACY], abs=0.01)
    if name == "module":  # 16x16 images: digits (28x28) resized to them, and the log says so
        assert "the model's input is 16x16x1: the data is resized to it" in caplog.text


TFLITE_REFUSALS = [
    (
        "prune.sparsity=0.5",
        "prune.sparsity=0.5 is invalid with backbone=tflite: valid values are 0",
    ),
    (
        "prune.channels=0.5",
        "prune.channels=0.5 is invalid with backbone=tflite: valid values are 0",
    ),
    (
        "cluster.clusters=8",
        "cluster.clusters=8 is invalid with backbone=tflite: valid values are 0",
    ),
    ("stage=int8", "stage.variants=['tflite_fp32', 'tflite_int8'] is invalid with backbone=tflite"),
    ("benchmark.keras=host", "benchmark.keras=host is invalid with backbone=tflite"),
]
FILE_REFUSALS = [
    ("keras3", "prune.sparsity=0.5", "prune.sparsity=0.5 is invalid with backbone.path="),
    ("keras3", "prune.channels=0.25", "prune.channels=0.25 is invalid with backbone.path="),
    ("keras3", "cluster.clusters=8", "cluster.clusters=8 is invalid with backbone.path="),
    ("keras3", "stage=qat", "stage.variants=['tflite_fp32', 'tflite_int8', 'tflite_int8_qat']"),
    ("module", "prune.sparsity=0.5", "prune.sparsity=0.5 is invalid with backbone.path="),
    ("module", "stage=qat", "stage.variants=['tflite_fp32', 'tflite_int8', 'tflite_int8_qat']"),
]


def _refused(tmp_path, args, says):
    proc = run_cli(["+debug=tiny", *outputs_to(tmp_path), *args], tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("pruneflow: error: ") and says in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "mlruns").exists()  # before any work: no store, so no run at all
    return proc.stderr


@pytest.mark.parametrize(("override", "says"), TFLITE_REFUSALS)
def test_what_needs_a_keras_model_is_refused_on_a_tflite_file(
    tmp_path, tflite_bench, override, says
):
    path = tflite_bench[0]["tflite_int8"]
    line = _refused(tmp_path, ["backbone=tflite", f"backbone.path={path}", override], says)
    assert "backbone=file backbone.path=" in line  # what to do


@pytest.mark.parametrize(("name", "override", "says"), FILE_REFUSALS)
def test_what_needs_tfmot_is_refused_on_a_model_it_cannot_take(
    tmp_path, files, name, override, says
):
    line = _refused(tmp_path, ["backbone=file", f"backbone.path={files[name]}", override], says)
    why = "a Keras 3 .keras file" if name == "keras3" else "a SavedModel not written by tf_keras"
    assert why in line and "re-save it with tf_keras" in line


def test_a_file_that_is_no_tflite_and_the_file_stage_elsewhere_are_one_line(tmp_path, files):
    says = f"backbone.path='{files['keras3']}' is invalid: valid values are the path of a .tflite"
    _refused(tmp_path, ["backbone=tflite", f"backbone.path={files['keras3']}"], says)
    says = "stage.variants=['tflite_file'] is invalid for backbone=cnn"
    (tmp_path / "cnn").mkdir()
    _refused(tmp_path / "cnn", ["stage=file"], says)


# slow: each is a whole console-script job (~45 s here, mostly starting the store and
# TensorFlow); the in-process tests above run the same pipeline
@pytest.mark.slow
@pytest.mark.parametrize("route", ["tflite", "keras3"])
def test_the_console_script_runs_each_route(tmp_path, tflite_bench, files, route):
    path = tflite_bench[0]["tflite_int8"] if route == "tflite" else files["keras3"]
    backbone = "tflite" if route == "tflite" else "file"
    proc = run_cli(
        ["+debug=tiny", *outputs_to(tmp_path), f"backbone={backbone}", f"backbone.path={path}"],
        cwd=tmp_path,
        command=pruneflow_command(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, runs = read_runs(tmp_path)
    assert [r.info.status for r in runs] == ["FINISHED"]
    variant = "tflite_file" if route == "tflite" else "tflite_int8"
    assert 0 <= runs[0].data.metrics[metric(variant, ACCURACY)] <= 1


def test_the_file_keys_the_job_by_its_content(tmp_path, tflite_bench, files):
    """Edited in place, another job; the same bytes (a folder's too) elsewhere, the same job."""
    import shutil

    from pruneflow.config import check

    def key(backbone, path):
        return check(compose([f"backbone={backbone}", f"backbone.path={path}"])).job_key

    tflite = tmp_path / "model.tflite"
    shutil.copyfile(tflite_bench[0]["tflite_int8"], tflite)
    first = key("tflite", tflite)
    shutil.copyfile(tflite, tmp_path / "copy.tflite")
    assert key("tflite", tmp_path / "copy.tflite") == first
    shutil.copyfile(tflite_bench[0]["tflite_fp32"], tflite)  # edited in place
    assert key("tflite", tflite) != first
    folder = tmp_path / "savedmodel"
    shutil.copytree(files["module"], folder)
    before = key("file", folder)
    assert key("file", files["module"]) == before
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"changed")
    assert key("file", folder) != before


@pytest.mark.needs("sshd")
def test_a_tflite_file_is_timed_on_an_ssh_device(tmp_path, tflite_bench):
    """The device path every run takes: shipped, timed and fetched over a real sshd."""
    from helpers.sshd import PrivateSSHD

    path = tflite_bench[0]["tflite_int8"]
    with PrivateSSHD(tmp_path / "sshd") as sshd:
        ssh = sshd.device_overrides(python=sys.executable)
        _, run, _ = _run(tmp_path, "backbone=tflite", f"backbone.path={path}", *ssh)
    m, tags = run.data.metrics, run.data.tags
    assert tags["device"] == "ssh" and tags["timed_on/tflite_file"] == "ssh"
    assert m[metric("tflite_file", latency("p50"))] > 0 and m["device/upload_s"] > 0
    assert "timed_on/keras" not in tags  # no Keras model, none timed anywhere


def test_pixels_reach_a_converted_model_as_it_takes_them(files, tmp_path, caplog):
    """backbone.pixels on the conversion-only route: `auto` reads a .keras file's first layer
    (a Rescaling: raw 0..255; none: 0..1, as for a tf_keras file); a model whose layers cannot
    be read gets raw pixels and the log says how to change it; `unit` wraps the model so that
    it takes raw pixels and sees 0..1 (every variant is converted from that wrapper)."""
    import logging

    from pruneflow.steps.model import foreign
    from pruneflow.steps.model.config import FileConfig

    def auto(name):
        return foreign.pixels_for(FileConfig(path=str(files[name])))

    assert auto("keras3") == "raw"  # its Rescaling(1/255) comes first
    assert auto("functional") == "unit"  # Flatten first: it takes what it was trained on
    with caplog.at_level(logging.INFO, logger=foreign.__name__):
        assert auto("module") == "raw"
    assert "backbone.pixels=unit gives 0..1" in caplog.text
    assert foreign.pixels_for(FileConfig(path=str(files["module"]), pixels="symmetric")) == (
        "symmetric"
    )

    source = foreign.load_source(str(files["module"]), tmp_path / "source")
    raw = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 1)).astype(np.float32)
    unit = foreign.with_pixels(source, "unit", tmp_path / "source")
    np.testing.assert_allclose(unit.predict(raw), source.predict(raw / 255.0), rtol=1e-5)
    assert foreign.with_pixels(source, "raw", tmp_path / "source") is source
