"""A search instead of a grid (hydra/sweeper=optuna, +experiment=search): the Pareto front,
the objectives' checks before any trial, trials that return their objectives to Optuna, failed
trials that do not stop the search, and a finished search run again that trains nothing."""

from __future__ import annotations

import csv
import math

import pytest

from helpers.cli import TINY, outputs_to, read_runs, run_cli, sweep_cli
from pruneflow import results
from pruneflow.errors import ConfigError
from pruneflow.study import search

SEARCH = ["+experiment=search", "cluster.epochs=1", "stage.qat_epochs=1"]
OBJECTIVES = ["tflite_int8/accuracy", "tflite_int8/invoke_p50_ms", "tflite_int8/gzip_bytes"]
WANTED = ["maximize", "minimize", "minimize"]


def test_the_front_keeps_exactly_the_points_nothing_dominates():
    points = [
        (0.98, 2.0, 50.0),  # on it: most accurate
        (0.90, 1.0, 40.0),  # on it: fastest and smallest
        (0.97, 1.5, 45.0),  # on it: between
        (0.96, 2.0, 50.0),  # dominated by the first
        (0.97, 1.5, 46.0),  # dominated by the third
        (math.nan, 0.1, 1.0),  # a failed trial: never on it
    ]
    assert search.front(points, WANTED) == [0, 1, 2]
    assert search.front([(1.0,), (2.0,)], ["minimize"]) == [0]
    assert search.trial_result({"a": 1.0, "b": 2.0}, ["b", "a"]) == [2.0, 1.0]
    assert search.trial_result({"a": 1.0}, ["a", "b"]) is None  # a value missing: failed
    assert search.trial_result(None, ["a"]) is None
    assert search.trial_result({"a": 1.0}, ["a"]) == 1.0  # one objective: a float


@pytest.mark.parametrize(
    ("objectives", "wanted", "says"),
    [
        ([], ["minimize"], "search.objectives is required under hydra/sweeper=optuna"),
        (OBJECTIVES[:2], WANTED, "search.objectives has 2 metrics"),
        (OBJECTIVES, ["maximize", "minimize", "smaller"], "hydra.sweeper.direction=["),
        (
            ["tflite_int8_qat/accuracy"],
            ["maximize"],
            "tflite_int8_qat/accuracy, which no job logs (stage.variants=['tflite_fp32', "
            "'tflite_int8'] does not build tflite_int8_qat)",
        ),
        (["tflite_int8/gzip_byte"], ["minimize"], "did you mean tflite_int8/gzip_bytes"),
    ],
)
def test_objectives_that_cannot_work_are_one_line(objectives, wanted, says):
    with pytest.raises(ConfigError) as err:
        search.check(objectives, wanted, ["tflite_fp32", "tflite_int8"])
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_console_refuses_mismatched_directions_before_any_trial(tmp_path):
    proc = run_cli(
        ["-m", *SEARCH, *TINY, *outputs_to(tmp_path), "hydra.sweeper.direction=[maximize]"],
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("pruneflow: error: search.objectives has 3 metrics")
    ), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("trials", ["0", "-1"])
def test_a_search_of_no_trial_is_refused_before_any_work(tmp_path, trials):
    """`hydra.sweeper.n_trials=0` ran nothing and ended FINISHED, exit 0 (issue #26)."""
    proc = run_cli(
        ["-m", *SEARCH, *TINY, *outputs_to(tmp_path), f"hydra.sweeper.n_trials={trials}"],
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [
        f"pruneflow: error: hydra.sweeper.n_trials={trials} is invalid: valid values are "
        "integers >= 1 (the trials the search runs)"
    ]
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "cache").exists()


def test_a_search_is_a_study_with_its_front_and_run_again_it_trains_nothing(tmp_path):
    """`pruneflow -m +experiment=search hydra.sweeper.n_trials=2` (the console script): two
    nested trial runs under one parent, the front of the three objectives in pareto.csv and
    pareto_search.png (in the sweep's report and on the parent, its runs tagged); the same
    command again adds no run and its summary lists the two as skipped. (Two trials: a third
    trained one more job and tested nothing more.)"""
    proc = sweep_cli(tmp_path, *SEARCH, "hydra.sweeper.n_trials=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, runs = read_runs(tmp_path)
    _, (parent,) = read_runs(tmp_path, parents=True)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert parent.data.tags[results.OBJECTIVES_TAG] == ", ".join(
        f"{o}:{d}" for o, d in zip(OBJECTIVES, WANTED, strict=True)
    )
    front = parent.data.tags[results.FRONT_TAG].split(",")
    assert front and set(front) <= {r.info.run_id for r in runs}
    report = tmp_path / "multirun" / "report"
    with open(report / results.FRONT_CSV) as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["run_id"] for r in rows) == sorted(front)
    assert {"prune.sparsity", "cluster.clusters", *OBJECTIVES} <= set(rows[0])
    assert (report / results.FRONT_PLOT).is_file()
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert f"report/{results.FRONT_CSV}" in artifacts
    assert "search: " in proc.stdout and "on the Pareto front of" in proc.stdout

    again = sweep_cli(tmp_path, *SEARCH, "hydra.sweeper.n_trials=2")
    assert again.returncode == 0, again.stderr[-3000:]
    _, runs_after = read_runs(tmp_path)
    assert len(runs_after) == 2  # every trial resumed from its FINISHED run
    assert "2 skipped" in again.stdout, again.stdout[-2000:]
    assert "(cache" not in again.stdout + again.stderr  # no baseline even loaded


def test_a_failed_trial_is_told_to_optuna_and_the_search_goes_on(tmp_path):
    """Every trial fails at its start (a layer name the model lacks): both trials are still
    tried, each says why in one line, and nothing ends in a traceback."""
    proc = sweep_cli(tmp_path, *SEARCH, "hydra.sweeper.n_trials=2", "prune.exclude_layers=[nope]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for num in (0, 1):
        assert f"pruneflow: job {num} failed: prune.exclude_layers=['nope'] is invalid" in (
            proc.stderr
        )
    assert "Traceback" not in proc.stderr
