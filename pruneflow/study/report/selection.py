"""Which runs a report reads (a sweep, an experiment, a filter) and their table: one row per
run and variant, every column named through :mod:`pruneflow.results`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from pruneflow import results
from pruneflow.errors import PruneflowError
from pruneflow.steps.convert.variants import VARIANTS
from pruneflow.tracking.runs import finished_run, store_client
from pruneflow.tracking.store import sqlite_file

MEASURES = results.VARIANT_MEASURES
UNIQUE_WEIGHTS = results.UNIQUE_WEIGHTS  # logged by clustered runs only
# beside the paper's: the per-image time's parts, the steady state, the model's own memory,
# the threads the runtime really ran and the unique weights (where the runs have them)
EXTRA_MEASURES = (
    results.decode("p50"),
    results.invoke("p50"),
    results.steady("p50"),
    results.PEAK_RSS,
    results.THREADS_USED,
    UNIQUE_WEIGHTS,
)


@dataclass(frozen=True)
class Dimension:
    """A dimension of a configuration beside its sparsity: its column in the report's table,
    the param it reads (0, off, for a run made before the param existed), the type of its
    values, and the prefix that labels it (``c0.25``, ``cl16``)."""

    column: str
    param: str
    prefix: str
    kind: type = float


DIMENSIONS = (
    Dimension("channels", "prune.channels", "c"),  # the target fraction of channels removed
    Dimension("clusters", "cluster.clusters", "cl", int),  # centroids per weight tensor
)
DIMENSION_COLUMNS = tuple(d.column for d in DIMENSIONS)
# Params that are columns of their own (target_sparsity, the dimensions, threads, seed), and
# the sections that say where outputs go (not what is computed: paths, tracking): never a
# swept setting of their own (:func:`swept_params`).
OWN_COLUMNS = ("prune.sparsity", *(d.param for d in DIMENSIONS), "delegate.threads", "seed")
NOT_SETTINGS = ("paths.", "tracking.")


class ReportError(PruneflowError, ValueError):
    """Nothing to report, or no such store, experiment or sweep; the message says which."""


@dataclass
class Selection:
    """The runs a report covers and where they came from."""

    runs: object  # pandas DataFrame from mlflow.search_runs: one row per job run
    title: str
    uri: str
    experiment: str
    parent_id: str | None = None
    foreign: int = 0  # runs of the experiment that pruneflow did not make, left out


def select(
    uri: str,
    experiment: str = "pruneflow",
    sweep: str | None = None,
    all_runs: bool = False,
    filter_string: str | None = None,
) -> Selection:
    """The job runs of one sweep (``sweep``: a parent run id; default the latest sweep), of a
    whole experiment (``all_runs``) or matched by an MLflow filter."""
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from mlflow.exceptions import MlflowException

    db = sqlite_file(uri)
    if db is not None and not db.exists():
        raise ReportError(
            f"no MLflow store at {db}: run pruneflow in this folder first, or pass --tracking-uri"
        )
    client = store_client(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ReportError(f"no experiment {experiment!r} in {uri}; experiments there: {names}")
    mlflow.set_tracking_uri(uri)
    parent_id, title = None, f"experiment {experiment}"
    if filter_string or all_runs:
        where = filter_string or ""
        if filter_string:
            title += f", runs matching {filter_string!r}"
    else:
        if sweep is None:
            parents = client.search_runs(
                [exp.experiment_id],
                filter_string=f"tags.`{results.SWEEP_TAG}` LIKE 'sweep-%'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if not parents:
                raise ReportError(
                    f"experiment {experiment!r} has no sweep yet: run one (pruneflow -m ...), or "
                    "report every run with --all or some with --filter"
                )
            parent = parents[0]
        else:
            try:
                parent = client.get_run(sweep)
            except MlflowException:
                raise ReportError(
                    f"no run {sweep!r} in {uri} (--sweep takes a parent run id)"
                ) from None
            if results.SWEEP_TAG not in parent.data.tags:
                raise ReportError(f"run {sweep} is not a sweep's parent run (it has no sweep tag)")
        parent_id = parent.info.run_id
        title = f"sweep {parent.data.tags[results.SWEEP_TAG]} (parent run {parent_id})"
        where = _sweep_filter(client, exp.experiment_id, parent_id)
    try:
        runs = mlflow.search_runs(
            [exp.experiment_id], filter_string=where, output_format="pandas", max_results=50000
        )
    except MlflowException as exc:
        raise ReportError(f"--filter {filter_string!r} is not an MLflow filter: {exc}") from None
    sweep_col = f"tags.{results.SWEEP_TAG}"
    if len(runs) and sweep_col in runs:
        runs = runs[runs[sweep_col].isna()]  # job runs only, not parents
    made_col = f"tags.{results.MADE_BY_TAG}"
    made = runs[made_col].notna() if made_col in runs else runs["run_id"].isna()
    foreign = int((~made).sum())
    runs = runs[made]  # not a run of pruneflow's (plain MLflow's): its columns differ
    if not len(runs):
        also = f" ({skipped_line(foreign)})" if foreign else ""
        raise ReportError(f"no runs to report in {title} of {uri}{also}")
    return Selection(runs.reset_index(drop=True), title, uri, experiment, parent_id, foreign)


def skipped_line(foreign: int) -> str:
    """What a report says of the runs it skipped as not pruneflow's (:data:`Selection.foreign`)."""
    s = "" if foreign == 1 else "s"
    return (
        f"skipped {foreign} run{s} that pruneflow did not make (no {results.MADE_BY_TAG} tag: "
        "logged by plain MLflow or another tool)"
    )


def all_runs(client, experiment_id: str, where: str, page: int = 1000):
    """Every run of ``experiment_id`` matching ``where``, page after page (one search returns
    ``page`` runs at most: a sweep of more runs would lose the rest)."""
    token = None
    while True:
        found = client.search_runs(
            [experiment_id], filter_string=where, max_results=page, page_token=token
        )
        yield from found
        token = found.token
        if not token:
            return


def _sweep_filter(client, experiment_id: str, parent_id: str) -> str:
    """The sweep's own runs and, for jobs it skipped, the finished runs it found (resume)."""

    own = f"tags.`{results.PARENT_TAG}` = '{parent_id}'"
    ids = {r.info.run_id for r in all_runs(client, experiment_id, own)}
    try:
        jobs = json.loads(Path(client.download_artifacts(parent_id, results.JOBS_FILE)).read_text())
    except Exception:  # noqa: BLE001 - a parent without its job list: its own runs only
        jobs = []
    for job in jobs:
        done = finished_run(client.tracking_uri, experiment_id, job["key"])
        if done is not None:
            ids.add(done.info.run_id)
    if not ids:
        raise ReportError(f"sweep {parent_id} has no runs (it was stopped before any job ran?)")
    return "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in sorted(ids)) + ")"


# -- tables ---------------------------------------------------------------------------------------
def rows(selection: Selection):
    """One row per run and variant: runs.csv, and what every table and plot reads.

    Beside the sparsity, a column per dimension of :data:`DIMENSIONS` (0 for runs made before
    its param existed): ``channels`` the target fraction of output channels removed
    (``params.prune.channels``), with ``measured_channels`` the fraction really removed and the
    run's ``macs`` (per image, of the converted model), ``baseline_macs`` and ``params_total``;
    ``clusters`` the centroids per weight tensor of weight clustering
    (``params.cluster.clusters``, 0: not clustered), with each variant's ``unique_weights``
    (NaN where a run lacks them).

    Issue #18's evidence: ``seed`` (``params.seed``; missing before it was logged), every
    variant's Wilson interval (``accuracy_ci_low``/``_high``) and paired comparison with the
    baseline (``vs_baseline_delta``, ``_p``, ``_ci_low``, ``_ci_high``), the baseline's own
    interval (``baseline_ci_low``/``_high``): NaN for runs made before them. And every other
    setting the runs sweep (:func:`swept_params`) as its ``params.<key>`` column.
    """
    import pandas as pd

    runs = selection.runs
    swept, logged = swept_params(runs), variants(runs)
    out = []
    for _, run in runs.iterrows():
        tags = {c[5:]: v for c, v in run.items() if c.startswith("tags.")}
        name = tags.get("mlflow.runName") or ""
        model = _model(tags, name)
        for variant in logged:
            row = {
                "run_id": run["run_id"],
                "run_name": name,
                "seed": _float(run.get("params.seed")),
                "status": run["status"],
                "model": model,
                "dataset": tags.get(results.DATASET_TAG) or model.split("-")[0],
                "backbone": tags.get(results.BACKBONE_TAG) or "-".join(model.split("-")[1:]),
                "target_sparsity": _float(run.get("params.prune.sparsity")),
                "measured_sparsity": _float(run.get(f"metrics.{results.SPARSITY}")),
                **{d.column: _setting(run.get(f"params.{d.param}"), d.kind) for d in DIMENSIONS},
                "measured_channels": _float(run.get(f"metrics.{results.CHANNELS}")),
                "macs": _float(run.get(f"metrics.{results.MACS}")),
                "baseline_macs": _float(run.get(f"metrics.{results.BASELINE_MACS}")),
                "params_total": _float(run.get(f"metrics.{results.PARAMS_TOTAL}")),
                **{p: _param(run.get(p)) for p in swept},
                "variant": variant,
            }
            for m in (*MEASURES, *EXTRA_MEASURES, *results.EVIDENCE):
                row[m] = _float(run.get(f"metrics.{results.metric(variant, m)}"))
            threads = run.get("params.delegate.threads")
            row["threads"] = (
                "–"  # TensorFlow does not take LiteRT's thread count
                if variant == results.KERAS
                else "default"
                if threads in (None, "None", "null")
                else str(threads)
            )
            row["val_images"] = _float(run.get(f"metrics.{results.VAL_IMAGES}"))
            row["baseline_accuracy"] = _float(run.get(f"metrics.{results.BASELINE_ACCURACY}"))
            row["baseline_ci_low"] = _float(run.get(f"metrics.{results.BASELINE_CI_LOW}"))
            row["baseline_ci_high"] = _float(run.get(f"metrics.{results.BASELINE_CI_HIGH}"))
            row["val_loss"] = _float(run.get("metrics." + results.CURVES["val_loss"]))
            row["device"] = tags.get("device") or ""
            # where this variant was timed: the device, or "host" beside a remote device
            row["timed_on"] = tags.get(results.timed_on_tag(variant)) or row["device"]
            row["kernels"] = tags.get(results.kernels_tag(variant)) or ""
            row["error"] = tags.get(results.ERROR_MESSAGE_TAG) or ""
            out.append(row)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    table["seed"] = table["seed"].astype("Int64")  # 42, not 42.0; <NA> for runs without
    return table.sort_values(
        ["model", "target_sparsity", *DIMENSION_COLUMNS, *swept, "variant", "threads", "seed"],
        kind="stable",
    )


def variants(runs) -> list[str]:
    """The variants (``keras``, ``tflite_*``) that runs of ``runs`` (``search_runs``) logged an
    accuracy of, in pruneflow's order: the report's rows per run."""
    found = {
        c.split(".", 1)[1].rsplit("/", 1)[0] for c in runs if c.endswith("/" + results.ACCURACY)
    }
    return [v for v in (results.KERAS, *VARIANTS) if v in found]


def swept_params(runs) -> list[str]:
    """The ``params.<key>`` columns of ``runs`` (``search_runs``) that the runs sweep besides
    sparsity, its dimensions (channels, clusters), threads and seed: a param with two or more
    values among the runs of one model (``train.epochs=1,5``, ``device=local,pi``,
    ``prune.schedule``...), never where outputs go (``paths.*``, ``tracking.*``). A param that
    only some runs have (added to pruneflow later) counts when those runs differ; a run
    without it reads ``–``. A param that takes one value per seed (``dataset.seed``, which is
    ``${seed}``) follows the seed and is not a setting."""
    if not len(runs):
        return []
    tags = runs.filter(like="tags.").rename(columns=lambda c: c[5:])
    model = [
        _model(t, t.get("mlflow.runName") or "")
        for t in tags.where(tags.notna(), None).to_dict("records")
    ]
    seeds = runs["params.seed"].fillna("") if "params.seed" in runs else None
    swept = []
    for column in runs:
        if not column.startswith("params."):
            continue
        key = column[len("params.") :]
        if key in OWN_COLUMNS or key.startswith(NOT_SETTINGS):
            continue
        if not (runs[column].groupby(model).nunique(dropna=True) > 1).any():
            continue
        if seeds is not None and (runs[column].groupby([model, seeds]).nunique() <= 1).all():
            continue  # it follows the seed (dataset.seed is ${seed}): not a setting of its own
        swept.append(column)
    return sorted(swept)


def _model(tags: dict, run_name: str) -> str:
    if tags.get(results.MODEL_TAG):
        return tags[results.MODEL_TAG]
    if tags.get(results.DATASET_TAG) and tags.get(results.BACKBONE_TAG):
        return f"{tags[results.DATASET_TAG]}-{tags[results.BACKBONE_TAG]}"
    return run_name.rsplit("-s", 1)[0] if "-s" in run_name else run_name or "?"


def _setting(value, kind: type = float):
    """A dimension's value as ``kind``: 0 (off) for a run without its param."""
    setting = _float(value)
    return kind(0 if math.isnan(setting) else setting)


def _param(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
