"""A search instead of a grid: a sweep run by Hydra's Optuna sweeper (``hydra/sweeper=optuna``,
the preset ``+experiment=search``) is a study like any other (one parent run, a nested run per
trial, resume, the summary and the report), and its jobs return what Optuna optimizes.

- :func:`check`: ``search.objectives`` (metric names a job logs) and the sweeper's
  ``direction`` list, one line before any trial when they do not fit together; and
  :func:`check_trials`, a search of at least one trial;
- :func:`trial_result`: a trial's return value, the objectives' values in its metrics (a
  trial resumed from its FINISHED run returns that run's metrics, so a finished search run
  again retrains nothing); a failed trial returns None, which the sweeper tells Optuna as a
  failed trial, and the search goes on;
- :func:`write_front`: at the sweep's end, the trials' Pareto front over the objectives:
  ``pareto.csv`` and ``pareto_search.png`` in the report folder, the front's runs tagged on the
  parent run.

Light at import (no Optuna, no TensorFlow).
"""

from __future__ import annotations

import csv
import difflib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from pruneflow import results
from pruneflow.errors import ConfigError

OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
DIRECTIONS = ("maximize", "minimize")


def is_search(sweeper) -> bool:
    """Whether the sweeper node (``hydra.sweeper``) is Optuna's."""
    return sweeper is not None and str(sweeper.get("_target_", "")) == OPTUNA_SWEEPER


def directions(sweeper) -> list[str]:
    """The sweeper's ``direction`` as a list (Optuna's sweeper takes one name or a list)."""
    d = sweeper.get("direction", "minimize")
    return [str(d)] if isinstance(d, str) else [str(x) for x in d]


def logged_metrics(variants: Sequence[str]) -> list[str]:
    """The metric names every job with these ``stage.variants`` logs: what an objective may
    name (run-level figures, and each variant's accuracy, evidence, sizes and latency)."""
    per_variant = [
        *results.VARIANT_MEASURES,
        *results.EVIDENCE,
        *(results.invoke(s) for s in results.SPLIT_STATS),
        *(results.decode(s) for s in results.SPLIT_STATS),
    ]
    names = [
        results.BASELINE_ACCURACY,
        results.SPARSITY,
        results.PARAMS_TOTAL,
        results.PARAMS_NONZERO,
        results.CHANNELS,
        results.MACS,
        results.CHANNELS_ALL,
        results.MACS_REMOVED,
    ]
    for v in [results.KERAS, *variants]:
        names += [results.metric(v, m) for m in per_variant]
        if v != results.KERAS:
            names.append(results.metric(v, results.FILE_SPARSITY))
    return names


def check(objectives: Sequence[str], wanted: Sequence[str], variants: Sequence[str]) -> None:
    """:class:`ConfigError` (one line) unless ``objectives`` is a non-empty list of metrics a
    job logs, as long as the sweeper's directions ``wanted``, each maximize or minimize."""
    if not objectives:
        raise ConfigError(
            "search.objectives is required under hydra/sweeper=optuna: the metrics the search "
            "optimizes, e.g. search.objectives=[tflite_int8/accuracy,tflite_int8/gzip_bytes] "
            "with hydra.sweeper.direction=[maximize,minimize]"
        )
    bad = [d for d in wanted if d not in DIRECTIONS]
    if bad:
        raise ConfigError(
            f"hydra.sweeper.direction={list(wanted)} is invalid: valid values are a list of "
            f"{' or '.join(DIRECTIONS)}, one per objective"
        )
    if len(objectives) != len(wanted):
        raise ConfigError(
            f"search.objectives has {len(objectives)} metrics ({', '.join(objectives)}) but "
            f"hydra.sweeper.direction has {len(wanted)} ({', '.join(wanted)}): give one "
            "direction per objective"
        )
    known = logged_metrics(variants)
    for name in objectives:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            variant = name.split("/")[0]
            why = (
                f" (stage.variants={list(variants)} does not build {variant})"
                if "/" in name and variant.startswith("tflite") and variant not in variants
                else ""
            )
            hint = f"; did you mean {' or '.join(near)}?" if near else ""
            raise ConfigError(f"search.objectives has {name}, which no job logs{why}{hint}")


def check_trials(sweeper) -> None:
    """:class:`ConfigError` (one line) unless the sweeper's ``n_trials`` is at least 1: a
    search of no trial ran nothing and ended FINISHED."""
    n = sweeper.get("n_trials")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(
            f"hydra.sweeper.n_trials={n} is invalid: valid values are integers >= 1 (the "
            "trials the search runs)"
        )


def objective_values(metrics: Mapping[str, float], objectives: Sequence[str]) -> list[float]:
    """The objectives' values in a job's ``metrics`` (NaN where missing)."""
    return [float(metrics.get(name, math.nan)) for name in objectives]


def trial_result(metrics: Mapping[str, float] | None, objectives: Sequence[str]):
    """What a trial returns to Optuna's sweeper: the objectives' values, or None for a failed
    job or one missing a value (the sweeper then tells Optuna the trial failed and the search
    goes on; NaN values would stop it: Optuna 2.10 refuses them twice)."""
    values = objective_values(metrics or {}, objectives)
    if metrics is None or any(math.isnan(v) for v in values):
        return None
    return values[0] if len(values) == 1 else values  # one direction: the sweeper wants a float


def front(points: Sequence[Sequence[float]], wanted: Sequence[str]) -> list[int]:
    """Indices of the points no other point dominates (as good on every objective, better on
    one), for the ``wanted`` directions; points with a NaN are never on it."""
    sign = [1.0 if d == "minimize" else -1.0 for d in wanted]
    costs = [[s * v for s, v in zip(sign, p, strict=True)] for p in points]
    ok = [i for i, c in enumerate(costs) if not any(math.isnan(v) for v in c)]
    keep = []
    for i in ok:
        a = costs[i]
        dominated = any(
            all(b <= x for b, x in zip(costs[j], a, strict=True))
            and any(b < x for b, x in zip(costs[j], a, strict=True))
            for j in ok
            if j != i
        )
        if not dominated:
            keep.append(i)
    return keep


def write_front(
    runs: Sequence,
    objectives: Sequence[str],
    wanted: Sequence[str],
    params: Sequence[str],
    out: Path,
) -> list:
    """The Pareto front of the FINISHED ``runs`` (MLflow runs) over ``objectives``:
    ``out/pareto.csv`` (a row per run on the front: run id and name, the searched ``params``,
    the objectives) and ``out/pareto_search.png`` (the first two objectives, every trial, the
    front marked); returns the runs on the front."""
    done = [r for r in runs if r.info.status == "FINISHED"]
    points = [objective_values(r.data.metrics, objectives) for r in done]
    on = [done[i] for i in front(points, wanted)]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / results.FRONT_CSV, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["run_id", "run_name", *params, *objectives])
        for r in sorted(on, key=lambda r: objective_values(r.data.metrics, objectives)):
            writer.writerow(
                [
                    r.info.run_id,
                    r.info.run_name,
                    *(r.data.params.get(p, "") for p in params),
                    *objective_values(r.data.metrics, objectives),
                ]
            )
    _plot(points, [done.index(r) for r in on], objectives, wanted, out / results.FRONT_PLOT)
    return on


def _plot(points, on: list[int], objectives, wanted, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    x = 1 if len(objectives) > 1 else 0
    xs = [p[x] for p in points]
    ys = [p[0] for p in points]
    ax.scatter(xs, ys, s=18, color="0.6", label="trials")
    best = sorted(on, key=lambda i: points[i][x])
    ax.plot([xs[i] for i in best], [ys[i] for i in best], "o-", color="C3", label="Pareto front")
    ax.set_xlabel(f"{objectives[x]} ({wanted[x]})")
    ax.set_ylabel(f"{objectives[0]} ({wanted[0]})")
    title = "search: every trial and the front"
    if len(objectives) > 2:
        title += f" (over {len(objectives)} objectives)"
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
