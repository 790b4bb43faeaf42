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
from pruneflow.steps.data import folder
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


@pytest.mark.parametrize(
    "option",
    [
        # slow: the same chain on another option; each option's loading stays in make test
        # (test_tfds_option_loads_offline_under_mock_data), its whole chain on cats_vs_dogs (RGB)
        pytest.param(o, marks=[pytest.mark.slow] if o != "cats_vs_dogs" else [])
        for o in TFDS_OPTIONS
    ],
)
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


# slow: test_resume_runs_again_after_a_class_folder_is_added runs this command line first
@pytest.mark.slow
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


# Links in a folder dataset (issue 26, item 3): real symlinks, planted as a user's folder has them.


def _link(path, target):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


@pytest.mark.parametrize(
    "links",
    [
        {"loopcls": "."},  # a class folder that is the root again
        {"cat/up": ".."},  # a folder inside a class that leads back up
        {"loopcls": ".", "cat/up": ".."},  # both: Keras's walk never ended (issue 26)
    ],
)
def test_a_link_loop_is_refused_in_one_line_before_any_work(image_folder, tmp_path, links):
    for name, target in links.items():
        _link(image_folder / name, target)
    first = sorted(links)[0] if "cat/up" not in links else "cat/up"  # the walk meets it first
    args = ["dataset=folder", f"dataset.root={image_folder}", *TINY, *outputs_to(tmp_path)]
    proc = run_cli(args, cwd=tmp_path, timeout=120)  # a hang guard: it used to walk forever
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("pruneflow: error: dataset.root=")
    assert f"{image_folder / first} is a link loop" in line
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "cache").exists()


def test_a_link_out_of_the_root_is_refused_naming_it(image_folder, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "img").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(outside / "img" / "x.png")
    for link, target in [
        (image_folder / "bird", outside / "img"),  # a class folder elsewhere
        (image_folder / "cat" / "more", outside),  # a folder inside a class
        (image_folder / "dog" / "x.png", outside / "img" / "x.png"),  # one image
    ]:
        _link(link, target)
        with pytest.raises(ArgumentError) as err:
            FolderConfig(root=str(image_folder), seed=0)
        assert f"{link} is a link out of it (to {target})" in str(err.value)
        link.unlink()
    FolderConfig(root=str(image_folder), seed=0)  # and the folder is as it was
    assert sorted(p.name for p in image_folder.iterdir()) == ["cat", "dog", "owl"]


def test_a_folder_reached_twice_is_refused_naming_both(image_folder):
    _link(image_folder / "puppy", "dog")
    with pytest.raises(ArgumentError, match=r"puppy leads to the folder .*/dog again"):
        FolderConfig(root=str(image_folder), seed=0)


def test_one_image_file_never_reaches_both_splits(image_folder):
    import os

    # the same files again: linked into another class, twice into their own, and hard linked
    for i in range(10):
        _link(image_folder / "owl" / f"cat{i}.png", f"../cat/{2 * i}.png")
        _link(image_folder / "cat" / f"again{i}.png", f"{2 * i}.png")
        os.link(image_folder / "dog" / f"{2 * i}.png", image_folder / "dog" / f"hard{i}.png")
    found = folder.scan(str(image_folder))
    assert len(found.images) == 90 and found.duplicates() == 30
    for seed in range(5):
        train, val = found.split(0.3, seed)
        assert len(train) + len(val) == 90
        real = {os.path.realpath(i.path) for i in train}
        assert real.isdisjoint({os.path.realpath(i.path) for i in val})
    data = load_folder(FolderConfig(root=str(image_folder), image_size=16, seed=1))
    assert data.train_size + len(data.x_val) == 90


def test_the_walk_splits_as_keras_did_on_a_folder_without_links(image_folder):
    import tf_keras as keras

    (image_folder / "owl" / "nested").mkdir()
    for i in range(3):  # Keras reads a class's sub-folders too
        Image.fromarray(np.full((9, 9, 3), i, np.uint8)).save(
            image_folder / "owl/nested" / f"{i}.png"
        )
    (image_folder / "notes.txt").write_text("not an image")
    (image_folder / ".hidden").mkdir()
    for seed in (1, 7):
        train, val = keras.utils.image_dataset_from_directory(
            str(image_folder), batch_size=None, seed=seed, validation_split=0.3, subset="both"
        )
        ours_train, ours_val = folder.scan(str(image_folder)).split(0.3, seed)
        assert [i.path for i in ours_val] == val.file_paths
        assert [i.path for i in ours_train] == train.file_paths
        assert folder.scan(str(image_folder)).class_names == val.class_names


def test_resume_runs_again_after_a_class_folder_is_added(image_folder, tmp_path, digits):
    """Issue 26, item 8: the job key sees the folder's files, not only its path."""
    import csv

    from pruneflow import results

    args = ["dataset=folder", f"dataset.root={image_folder}", "dataset.image_size=16", *TINY]
    args += ["stage=float", *outputs_to(tmp_path)]
    first = run_cli(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_cli(args, cwd=tmp_path)  # the same files: resumed, as before
    assert again.returncode == 0 and "skipped (finished run" in again.stdout, again.stdout[-3000:]
    (image_folder / "emu").mkdir()
    for i, img in enumerate(digits.x_val[digits.y_val == 3][:20]):
        Image.fromarray(np.repeat(img, 3, axis=-1)).save(image_folder / "emu" / f"{i}.png")
    third = run_cli(args, cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "skipped" not in third.stdout + third.stderr
    client, (old, new) = read_runs(tmp_path)
    assert old.info.status == "FINISHED" and old.info.run_name.startswith("my_images-cnn")
    assert new.data.tags[results.JOB_KEY_TAG] != old.data.tags[results.JOB_KEY_TAG]
    assert new.data.tags[results.BASELINE_CACHE_TAG] == "miss"  # a new baseline, four classes
    assert (old.data.metrics[results.VAL_IMAGES], new.data.metrics[results.VAL_IMAGES]) == (18, 24)
    path = client.download_artifacts(
        new.info.run_id, f"{results.EVAL_DIR}/{results.PREDICTIONS_FILE}", str(tmp_path)
    )
    with open(path) as fh:
        assert {int(row["label"]) for row in csv.DictReader(fh)} == {0, 1, 2, 3}
