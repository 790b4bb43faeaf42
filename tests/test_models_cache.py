"""The models cache (pruneflow.models_cache): jobs that differ only in where and how their models
are timed (device, delegate, benchmark) time the same models, made once; a corrupt entry is
said and made again; a job writing into a folder whose files are linked with an entry leaves
the entry whole."""

from __future__ import annotations

import filecmp
import os
import shutil

import numpy as np
import pytest

from helpers.cli import TINY, compose, outputs_to, pruneflow_command, read_runs, run_cli
from pruneflow import models_cache, results
from pruneflow.config import check

MADE_HERE = ("time/train_s", "time/prune_s", "time/convert_s", "time/evaluate_s")


def _key(*overrides: str) -> tuple[str, str]:
    config = check(compose([*TINY, *overrides]))
    return config.keys()


def test_the_models_key_leaves_out_only_where_and_how_the_models_are_timed():
    jobs, models = zip(
        *[
            _key(),
            _key("delegate.threads=2"),
            _key("benchmark.images=7"),
            _key("device.cooldown_c=70"),
            _key("device.energy.source=none"),
        ],
        strict=True,
    )
    assert len(set(jobs)) == 5 and len(set(models)) == 1
    others = [_key(o)[1] for o in ("prune.sparsity=0.7", "seed=1", "stage=int8", "train.epochs=2")]
    assert len({models[0], *others}) == 5


def _model_measures(metrics: dict) -> dict:
    """The measures of the models (accuracy and its interval, sizes, sparsity, parameters)."""
    per_variant = (results.ACCURACY, results.ACCURACY_CI_LOW, results.ACCURACY_CI_HIGH)
    per_variant += (results.SIZE, results.GZIP)
    named = {results.BASELINE_ACCURACY, *results.RUN_MEASURES}
    return {k: v for k, v in metrics.items() if k in named or k.split("/")[-1] in per_variant}


def test_a_thread_sweep_makes_the_models_once_and_times_them_per_thread_count(tmp_path):
    """`pruneflow -m delegate.threads=1,2`: the second job times the first job's models (the
    same bytes, the same accuracy and sizes, tagged with the run that made them) without
    training, pruning or converting; a corrupt entry is said, removed and made again."""
    args = ["-m", "delegate.threads=1,2", *TINY, *outputs_to(tmp_path)]
    proc = run_cli(args, cwd=tmp_path, command=pruneflow_command())
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, (maker, timer) = read_runs(tmp_path)
    assert {maker.info.status, timer.info.status} == {"FINISHED"}
    assert results.MODELS_FROM_TAG not in maker.data.tags
    assert timer.data.tags[results.MODELS_FROM_TAG] == maker.info.run_id
    assert all(k in maker.data.metrics for k in MADE_HERE)
    assert not any(k in timer.data.metrics for k in MADE_HERE)
    measures = _model_measures(maker.data.metrics)
    assert "tflite_int8/accuracy" in measures and "tflite_int8/size_bytes" in measures
    assert _model_measures(timer.data.metrics) == measures
    assert timer.data.metrics["tflite_int8/threads_used"] == 2  # timed at its own count
    assert timer.data.tags[results.BASELINE_KEY_TAG] == maker.data.tags[results.BASELINE_KEY_TAG]
    # the baseline as the timing job found it: in the cache
    assert maker.data.tags[results.BASELINE_FROM_TAG] == "trained"
    assert timer.data.tags[results.BASELINE_FROM_TAG] == "cache"
    for run, where in ((maker, "m"), (timer, "t")):
        client.download_artifacts(run.info.run_id, results.MODELS_DIR, str(tmp_path / where))
    names = sorted(p.name for p in (tmp_path / "m" / results.MODELS_DIR).iterdir())
    assert "tflite_int8.tflite" in names
    assert filecmp.cmpfiles(tmp_path / "m/models", tmp_path / "t/models", names, shallow=False)[
        0
    ] == sorted(names)

    # a corrupt entry (a file replaced): said, removed, made again, and whole afterwards
    (entry,) = (tmp_path / "cache" / "models").glob("*/")
    victim = entry / models_cache.FILES_DIR / results.MODELS_DIR / "tflite_int8.tflite"
    spoiled = victim.with_name("spoiled")
    spoiled.write_bytes(victim.read_bytes()[:-1])
    os.replace(spoiled, victim)
    one = [*TINY, *outputs_to(tmp_path), "delegate.threads=3"]
    proc = run_cli(one, cwd=tmp_path, command=pruneflow_command())
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = proc.stdout + proc.stderr  # a single run's log is on the console
    assert f"models cache entry {entry.as_posix().rstrip('/')} is corrupt" in said
    assert "tflite_int8.tflite is missing or not what was saved" in said
    _, runs = read_runs(tmp_path)
    assert results.MODELS_FROM_TAG not in runs[-1].data.tags
    # the same models, made again (a .keras file is a zip holding the time it was written:
    # its gzip size may differ)
    again = _model_measures(runs[-1].data.metrics)
    assert {k: v for k, v in again.items() if k != "keras/gzip_bytes"} == {
        k: v for k, v in measures.items() if k != "keras/gzip_bytes"
    }
    assert models_cache.ModelsCache(entry.parent.parent, entry.name).load(tmp_path / "x")


def test_a_job_writing_where_an_entry_s_files_were_linked_leaves_the_entry_whole(tmp_path):
    """One output folder for three jobs: sparsity 0.5 (its files linked into the cache),
    then 0.7 (other models written over them), then 0.5 at two threads: its models come from
    the cache, whole (before detaching, the second job would have rewritten them), and its
    baseline, no longer in the local cache, from the tracking store, without training."""
    first = [*TINY, *outputs_to(tmp_path), "prune.sparsity=0.5"]
    for args in (first, [*first, "prune.sparsity=0.7"], [*first, "delegate.threads=2"]):
        if "delegate.threads=2" in args:  # the baseline is left in the tracking store only
            shutil.rmtree(tmp_path / "cache" / "baselines")
        proc = run_cli(args, cwd=tmp_path, command=pruneflow_command())
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "is corrupt" not in proc.stdout + proc.stderr, proc.stdout[-3000:]
    _, (half, seven, again) = read_runs(tmp_path)
    assert results.MODELS_FROM_TAG not in seven.data.tags
    assert again.data.tags[results.MODELS_FROM_TAG] == half.info.run_id
    assert again.data.tags[results.BASELINE_FROM_TAG] == "store"  # found, not trained
    assert "time/train_s" not in again.data.metrics
    assert again.data.metrics["sparsity"] == pytest.approx(half.data.metrics["sparsity"])


def test_an_entry_is_saved_from_files_under_the_job_s_folder_only(tmp_path):
    """A record naming a file outside the job's folder: nothing cached (its path could not be
    given back); inside: saved, and read back into another folder, linked and whole."""
    out = tmp_path / "out"
    (out / "models").mkdir(parents=True)
    model = out / "models" / "m.tflite"
    model.write_bytes(b"model")
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("x\n")
    numbers = {"m/accuracy": np.float32(0.5), "params_total": np.int64(7)}  # as numpy gives
    rec = results.Record(metrics=numbers, steps={1: {"train/loss": np.float64(0.1)}})
    cache = models_cache.ModelsCache(tmp_path / "cache", "k")
    with cache.locked():
        bad = results.Record(artifacts=[(outside, "eval")])
        assert not cache.save(out, models_cache.Made([rec, bad], {"m": model}), "r0")
        assert not cache.entry.exists()
        good = results.Record(artifacts=[(model, "models")])
        assert cache.save(out, models_cache.Made([rec, good], {"m": model}), "r1")
    back = cache.load(tmp_path / "other")
    assert back.run_id == "r1" and back.paths == {"m": tmp_path / "other" / "models" / "m.tflite"}
    assert back.records[0].metrics == {"m/accuracy": 0.5, "params_total": 7}
    assert back.records[0].steps == {1: {"train/loss": 0.1}}
    assert back.records[1].artifacts == [(back.paths["m"], "models")]
    assert back.paths["m"].read_bytes() == b"model"
    models_cache.detach(out)  # what a job does before writing into its folder
    assert model.stat().st_nlink == 1 and model.read_bytes() == b"model"
    model.write_bytes(b"other")  # rewritten in place, as converters do
    assert cache.load(tmp_path / "third").paths["m"].read_bytes() == b"model"
