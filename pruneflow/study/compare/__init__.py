"""``pruneflow compare``: a sweep's models against its dense baseline, timed side by side.

The jobs of a sweep time their models minutes apart, on a device whose speed drifts (heat,
clocks, other load), so two runs' latencies differ by more than their models do. Here every
``.tflite`` variant of the sweep's FINISHED runs (their ``models/*.tflite`` artifacts) and the
same variants converted from each run's **dense baseline** (the unpruned model, found through
the pipeline's own cache and store code, :func:`pruneflow.pipeline.get_baseline`, converted
with :func:`~pruneflow.steps.convert.convert.export_models`, the run's ``stage`` config and its
calibration sample) are timed again on the run's device with its delegate, by its benchmark
protocol and images, **interleaved**: each round times every model once, in a shuffled (seeded)
order, by one call of the device's runner (:meth:`pruneflow.devices.base.Device.benchmark`)
inside the device's timing lock (:mod:`pruneflow.devices.locks`). Drift then hits a model and
its dense counterpart alike.

The statistic is each model's per-image **invoke p50** per round (set_tensor + invoke +
get_tensor, the runner's ``invoke_ms``, the first image apart as everywhere; image decoding is
the same for every model and left out). ``p50_ms`` is its median over the rounds;
``ratio_to_dense`` is the model's p50 over its dense baseline's (same variant) in the same
round, summarised over the rounds as a geometric mean, with a 95% paired interval: Student's t
on the log ratios, exponentiated (:func:`pruneflow.stats.ratio_interval`). The dense rows are
their own reference: ratio exactly 1, interval [1, 1].

Runs that differ in where or how they are timed (device, delegate, benchmark images or
protocol, dataset) are timed in separate groups, each model against the dense baseline of its
own group, baseline and stage settings.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from pruneflow import results
from pruneflow.study.compare.output import lines, plot, write
from pruneflow.study.compare.plan import (
    COLUMNS,
    DEFAULT_ROUNDS,
    DEFAULT_SEED,
    ROUND_COLUMNS,
    STATISTIC,
    TAIL,
    CompareError,
    Plan,
    plan,
)
from pruneflow.study.compare.rounds import check_devices, prepare, run_rounds, summarise
from pruneflow.tracking.config import MIN_ROUNDS
from pruneflow.tracking.runs import store_client

__all__ = [
    "COLUMNS",
    "DEFAULT_ROUNDS",
    "DEFAULT_SEED",
    "ROUND_COLUMNS",
    "STATISTIC",
    "TAIL",
    "CompareError",
    "Plan",
    "check_devices",
    "compare",
    "compare_sweep",
    "lines",
    "plan",
    "plot",
    "prepare",
    "run_rounds",
    "summarise",
    "write",
]


def compare(
    the_plan: Plan,
    out: Path,
    rounds: int,
    seed: int = DEFAULT_SEED,
    say: Callable[[str], None] = print,
) -> tuple[list[dict], list[Path]]:
    """The whole comparison of a :func:`plan`: models prepared, ``rounds`` interleaved rounds,
    compare.csv, compare_rounds.csv and compare.png in ``out``, also logged to the sweep's
    parent run (``report/``). Returns (compare.csv's rows, the files)."""
    if rounds < MIN_ROUNDS:
        raise CompareError(f"rounds={rounds}: a paired interval needs at least {MIN_ROUNDS}")
    check_devices(the_plan)
    with tempfile.TemporaryDirectory(prefix="pruneflow-compare.") as tmp:
        work = Path(tmp)
        images = prepare(the_plan, work, say)
        per_round = run_rounds(the_plan, images, work, rounds, seed, say)
    table = summarise(the_plan)
    paths = write(the_plan, table, per_round, out)
    client = store_client(the_plan.uri)
    for path in paths:
        client.log_artifact(the_plan.parent_id, str(path), results.REPORT_DIR)
    return table, paths


def compare_sweep(
    uri: str,
    experiment: str,
    parent_id: str,
    out: Path,
    rounds: int,
    seed: int = DEFAULT_SEED,
    say: Callable[[str], None] = print,
) -> tuple[list[dict], list[Path]]:
    """:func:`compare` of the sweep whose parent run is ``parent_id`` (the sweep's end)."""
    from pruneflow.study.report import select

    return compare(plan(select(uri, experiment, sweep=parent_id), say), out, rounds, seed, say)
