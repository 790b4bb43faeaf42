"""`pruneflow compare` on a real sweep made by the console script with the tiny budget (and
its sweep-end setting, tracking.compare_rounds), bad input as one line, the interval on
constructed ratios. Timings are never asserted: structure, finite values, intervals that hold
their point, the dense rows at exactly 1."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from helpers.cli import TINY, compose, pruneflow_command, read_runs, run_cli, store_uri, sweep_cli
from helpers.sshd import free_port
from pruneflow import results
from pruneflow.config import check, from_settings
from pruneflow.stats import ratio_interval
from pruneflow.study.compare import COLUMNS, ROUND_COLUMNS, TAIL
from pruneflow.study.interleaved import APART
from pruneflow.study.report.interleaved import SECTION
from pruneflow.tracking.config import (
    COMPARE_ROUNDS_KEY,
    MAX_ROUNDS,
    MIN_ROUNDS,
    ROUNDS_RANGE,
    TrackingConfig,
)

SWEEP = ("prune.sparsity=0.5,0.9", "delegate.threads=1,2", "stage=int8")
VARIANTS = ["tflite_fp32", "tflite_int8"]
END_ROUNDS, ROUNDS = 2, 3


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Four jobs (two sparsities, two thread counts: two timing groups) that end with
    `pruneflow compare` (tracking.compare_rounds=2)."""
    tmp = tmp_path_factory.mktemp("compare")
    proc = sweep_cli(tmp, *SWEEP, f"{COMPARE_ROUNDS_KEY}={END_ROUNDS}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc


def compare_cli(tmp, *args, timeout=600):
    return run_cli(["compare", *args], cwd=tmp, command=pruneflow_command(), timeout=timeout)


def check_table(table: pd.DataFrame, runs, rounds: int) -> None:
    """Every run's every variant, and the dense baseline's variants of each timing group."""
    assert list(table.columns) == [*COLUMNS, "delegate.threads", *TAIL]
    pruned = table[table["dense"] == 0]
    dense = table[table["dense"] == 1]
    assert sorted(zip(pruned["run_id"], pruned["variant"], strict=True)) == sorted(
        (r.info.run_id, v) for r in runs for v in VARIANTS
    )
    for r in runs:  # each run's own settings, as the params say
        mine = pruned[pruned["run_id"] == r.info.run_id].iloc[0]
        assert mine["sparsity"] == float(r.data.params["prune.sparsity"])
        assert str(mine["delegate.threads"]) == r.data.params["delegate.threads"]
    assert (table["channels"] == 0).all() and (table["model"] == "digits-cnn").all()
    assert sorted(zip(dense["delegate.threads"], dense["variant"], strict=True)) == sorted(
        (t, v) for t in (1, 2) for v in VARIANTS
    )
    assert (dense["sparsity"] == 0).all() and dense["run_id"].isna().all()
    assert (dense[["ratio_to_dense", "ratio_ci_low", "ratio_ci_high"]] == 1.0).all().all()
    assert (table["rounds"] == rounds).all() and (table["device"] == "local").all()
    numbers = table[["p50_ms", "ratio_to_dense", "ratio_ci_low", "ratio_ci_high"]]
    assert np.isfinite(numbers.to_numpy()).all() and (numbers > 0).all().all()
    assert (table["ratio_ci_low"] <= table["ratio_to_dense"]).all()
    assert (table["ratio_to_dense"] <= table["ratio_ci_high"]).all()


def test_a_sweep_with_compare_rounds_ends_with_compare(swept):
    tmp, proc = swept
    client, runs = read_runs(tmp)
    _, (parent,) = read_runs(tmp, parents=True)
    folder = tmp / "multirun" / results.REPORT_DIR
    assert f"compare: {folder / results.COMPARE_CSV}" in proc.stdout, proc.stdout[-3000:]
    assert parent.info.status == "FINISHED"
    check_table(pd.read_csv(folder / results.COMPARE_CSV), runs, END_ROUNDS)
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, results.REPORT_DIR)}
    for name in (results.COMPARE_CSV, results.COMPARE_ROUNDS_CSV, results.COMPARE_PLOT):
        assert f"{results.REPORT_DIR}/{name}" in logged, logged
        assert (folder / name).stat().st_size > 0
    # the compare ran before the report, which shows its ratios; the summary points to them
    report = (folder / results.REPORT_MD).read_text()
    assert f"## {SECTION} ({results.COMPARE_CSV})" in report
    assert f"in {END_ROUNDS} interleaved rounds" in report
    at_end = f"the compare at this sweep's end ({results.REPORT_DIR}/{results.COMPARE_CSV})"
    assert f"{APART}: interleaved ratios in {at_end}" in proc.stdout.splitlines()


def test_a_thread_sweep_is_reported_per_thread_count(swept):
    """`-m delegate.threads=1,2` (this sweep's): each job records the threads the runtime
    really ran, and the sweep's report sets the thread counts side by side."""
    tmp, _ = swept
    _, runs = read_runs(tmp)
    for run in runs:
        threads = int(run.data.params["delegate.threads"])
        assert run.data.metrics["tflite_fp32/threads_used"] == threads
    report = (tmp / "multirun" / results.REPORT_DIR / "report.md").read_text()
    assert "## Threads (delegate.threads): latency and energy against threads" in report
    threads = report.split("## Threads")[1].split("\n## ")[0]
    assert "| model | sparsity | variant | 1 | 2 |" in threads, threads
    assert "| tflite_int8 |" in threads and "keras" not in threads
    assert "| decode | invoke | peak RSS MB | timed on | kernels |" in report


def test_compare_on_a_sweep_through_the_console_script(swept, tmp_path):
    """The latest sweep by default, into its folder's report/; --sweep and --out too."""
    tmp, _ = swept
    client, runs = read_runs(tmp)
    _, (parent,) = read_runs(tmp, parents=True)
    proc = compare_cli(tmp, "--rounds", str(ROUNDS), "--tracking-uri", store_uri(tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == "", proc.stderr  # no TensorFlow start-up lines on the console
    # the time it will take, said before it starts (from the p50s the runs logged)
    assert "3 rounds; timing alone " in proc.stdout, proc.stdout[:500]
    folder = tmp / "multirun" / results.REPORT_DIR
    table = pd.read_csv(folder / results.COMPARE_CSV)
    check_table(table, runs, ROUNDS)
    # every round times every model of its group once, in a shuffled order
    per_round = pd.read_csv(folder / results.COMPARE_ROUNDS_CSV)
    assert list(per_round.columns) == list(ROUND_COLUMNS)
    assert len(per_round) == ROUNDS * len(table)
    assert (per_round.groupby(["group", "round", "stem"]).size() == 1).all()
    assert (per_round.groupby(["group", "round"]).size() == 6).all()  # 2 runs x 2 + 2 dense
    for _, rounds in per_round.groupby("group"):
        orders = {tuple(g.sort_values("position")["stem"]) for _, g in rounds.groupby("round")}
        assert len(orders) > 1, "every round timed the models in the same order"
    dense = per_round[per_round["dense"] == 1]
    assert (dense["ratio"] == 1.0).all()
    # the summary is the rounds' own: median p50, geometric mean of the per-round ratios
    for _, row in table[table["dense"] == 0].iterrows():
        mine = per_round[per_round["stem"] == f"{row['run_id']}-{row['variant']}"]
        assert row["p50_ms"] == pytest.approx(float(np.median(mine["p50_ms"])))
        assert row["ratio_to_dense"] == pytest.approx(math.exp(np.log(mine["ratio"]).mean()))
    assert f"compare of sweep {parent.data.tags[results.SWEEP_TAG]}" in proc.stdout

    out = tmp_path / "elsewhere"
    proc = compare_cli(tmp, "--rounds", "2", "--sweep", parent.info.run_id, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_table(pd.read_csv(out / results.COMPARE_CSV), runs, 2)
    assert (out / results.COMPARE_PLOT).stat().st_size > 0


@pytest.mark.parametrize(
    "args, message, status",
    [
        (["--rounds", "0"], f"--rounds 0 is invalid: valid values are integers >= {MIN_ROUNDS}", 2),
        (["--rounds", "1"], f"--rounds 1 is invalid: valid values are integers >= {MIN_ROUNDS}", 2),
        (["--rounds", "abc"], "argument --rounds: invalid int value: 'abc'", 2),
        (["--rounds", "1001"], f"--rounds 1001 is invalid: valid values are {ROUNDS_RANGE}", 2),
        (["--sweep", "0123456789abcdef"], "no run '0123456789abcdef'", 1),
        (["--experiment", "nope"], "no experiment 'nope'", 1),
        (["--tracking-uri", "http://127.0.0.1:{port}"], "does not answer", 1),
    ],
)
def test_bad_input_is_one_line(swept, args, message, status):
    tmp, _ = swept
    args = [a.format(port=free_port()) for a in args]
    proc = compare_cli(tmp, *args, timeout=120)
    assert proc.returncode == status, proc.stderr
    assert proc.stderr.startswith("pruneflow compare: error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_no_store_and_an_out_that_is_a_file_are_one_line(tmp_path):
    proc = compare_cli(tmp_path, timeout=120)
    assert proc.returncode == 1 and "no MLflow store at" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    (tmp_path / "taken").write_text("mine\n")
    proc = compare_cli(tmp_path, "--out", str(tmp_path / "taken"), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        f"pruneflow compare: error: --out {tmp_path / 'taken'} is a file: valid values are a "
        "folder, existing or new\n"
    )


def test_a_sweep_whose_folder_is_gone_needs_out(swept):
    """Before any model is converted or timed: one line naming --out."""
    tmp, _ = swept
    moved = tmp / "multirun-moved"
    shutil.move(tmp / "multirun", moved)
    try:
        proc = compare_cli(tmp, "--rounds", "2", timeout=120)
    finally:
        shutil.move(moved, tmp / "multirun")
    assert proc.returncode == 2, proc.stderr
    assert "is gone: pass --out FOLDER" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_compare_rounds_is_checked_and_not_in_the_job_key(tmp_path):
    plain = check(compose([]))
    on = check(compose([f"{COMPARE_ROUNDS_KEY}=5"]))
    assert on.tracking.compare_rounds == 5
    assert plain.tracking.compare_rounds == TrackingConfig.compare_rounds == 3  # the default
    assert check(compose(TINY)).tracking.compare_rounds == 0  # +debug=tiny: off
    assert on.job_key == plain.job_key
    assert COMPARE_ROUNDS_KEY == "tracking." + next(
        f for f in TrackingConfig.__dataclass_fields__ if f == "compare_rounds"
    )
    proc = sweep_cli(tmp_path, "prune.sparsity=0.5,0.9", f"{COMPARE_ROUNDS_KEY}=1", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("pruneflow: error: in sweep job [")
    assert proc.stderr.strip().endswith(
        f"{COMPARE_ROUNDS_KEY}=1 is invalid: valid values are 0 (off) or integers >= "
        f"{MIN_ROUNDS} and <= {MAX_ROUNDS} (a paired interval needs {MIN_ROUNDS} rounds)"
    )
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "mlruns").exists() or not read_runs(tmp_path)[1]


def test_a_runs_config_yaml_composes_back_to_its_config():
    from omegaconf import OmegaConf

    for overrides in ([], ["device=rpi4", "device.host=pi"], ["prune.channels=0.5"]):
        config = check(compose([*TINY, *overrides]))
        again = from_settings(OmegaConf.to_yaml(config.as_dict()))
        assert again.as_dict() == config.as_dict() and again.job_key == config.job_key


def test_ratio_interval_is_a_t_interval_on_log_ratios():
    assert ratio_interval([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)
    ratios = [0.8, 1.1, 0.95, 1.3, 0.9]
    point, low, high = ratio_interval(ratios)
    logs = np.log(ratios)
    t_low, t_high = scipy_stats.t.interval(
        0.95, len(logs) - 1, loc=logs.mean(), scale=scipy_stats.sem(logs)
    )
    assert point == pytest.approx(math.exp(logs.mean()))
    assert (low, high) == pytest.approx((math.exp(t_low), math.exp(t_high)))
    assert low < point < high
    # the same ratios inverted (the dense one against the pruned one): the reciprocal interval
    inverse = ratio_interval([1 / r for r in ratios])
    assert inverse == pytest.approx((1 / point, 1 / high, 1 / low))
    assert all(math.isnan(v) for v in ratio_interval([1.2]))
    assert all(math.isnan(v) for v in ratio_interval([1.2, math.nan, 0.0]))
