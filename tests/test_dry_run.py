"""`pruneflow +debug=tiny`: the users' dry run (conf/debug/tiny.yaml), the whole chain on the
tests' own budget, through the console script as a user types it."""

from __future__ import annotations

from helpers.cli import TINY, compose, outputs_to, pruneflow_command, read_runs, run_cli
from pruneflow.config import check
from pruneflow.results import ACCURACY, KERAS, metric


def test_the_dry_run_finishes_the_whole_chain_with_every_variants_accuracy(tmp_path):
    proc = run_cli(
        ["+debug=tiny", *outputs_to(tmp_path)],
        cwd=tmp_path,
        timeout=600,
        command=pruneflow_command(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, runs = read_runs(tmp_path)
    assert [r.info.status for r in runs] == ["FINISHED"], runs
    data = runs[0].data
    # the budget the preset sets is the one the run used (and the tests' TINY)
    tiny = dict(o.split("=", 1) for o in TINY)
    assert {k: data.params[k] for k in tiny} == tiny
    for variant in (KERAS, *check(compose()).stage.variants):
        assert 0.0 <= data.metrics[metric(variant, ACCURACY)] <= 1.0, variant
