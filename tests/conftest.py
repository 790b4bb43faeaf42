"""Shared fixtures: a composed config with the smallest budget, every output under tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pruneflow  # noqa: F401 - sets TF_USE_LEGACY_KERAS before any TensorFlow import

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# The smallest budget that still exercises every stage.
TINY = [
    "train.epochs=1",
    "prune.epochs=1",
    "benchmark.images=5",
    "stage.representative_samples=8",
]


def compose(overrides: list[str] | None = None):
    """Compose the root config like `python -m pruneflow` would, without running it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from pruneflow.config import register

    register()
    GlobalHydra.instance().clear()  # no leftover global state between tests
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides or [])


def outputs_to(tmp: Path) -> list[str]:
    """Overrides that send every output of a run (Hydra, MLflow, cache) under ``tmp``."""
    return [
        f"paths.output_dir={tmp / 'out'}",
        f"paths.cache_dir={tmp / 'cache'}",
        f"tracking.dir={tmp / 'mlruns'}",
        f"hydra.sweep.dir={tmp / 'multirun'}",
        f"hydra.run.dir={tmp / 'outputs'}",
    ]


@pytest.fixture
def cfg_tiny(tmp_path):
    """The root config with the smallest budget and all outputs in ``tmp_path``."""
    overrides = [o for o in outputs_to(tmp_path) if not o.startswith("hydra.")]
    return compose(TINY + overrides)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    # Inherited MLflow settings would redirect or hijack the runs a test makes.
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)


def run_cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m pruneflow ARGS` in ``cwd`` as a user would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "pruneflow", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def digits():
    from pruneflow.data import load_digits

    return load_digits(seed=42)


@pytest.fixture(scope="session")
def trained_model_path(tmp_path_factory, digits):
    """A digits CNN trained for two epochs, saved once for the whole session."""
    import tf_keras as keras

    from pruneflow.model import build_cnn
    from pruneflow.train import fit

    keras.utils.set_random_seed(0)
    model = build_cnn(digits.image_shape, digits.num_classes)
    fit(model, digits, epochs=2, batch_size=32, learning_rate=1e-3)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


def prune_quick(path, data, **overrides):
    """``prune_model`` with the tests' smallest budget: one epoch, a constant schedule."""
    from pruneflow.prune import prune_model

    args = dict(
        sparsity=0.5,
        schedule="constant",
        epochs=1,
        batch_size=64,
        learning_rate=1e-3,
        frequency=5,
        seed=0,
    )
    return prune_model(path, data, **{**args, **overrides})


@pytest.fixture(scope="session")
def tflite_bench(tmp_path_factory, trained_model_path, digits):
    """({variant: path} for tflite_fp32 and tflite_int8 of the trained digits CNN, a folder of
    12 benchmark image files), built once for the session."""
    from pruneflow.benchmark import write_images
    from pruneflow.convert import export_models
    from pruneflow.train import load_model

    out = tmp_path_factory.mktemp("bench")
    paths = export_models(
        load_model(trained_model_path),
        ["tflite_fp32", "tflite_int8"],
        out / "models",
        digits.train_sample(16),
    )
    images = write_images(digits.x_val, digits.y_val, digits.class_names, 12, out / "images")
    return paths, images
