"""tensorflow-datasets options (real loading code, offline with tfds.testing.mock_data), user
image folders, and fast clear failures when a dataset needs a download."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from helpers.cli import CONF, TINY, compose, outputs_to, read_runs, run_cli
from pruneflow.config import check
from pruneflow.errors import ArgumentError
from pruneflow.steps.data.config import FolderConfig, TfdsConfig
from pruneflow.steps.data.loaders import DatasetUnavailable, load_folder, load_tfds

TFDS_OPTIONS = sorted(
    p.stem
    for p in (CONF / "dataset").glob("*.yaml")
    if "/schema/dataset/tfds@_here_" in p.read_text()
)
SMALL = ["dataset.image_size=24"]  # keep the paper's large images small in tests


def test_the_papers_datasets_are_options():
    assert TFDS_OPTIONS == ["cats_vs_dogs", "horses_or_humans", "mnist", "svhn", "tf_flowers"]


@pytest.mark.parametrize("option", TFDS_OPTIONS)
def test_tfds_option_loads_offline_under_mock_data(option):
    from pruneflow.config import instantiate

    dataset = check(compose([f"dataset={option}", *SMALL])).dataset
    with tfds.testing.mock_data(num_examples=20):
        data = instantiate(dataset)
    channels = dataset.channels
    assert data.image_shape == (24, 24, channels)
    assert data.x_val.dtype == np.uint8 and len(data.x_val) == 20 == len(data.y_val)
    assert data.train_size == 20
    assert data.num_classes >= 2 and set(data.y_val) <= set(range(data.num_classes))
    batch_x, batch_y = next(iter(data.train_batches(8)))
    assert tuple(batch_x.shape) == (8, 24, 24, channels) and batch_x.dtype.name == "uint8"


@pytest.mark.parametrize("option", TFDS_OPTIONS)
def test_tfds_option_runs_end_to_end(option, tmp_path):
    from pruneflow.pipeline import run

    overrides = [
        f"dataset={option}",
        *SMALL,
        "dataset.image_size=24",
        *TINY,
        "stage=int8",
        "benchmark.images=4",
    ]
    cfg = compose(overrides + outputs_to(tmp_path, hydra=False))
    with tfds.testing.mock_data(num_examples=16):
        metrics = run(cfg)
    for variant in ("keras", "tflite_fp32", "tflite_int8"):
        assert 0.0 <= metrics[f"{variant}/accuracy"] <= 1.0
        assert metrics[f"{variant}/latency_p50_ms"] > 0
    assert metrics["sparsity"] == pytest.approx(0.5, abs=0.01)


def test_offline_tfds_download_fails_fast_with_what_to_do(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        load_tfds(
            TfdsConfig(
                name="mnist", image_size=28, channels=1, data_dir=str(tmp_path / "tfds"), seed=0
            )
        )
    message = str(err.value)
    assert "needs a download" in message and "dataset.data_dir" in message
    assert "tfds build mnist" in message
    assert "\n" not in message  # one line
    # tfds's own error, cut at a word's end (it was cut mid-word: `NewConne`)
    said = message.split(f"{type(err.value.__cause__).__name__}: ", 1)[1]
    said = said.split("; it needs a download", 1)[0]
    whole = next(line.strip() for line in str(err.value.__cause__).splitlines() if line.strip())
    if said.endswith(" ..."):
        kept = said[: -len(" ...")]
        assert whole.startswith(kept) and whole[len(kept)] in " ,;:(", (kept, whole)
    else:
        assert said == whole
    with pytest.raises(DatasetUnavailable, match="dataset.download=false"):
        load_tfds(
            TfdsConfig(
                name="mnist", image_size=28, data_dir=str(tmp_path / "tfds"), download=False, seed=0
            )
        )


def test_cli_offline_dataset_fails_the_run_cleanly(tmp_path):
    args = ["dataset=mnist", f"dataset.data_dir={tmp_path / 'tfds'}", *TINY, *outputs_to(tmp_path)]
    proc = run_cli(args, cwd=tmp_path, timeout=300)
    assert proc.returncode == 1 and "needs a download" in proc.stderr
    assert "Traceback" not in proc.stderr
    _, (run,) = read_runs(tmp_path)
    assert run.info.status == "FAILED"
    # named from the start, and saying why
    assert run.info.run_name == "mnist-cnn-s0.5"
    assert run.data.tags["pruneflow.error.type"] == "DatasetUnavailable"
    assert "needs a download" in run.data.tags["pruneflow.error.message"]


@pytest.fixture
def image_folder(tmp_path, digits):
    """A folder of real image files in the paper's layout: <class>/<image>, mixed formats."""
    root = tmp_path / "my_images"
    for label, name in enumerate(["cat", "dog", "owl"]):
        (root / name).mkdir(parents=True)
        for i, img in enumerate(digits.x_val[digits.y_val == label][:20]):
            rgb = np.repeat(img, 3, axis=-1)
            suffix = "jpg" if i % 2 else "png"
            Image.fromarray(rgb).resize((40, 40)).save(root / name / f"{i}.{suffix}")
    return root


def test_folder_dataset_reads_classes_and_splits(image_folder):
    data = load_folder(
        FolderConfig(root=str(image_folder), image_size=32, channels=3, val_fraction=0.25, seed=1)
    )
    assert data.class_names == ["cat", "dog", "owl"]
    assert data.train_size + len(data.x_val) == 60
    assert len(data.x_val) == 15 and data.image_shape == (32, 32, 3)
    gray = load_folder(
        FolderConfig(root=str(image_folder), image_size=16, channels=1, val_fraction=0.25, seed=1)
    )
    assert gray.image_shape == (16, 16, 1)


def test_folder_dataset_end_to_end_from_the_command_line(image_folder, tmp_path):
    args = [
        "dataset=folder",
        f"dataset.root={image_folder}",
        "dataset.image_size=32",
        *TINY,
        "stage=float",
        *outputs_to(tmp_path),
    ]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, (run,) = read_runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.runName"].startswith(
        "my_images-cnn"
    )
    assert run.data.metrics["tflite_fp32/accuracy"] >= 0.0


def test_folder_dataset_without_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ArgumentError, match="root='/nope' is invalid: .* does not exist"):
        FolderConfig(root="/nope", seed=0)


def test_a_corrupt_image_is_named_before_any_training(image_folder):
    bad = image_folder / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DatasetUnavailable) as err:
        load_folder(FolderConfig(root=str(image_folder), image_size=32, seed=1))
    assert str(bad) in str(err.value) and "1 image file(s) cannot be decoded" in str(err.value)


def test_changed_folder_contents_change_the_fingerprint(image_folder):
    before = load_folder(FolderConfig(root=str(image_folder), image_size=32, seed=1)).fingerprint()
    assert (
        load_folder(FolderConfig(root=str(image_folder), image_size=32, seed=1)).fingerprint()
        == before
    )
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image_folder / "cat" / "new.png")
    assert (
        load_folder(FolderConfig(root=str(image_folder), image_size=32, seed=1)).fingerprint()
        != before
    )
