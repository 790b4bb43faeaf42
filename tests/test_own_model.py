"""Your own model (``backbone=file backbone.path=...``): real tf_keras files written here
(.keras, .h5, a SavedModel folder), a model with a custom layer, and the bad inputs, through the
``pruneflow`` console script as a user runs it."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pruneflow  # noqa: F401 - TF_USE_LEGACY_KERAS before TensorFlow
from helpers.cli import TINY, clean_env, compose, outputs_to, pruneflow_command, run_cli

# The digits at the size of the models below (their input sets dataset.image_size).
SIZE = 16

LAYERS_MODULE = '''
import tf_keras as keras


@keras.saving.register_keras_serializable(package="mine")
class Scale(keras.layers.Layer):
    """A per-channel learned scale: a layer no optimization knows."""

    def build(self, input_shape):
        self.gain = self.add_weight(name="gain", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.gain


@keras.saving.register_keras_serializable(package="mine")
class Project(keras.layers.Layer):
    """A dense layer of the user's own: nothing pruning knows."""

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(input_shape[-1], 10), initializer="ones")

    def call(self, x):
        return x @ self.w
'''


def conv_model(channels: int = 1, classes: int = 10, softmax: bool = False, seed: int = 0):
    """A tiny functional CNN of SIZE x SIZE images with ``classes`` outputs (logits, or
    probabilities with ``softmax``)."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, channels))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    activation = "softmax" if softmax else None
    outputs = keras.layers.Dense(classes, activation=activation, name="logits")(x)
    return keras.Model(inputs, outputs)


def save(model, path):
    """``model`` written as tf_keras writes ``path``: a .keras or .h5 file, else a SavedModel."""
    model.save(str(path))
    return str(path)


def with_custom_layer(tmp_path):
    """A model with a layer of the user's own (module ``my_layers`` in ``tmp_path``)."""
    import importlib

    import tf_keras as keras

    (tmp_path / "my_layers.py").write_text(LAYERS_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        Scale = importlib.import_module("my_layers").Scale
    finally:
        sys.path.remove(str(tmp_path))
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = Scale(name="scale")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(x)
    return save(keras.Model(inputs, outputs), tmp_path / "custom.keras")


def cli(tmp_path, *args, env=None):
    """``pruneflow backbone=file ARGS +debug=tiny``, every output under ``tmp_path``."""
    return run_cli(
        [*TINY, "backbone=file", *args, *outputs_to(tmp_path)],  # ARGS override the budget
        cwd=tmp_path,
        command=pruneflow_command(),
        env=env,
    )


def refused(proc) -> str:
    """The one line of a refused run (exit 2: a bad value), checked to be just that."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("pruneflow: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def own_predictions(path) -> np.ndarray:
    """What the model at ``path`` itself predicts for the validation images pruneflow uses
    (digits at SIZE, seed 42), fed 0..1 pixels as it was made for."""
    import tf_keras as keras

    from helpers.models import digits

    data = digits(seed=42, image_size=SIZE)
    model = keras.models.load_model(path, compile=False)
    return np.argmax(model.predict(data.x_val / 255.0, verbose=0), axis=1)


def column(path, name: str) -> np.ndarray:
    with open(path) as fh:
        return np.array([int(row[name]) for row in csv.DictReader(fh)])


# -- bad input: one line each, before any work ----------------------------------------------


def test_a_path_that_does_not_exist_or_is_no_model_is_one_line(tmp_path):
    (tmp_path / "notes.keras").write_text("not a model")
    for path, words in [
        (tmp_path / "missing.keras", "that exists (it does not)"),
        (tmp_path / "notes.keras", "this file is none of them"),
        (tmp_path, "a folder without saved_model.pb"),
    ]:
        line = refused(cli(tmp_path, f"backbone.path={path}"))
        assert f"backbone.path='{path}' is invalid" in line and words in line, line
        assert ".keras file, a .h5 file or a SavedModel folder" in line
    assert not (tmp_path / "mlruns").exists()  # no run, no store: nothing was started


def test_a_class_count_or_channel_mismatch_is_one_line(tmp_path):
    three = save(conv_model(classes=3), tmp_path / "three.keras")
    rgb = save(conv_model(channels=3), tmp_path / "rgb.h5")
    line = refused(cli(tmp_path, f"backbone.path={three}"))
    assert "has 3 classes, dataset=digits 10" in line and "backbone.head=new" in line, line
    line = refused(cli(tmp_path, f"backbone.path={rgb}"))
    assert "takes 3-channel images, dataset=digits has 1" in line, line
    # a new head trained by nothing is refused too
    line = refused(cli(tmp_path, f"backbone.path={three}", "backbone.head=new", "train.epochs=0"))
    assert "train.epochs=0 is invalid with backbone.head=new" in line, line
    assert not (tmp_path / "mlruns").exists()


def test_a_custom_layer_that_cannot_be_loaded_is_named(tmp_path):
    path = with_custom_layer(tmp_path)
    line = refused(cli(tmp_path, f"backbone.path={path}"))
    assert "layer mine>Scale of" in line and "backbone.modules=" in line, line
    line = refused(cli(tmp_path, f"backbone.path={path}", "backbone.modules=[no_such_module]"))
    assert "backbone.modules=['no_such_module'] is invalid" in line, line
    assert not (tmp_path / "mlruns").exists()


def test_a_model_of_custom_layers_only_has_nothing_to_optimize(tmp_path):
    import importlib

    import tf_keras as keras

    with_custom_layer(tmp_path)  # writes my_layers.py
    sys.path.insert(0, str(tmp_path))
    try:
        Project = importlib.import_module("my_layers").Project
    finally:
        sys.path.remove(str(tmp_path))
    inputs = keras.Input((SIZE, SIZE, 1))
    outputs = keras.layers.Softmax()(Project()(keras.layers.Flatten()(inputs)))
    path = save(keras.Model(inputs, outputs), tmp_path / "own_only.keras")
    env = {**clean_env(), "PYTHONPATH": str(tmp_path)}
    line = refused(cli(tmp_path, f"backbone.path={path}", "backbone.modules=[my_layers]", env=env))
    assert "prune.layer_types=None is invalid" in line and "nothing to optimize" in line, line
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # refused before any run


def test_a_keras3_file_is_refused_as_not_keras2(tmp_path):
    """A model Keras 3 wrote (a child process without TF_USE_LEGACY_KERAS): the typed error
    the conversion-only route takes over; pruning it is one line before any work."""
    from pruneflow.steps.model.source import NotKeras2Model, kind_of

    path = tmp_path / "k3.keras"
    script = textwrap.dedent(f"""
        import keras
        inputs = keras.Input(({SIZE}, {SIZE}, 1))
        x = keras.layers.Flatten()(inputs)
        keras.Model(inputs, keras.layers.Dense(10)(x)).save({str(path)!r})
    """)
    env = {k: v for k, v in clean_env().items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True)
    with pytest.raises(NotKeras2Model, match="written by Keras 3"):
        kind_of(str(path))
    # converted only (tests/test_foreign_model.py); what needs tfmot is refused in one line
    line = refused(cli(tmp_path, f"backbone.path={path}", "prune.sparsity=0.5"))
    assert "a Keras 3 .keras file" in line and "re-save it with tf_keras" in line, line


# -- the builder: every format, pixels, heads (in process, no training) ---------------------


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "saved_model"])
def test_every_format_is_the_same_model_on_raw_pixels(tmp_path, digits, name):
    """The baseline takes raw 0..255 pixels (as every .tflite does) and scales them as the
    model expects: its predictions are the model's own on 0..1 pixels."""
    from pruneflow.config import check
    from pruneflow.steps.model.source import build_file

    path = save(conv_model(softmax=True), tmp_path / name)
    config = check(compose([*TINY, "backbone=file", f"backbone.path={path}"]))
    assert config.dataset.image_size == SIZE  # the model's input sets the image size
    x = np.random.default_rng(0).uniform(0, 255, (8, SIZE, SIZE, 1)).astype("float32")
    built = build_file(config.backbone, (SIZE, SIZE, 1), 10)
    own = conv_model(softmax=True)  # same seed: same weights
    np.testing.assert_allclose(built(x).numpy(), own(x / 255.0).numpy(), rtol=1e-5, atol=1e-6)
    assert [la.name for la in built.layers][1] == "pixels"


def test_pixels_head_and_probabilities(tmp_path):
    import tf_keras as keras

    from pruneflow.steps.model.config import FileConfig
    from pruneflow.steps.model.source import build_file

    path = save(conv_model(), tmp_path / "logits.keras")  # logits out
    x = np.random.default_rng(1).uniform(0, 255, (4, SIZE, SIZE, 1)).astype("float32")
    own = conv_model()
    for pixels, fed in [("raw", x), ("unit", x / 255.0), ("symmetric", x / 127.5 - 1.0)]:
        built = build_file(FileConfig(path=path, pixels=pixels), (SIZE, SIZE, 1), 10)
        want = keras.activations.softmax(own(fed)).numpy()  # a softmax added to its logits
        np.testing.assert_allclose(built(x).numpy(), want, rtol=1e-4, atol=1e-6)
    # head=new: the last Dense replaced by one of the dataset's classes
    built = build_file(FileConfig(path=path, head="new"), (SIZE, SIZE, 1), 4)
    assert built.output_shape == (None, 4) and built.layers[-1].name == "head"
    # a model that rescales itself takes raw pixels (pixels=auto)
    inputs = keras.Input((SIZE, SIZE, 1))
    y = keras.layers.Rescaling(1 / 255.0)(inputs)
    own = keras.Model(inputs, conv_model(softmax=True)(y))
    path = save(own, tmp_path / "rescales.keras")
    built = build_file(FileConfig(path=path), (SIZE, SIZE, 1), 10)
    np.testing.assert_allclose(built(x).numpy(), own(x).numpy(), rtol=1e-5, atol=1e-6)


def test_custom_objects_load_a_custom_layer(tmp_path):
    from pruneflow.steps.model.config import FileConfig
    from pruneflow.steps.model.source import build_file, describe

    path = with_custom_layer(tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        config = FileConfig(path=path, custom_objects=["my_layers:Scale"])
        assert describe(config).custom_layers == ("scale",)
        assert build_file(config, (SIZE, SIZE, 1), 10).get_layer("scale").weights
    finally:
        sys.path.remove(str(tmp_path))


# -- identity: the model's content keys the job and the baseline -----------------------------


@pytest.mark.parametrize("name", ["model.keras", "saved_model"])
def test_editing_the_model_in_place_changes_the_job_and_baseline_keys(tmp_path, name):
    from pruneflow.config import check
    from pruneflow.identity import baseline_key, baseline_spec

    path = save(conv_model(seed=0), tmp_path / name)

    def keys():
        config = check(compose(["backbone=file", f"backbone.path={path}"]))
        return config.job_key, baseline_key(baseline_spec(config, "data"))

    before = keys()
    assert keys() == before  # the same bytes: the same work
    save(conv_model(seed=1), path)  # other weights, same path
    after = keys()
    assert after[0] != before[0] and after[1] != before[1]


# -- the whole chain, as a user runs it ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["model.keras", "model.h5", "saved_model"])
def test_a_model_file_is_the_baseline_as_it_is(tmp_path, name):
    """No training (train.epochs=0): the baseline's predictions are the model's own, image
    for image; pruning, conversion and timing follow as for a built-in backbone."""
    path = save(conv_model(), tmp_path / name)
    proc = cli(tmp_path, f"backbone.path={path}", "train.epochs=0", "stage=float")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"dataset.image_size=28 -> {SIZE}" in proc.stdout
    predictions = tmp_path / "outputs" / "predictions.csv"
    np.testing.assert_array_equal(column(predictions, "baseline"), own_predictions(path))
    assert "train epoch" not in proc.stdout and "cache miss" in proc.stdout  # as it is


@pytest.mark.slow
def test_a_custom_layer_is_left_dense_and_listed(tmp_path):
    import mlflow

    path = with_custom_layer(tmp_path)
    env = {**clean_env(), "PYTHONPATH": str(tmp_path)}
    proc = cli(tmp_path, f"backbone.path={path}", "backbone.modules=[my_layers]", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "left dense (custom layers, no optimization handles them): ['scale']" in proc.stdout
    with open(tmp_path / "outputs" / "layers.csv") as fh:
        rows = {r["layer"]: r for r in csv.DictReader(fh)}
    assert rows["scale"]["selected"] == "False" and rows["scale"]["zeros"] == "0"
    assert rows["conv"]["selected"] == "True"
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs(client.get_experiment_by_name("pruneflow").experiment_id)
    assert run.data.tags["prune.left_dense"] == "scale"


@pytest.mark.slow
def test_a_new_head_is_trained_by_train_epochs(tmp_path):
    path = save(conv_model(classes=3), tmp_path / "three.keras")
    proc = cli(tmp_path, f"backbone.path={path}", "backbone.head=new", "stage=float")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train epoch 1/1" in proc.stdout and "head new (10 classes)" in proc.stdout
