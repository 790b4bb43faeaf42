"""Job keys (resume's identity of a job's work): they see the data where it can change under
the same config, treat equal numbers alike, and never move for the default digits jobs, whose
stores must keep resuming (issue 26, items 8 and 12)."""

from __future__ import annotations

import os

import pytest

from helpers.cli import TINY, compose, outputs_to, read_runs, run_cli
from pruneflow import results
from pruneflow.config import check
from pruneflow.identity import plain_numbers

# The keys of `pruneflow -m prune.sparsity=0.25,0.5,0.9` (0.5 is the default run) and of
# sparsity 0, as the released code made them: a change here makes every existing store's
# digits runs run again.
DIGITS_KEYS = {
    "0.25": "20e93f90b9882824",
    "0.5": "3c8279fe26cae5bc",
    "0.9": "78e7d69fd643a758",
    "0.0": "76fe538e4a99aac5",
}


@pytest.mark.parametrize("sparsity", sorted(DIGITS_KEYS))
def test_the_default_digits_job_keys_do_not_move(sparsity):
    assert check(compose([f"prune.sparsity={sparsity}"])).job_key == DIGITS_KEYS[sparsity]


@pytest.mark.parametrize("zero", ["-0.0", "-0", "0", "0.0", "-0e0"])
def test_minus_zero_is_zero_in_the_job_key_and_the_names(zero):
    config = check(compose([f"prune.sparsity={zero}", f"prune.channels={zero}"]))
    assert config.job_key == DIGITS_KEYS["0.0"]
    assert config.run_name == "digits-cnn-s0"
    assert results.model_name(config.model_name, config.prune.sparsity, "x").endswith("-s0-x")


def test_only_equal_values_of_one_type_key_alike():
    assert plain_numbers({"a": [-0.0, 1.5], "b": -0.0}) == {"a": [0.0, 1.5], "b": 0.0}
    assert str(plain_numbers({"b": -0.0})) == "{'b': 0.0}"
    # a schema float is a float already (prune.sparsity=0 is 0.0); an untyped value keeps its type
    keyed = [
        check(compose([f"+delegate.options.n={n}", "delegate=xnnpack"])).job_key
        for n in ("1", "1.0")
    ]
    assert keyed[0] != keyed[1]


def test_minus_zero_resumes_the_run_of_zero(tmp_path):
    """As a user found it: `prune.sparsity=-0.0` after 0.0 ran the same work again."""
    args = ["dataset.image_size=16", *TINY, "stage=float", *outputs_to(tmp_path)]
    first = run_cli(["prune.sparsity=0.0", "prune.epochs=0", *args], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_cli(["prune.sparsity=-0.0", "prune.epochs=0", *args], cwd=tmp_path)
    assert again.returncode == 0 and "skipped (finished run" in again.stdout, again.stdout[-3000:]
    _, (run,) = read_runs(tmp_path)
    assert run.info.run_name == "digits-cnn-s0"


def test_a_tfds_data_dir_is_in_the_job_key(tmp_path):
    """The prepared dataset's files in dataset.data_dir: none (not prepared: the download
    makes tfds's own) keys as before; a prepared one by its files; changed files, a new key."""
    data_dir = tmp_path / "tfds"
    overrides = ["dataset=mnist", f"dataset.data_dir={data_dir}"]
    absent = check(compose(overrides))
    assert absent.dataset.content() is None
    before = absent.job_key  # a property: made from the files as they are when asked
    prepared = data_dir / "mnist" / "3.0.1"
    prepared.mkdir(parents=True)
    (prepared / "mnist-train.tfrecord-00000-of-00001").write_bytes(b"x" * 10)
    (prepared / "dataset_info.json").write_text("{}")
    (data_dir / "downloads").mkdir()  # tfds's downloads are not the prepared dataset
    keys = [check(compose(overrides)).job_key]
    (data_dir / "downloads" / "mnist.gz").write_bytes(b"y")
    keys.append(check(compose(overrides)).job_key)
    assert keys[0] == keys[1] != before
    (prepared / "mnist-train.tfrecord-00000-of-00001").write_bytes(b"x" * 11)
    keys.append(check(compose(overrides)).job_key)
    os.utime(prepared / "dataset_info.json", ns=(0, 0))
    keys.append(check(compose(overrides)).job_key)
    assert len(set(keys[1:])) == 3
    # the name tfds finds it by: name[/config][:version]
    assert check(compose([*overrides, "dataset.name=mnist:3.0.1"])).dataset.content() == (
        check(compose(overrides)).dataset.content()
    )


def test_a_weights_file_keys_the_job_and_the_baseline_by_its_content(tmp_path):
    """`backbone.weights=<path>` keys the job and its baseline by the file's bytes: a file edited
    in place is other work (a cached baseline of the old file is not reused), the same bytes
    elsewhere key alike in the baseline; `imagenet` and null name no file and key as before."""
    from pruneflow.identity import baseline_key, baseline_spec

    weights = tmp_path / "base.h5"
    weights.write_bytes(b"first weights")
    overrides = ["backbone=mobilenetv2", "dataset.image_size=32"]

    def keys(path):
        config = check(compose([*overrides, f"backbone.weights={path}"]))
        return config.job_key, baseline_key(baseline_spec(config, "same data"))

    before = keys(weights)
    weights.write_bytes(b"other weights, same path")
    after = keys(weights)
    assert before[0] != after[0] and before[1] != after[1]
    copy = tmp_path / "copy.h5"
    copy.write_bytes(weights.read_bytes())
    assert keys(copy)[1] == after[1]  # the baseline depends on the content, not on the path
    imagenet = check(compose([*overrides, "backbone.weights=imagenet"]))
    assert baseline_spec(imagenet, "same data")["backbone"]["weights"] == "imagenet"


def test_a_weights_file_that_is_not_there_is_one_line_before_any_run(tmp_path):
    """A missing weights file was Keras's ValueError after the run had started (a FAILED run);
    it is now the config's one line, exit 2, before any run or store."""
    proc = run_cli(
        [*TINY, "backbone=mobilenetv2", "backbone.input_size=32", "backbone.weights=gone.h5"],
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "backbone.weights='gone.h5' is invalid" in lines[0], lines
    assert "a weights file that exists" in lines[0]
    assert not (tmp_path / "mlruns").exists()


def test_a_folder_of_yours_is_keyed_without_following_its_links(tmp_path):
    """A SavedModel folder keys a job by its files (identity.tree_digest). Its links are keyed
    by where they point, never followed: one out of the folder (whose file may change or be
    anything), one to a pipe (reading it would hang), one back to the folder (a loop)."""
    from pruneflow.identity import tree_digest

    folder, outside = tmp_path / "saved_model", tmp_path / "outside.bin"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "variables" / "variables.data").write_bytes(b"weights")
    before = tree_digest(folder)
    outside.write_bytes(b"a")
    os.mkfifo(tmp_path / "pipe")
    (folder / "out").symlink_to(outside)
    (folder / "pipe").symlink_to(tmp_path / "pipe")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    linked = tree_digest(folder)  # returns: the pipe is not read, the loop not walked
    assert linked != before
    outside.write_bytes(b"b" * 10)
    assert tree_digest(folder) == linked  # the file outside is not read
    (folder / "out").unlink()
    (folder / "out").symlink_to(tmp_path / "elsewhere.bin")
    assert tree_digest(folder) != linked  # where a link points is part of the key
    (folder / "variables" / "variables.data").write_bytes(b"other weights")
    assert tree_digest(folder) != linked
