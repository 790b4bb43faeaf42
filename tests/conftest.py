"""Fixtures: a composed config with the smallest budget, every output under tmp_path, and small
real models and data shared by a session. Helpers live in tests/helpers/ (nothing is imported
from this file)."""

from __future__ import annotations

import signal

import pytest

import pruneflow  # noqa: F401 - sets TF_USE_LEGACY_KERAS before any TensorFlow import
from helpers.cli import TINY, compose, outputs_to, sweep_cli
from helpers.machine import missing


def pytest_configure(config):
    """A shell that starts pytest in the background (``make test &``, nohup) ignores SIGINT,
    and the console scripts the tests start would inherit that: the tests of Ctrl-C would see
    nothing. Ctrl-C is given back its default here, so every child starts with it."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures start any server
def pytest_runtest_setup(item):
    """``@pytest.mark.needs(...)``: what the test needs from the machine (helpers/machine.py);
    missing on CI fails the test naming the fix, elsewhere skips it."""
    import os

    for mark in item.iter_markers("needs"):
        lacking = missing(*mark.args)
        if lacking:
            why = "this machine lacks " + "; ".join(lacking)
            if os.environ.get("CI"):
                pytest.fail(why, pytrace=False)
            pytest.skip(why)


@pytest.fixture
def cfg_tiny(tmp_path):
    """The root config with the smallest budget and all outputs in ``tmp_path``."""
    return compose(TINY + outputs_to(tmp_path, hydra=False))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    # Inherited MLflow settings would redirect or hijack the runs a test makes.
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def digits():
    from helpers.models import digits as load

    return load(seed=42)


@pytest.fixture(scope="session")
def trained_model_path(tmp_path_factory, digits):
    """A digits CNN trained for two epochs, saved once for the whole session."""
    import tf_keras as keras

    from helpers.models import cnn
    from pruneflow.steps.train.train import fit

    keras.utils.set_random_seed(0)
    model = cnn(digits.image_shape, digits.num_classes)
    fit(model, digits, epochs=2, batch_size=32, learning_rate=1e-3)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def tflite_bench(tmp_path_factory, trained_model_path, digits):
    """({variant: path} for tflite_fp32 and tflite_int8 of the trained digits CNN, a folder of
    12 benchmark image files), built once for the session."""
    from pruneflow.steps.benchmark.benchmark import write_images
    from pruneflow.steps.convert.convert import export_models
    from pruneflow.steps.train.train import load_model

    out = tmp_path_factory.mktemp("bench")
    paths = export_models(
        load_model(trained_model_path),
        ["tflite_fp32", "tflite_int8"],
        out / "models",
        digits.train_sample(16),
    )
    images = write_images(
        digits.x_val, digits.y_val, digits.class_names, 12, out / "images", seed=0
    )
    return paths, images


@pytest.fixture(scope="session")
def console_sweep(tmp_path_factory):
    """(folder, console) of `pruneflow -m prune.sparsity=0.5,0.9` with the tiny budget: the
    console script itself, not `python -m`, run once for the session. test_e2e.py and
    test_report.py read it (one sweep for both: each made the same one of its own); what a test
    adds to its store stays beside the runs (a registered model), never changes them."""
    tmp = tmp_path_factory.mktemp("sweep")
    proc = sweep_cli(tmp, "prune.sparsity=0.5,0.9")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp, proc
