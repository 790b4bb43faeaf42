"""Which runs a report reads (a sweep, an experiment, a filter) and their table: one row per
run and variant, every column named once (:mod:`~.columns`), read by the names of
:mod:`pruneflow.results`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from pruneflow import results
from pruneflow.errors import PruneflowError
from pruneflow.steps.convert.variants import VARIANTS
from pruneflow.study.report import columns as col
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
    Dimension(col.CHANNELS, "prune.channels", "c"),  # the target fraction of channels removed
    Dimension(col.CLUSTERS, "cluster.clusters", "cl", int),  # centroids per weight tensor
)
DIMENSION_COLUMNS = tuple(d.column for d in DIMENSIONS)
# The config keys a run logs as params that the report reads (its config, flattened)
SPARSITY_PARAM, THREADS_PARAM, SEED_PARAM = "prune.sparsity", "delegate.threads", "seed"
# Params that are columns of their own (target_sparsity, the dimensions, threads, seed), and
# the sections that say where outputs go (not what is computed: paths, tracking): never a
# swept setting of their own (:func:`swept_params`).
OWN_COLUMNS = (SPARSITY_PARAM, *(d.param for d in DIMENSIONS), THREADS_PARAM, SEED_PARAM)
NOT_SETTINGS = ("paths.", "tracking.")
# The columns of MLflow's search_runs frame: a run's metrics, params and tags by name
METRICS, PARAMS, TAGS = "metrics.", "params.", "tags."


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

    client, exp = _experiment(uri, experiment)
    mlflow.set_tracking_uri(uri)
    parent_id, title = None, f"experiment {experiment}"
    if filter_string or all_runs:
        where = filter_string or ""
        if filter_string:
            title += f", runs matching {filter_string!r}"
    else:
        parent = _parent(client, exp.experiment_id, uri, experiment, sweep)
        parent_id = parent.info.run_id
        title = f"sweep {parent.data.tags[results.SWEEP_TAG]} (parent run {parent_id})"
        where = _sweep_filter(client, exp.experiment_id, parent_id)
    runs, foreign = _job_runs(exp.experiment_id, where, filter_string)
    if not len(runs):
        also = f" ({skipped_line(foreign)})" if foreign else ""
        raise ReportError(f"no runs to report in {title} of {uri}{also}")
    return Selection(runs.reset_index(drop=True), title, uri, experiment, parent_id, foreign)


def _experiment(uri: str, experiment: str):
    """The store's client and its experiment ``experiment``; :class:`ReportError` for no store
    (a SQLite file that is not there) or no such experiment (naming those there)."""
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
    return client, exp


def _parent(client, experiment_id: str, uri: str, experiment: str, sweep: str | None):
    """The parent run of the sweep ``sweep`` (its id), or of the latest sweep for none."""
    from mlflow.exceptions import MlflowException

    if sweep is None:
        parents = client.search_runs(
            [experiment_id],
            filter_string=f"{TAGS}`{results.SWEEP_TAG}` LIKE 'sweep-%'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not parents:
            raise ReportError(
                f"experiment {experiment!r} has no sweep yet: run one (pruneflow -m ...), or "
                "report every run with --all or some with --filter"
            )
        return parents[0]
    try:
        parent = client.get_run(sweep)
    except MlflowException:
        raise ReportError(f"no run {sweep!r} in {uri} (--sweep takes a parent run id)") from None
    if results.SWEEP_TAG not in parent.data.tags:
        raise ReportError(f"run {sweep} is not a sweep's parent run (it has no sweep tag)")
    return parent


def _job_runs(experiment_id: str, where: str, filter_string: str | None):
    """The runs of ``experiment_id`` matching ``where`` (``search_runs``) that are jobs (not
    a sweep's parent) made by pruneflow, and how many others were left out as not its."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        runs = mlflow.search_runs(
            [experiment_id], filter_string=where, output_format="pandas", max_results=50000
        )
    except MlflowException as exc:
        raise ReportError(f"--filter {filter_string!r} is not an MLflow filter: {exc}") from None
    sweep_col = TAGS + results.SWEEP_TAG
    if len(runs) and sweep_col in runs:
        runs = runs[runs[sweep_col].isna()]  # job runs only, not parents
    made_col = TAGS + results.MADE_BY_TAG
    made = runs[made_col].notna() if made_col in runs else runs[col.RUN_ID].isna()
    foreign = int((~made).sum())
    return runs[made], foreign  # not a run of pruneflow's (plain MLflow's): its columns differ


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

    own = f"{TAGS}`{results.PARENT_TAG}` = '{parent_id}'"
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

    Issue #29's energy, only where some run has it (:func:`energy_columns`): each variant's
    energy measures (``energy_mj`` with its interval, ``power_w`` ...) and ``energy_source``,
    and ``energy_note``.
    """
    import pandas as pd

    runs = selection.runs
    swept, logged = swept_params(runs), variants(runs)
    energy = energy_columns(runs)
    out = []
    for _, run in runs.iterrows():
        tags = {c[len(TAGS) :]: v for c, v in run.items() if c.startswith(TAGS)}
        what, settings, context = (
            _run(run, tags),
            {p: _param(run.get(p)) for p in swept},
            _context(run, tags),
        )
        for variant in logged:
            out.append(
                {
                    **what,
                    **settings,
                    col.VARIANT: variant,
                    **_measures(run, variant),
                    **_energy(run, tags, variant, energy),
                    col.THREADS: _threads(run, variant),
                    **context,
                    **_timed(tags, variant, context[col.DEVICE]),
                    col.ERROR: tags.get(results.ERROR_MESSAGE_TAG) or "",
                }
            )
    table = pd.DataFrame(out)
    if table.empty:
        return table
    table[col.SEED] = table[col.SEED].astype("Int64")  # 42, not 42.0; <NA> for runs without
    return table.sort_values(
        [
            col.MODEL,
            col.TARGET_SPARSITY,
            *DIMENSION_COLUMNS,
            *swept,
            col.VARIANT,
            col.THREADS,
            col.SEED,
        ],
        kind="stable",
    )


def _run(run, tags: dict) -> dict:
    """A run's columns before its settings: what it is (id, name, seed, status, model) and its
    configuration (target sparsity and dimensions, what pruning measured, its MACs)."""
    name = tags.get(results.RUN_NAME_TAG) or ""
    model = _model(tags, name)
    return {
        col.RUN_ID: run[col.RUN_ID],
        col.RUN_NAME: name,
        col.SEED: _float(run.get(PARAMS + SEED_PARAM)),
        col.STATUS: run[col.STATUS],
        col.MODEL: model,
        col.DATASET: tags.get(results.DATASET_TAG) or model.split("-")[0],
        col.BACKBONE: tags.get(results.BACKBONE_TAG) or "-".join(model.split("-")[1:]),
        col.TARGET_SPARSITY: _float(run.get(PARAMS + SPARSITY_PARAM)),
        col.MEASURED_SPARSITY: _metric(run, results.SPARSITY),
        **{d.column: _setting(run.get(PARAMS + d.param), d.kind) for d in DIMENSIONS},
        col.MEASURED_CHANNELS: _metric(run, results.CHANNELS),
        col.MACS: _metric(run, results.MACS),
        col.BASELINE_MACS: _metric(run, results.BASELINE_MACS),
        col.PARAMS_TOTAL: _metric(run, results.PARAMS_TOTAL),
    }


def _measures(run, variant: str) -> dict[str, float]:
    """A variant's measures under their own names (NaN where the run lacks one)."""
    return {
        m: _metric(run, results.metric(variant, m))
        for m in (*MEASURES, *EXTRA_MEASURES, *results.EVIDENCE)
    }


def energy_columns(runs) -> tuple[str, ...]:
    """The energy columns of runs.csv for ``runs`` (``search_runs``): every energy measure
    (:data:`~pruneflow.results.ENERGY_MEASURES`) and ``energy_source`` where some run measured
    a variant's energy, ``energy_note`` where some run has a note saying why it has none;
    nothing for a study without energy (no empty columns)."""
    measured = any(
        c.startswith(METRICS) and c.endswith("/" + results.ENERGY) and runs[c].notna().any()
        for c in runs
    )
    note = TAGS + results.ENERGY_NOTE_TAG
    noted = note in runs and bool(runs[note].fillna("").astype(str).str.strip().ne("").any())
    return (*results.ENERGY_MEASURES, col.ENERGY_SOURCE) * measured + (col.ENERGY_NOTE,) * noted


def _energy(run, tags: dict, variant: str, wanted: tuple[str, ...]) -> dict:
    """A variant's energy columns of ``wanted`` (:func:`energy_columns`): its measures (NaN
    where it has none), the run's energy source where the variant has an energy, the run's
    note."""
    found = {m: _metric(run, results.metric(variant, m)) for m in results.ENERGY_MEASURES}
    source = _text(tags.get(results.ENERGY_SOURCE_TAG))
    found[col.ENERGY_SOURCE] = "" if math.isnan(found[results.ENERGY]) else source
    found[col.ENERGY_NOTE] = _text(tags.get(results.ENERGY_NOTE_TAG))
    return {c: found[c] for c in wanted}


def _threads(run, variant: str) -> str:
    """The thread count a variant ran with: ``–`` for Keras (TensorFlow does not take LiteRT's
    thread count), ``default`` where the run left it to LiteRT."""
    threads = run.get(PARAMS + THREADS_PARAM)
    if variant == results.KERAS:
        return "–"
    return "default" if threads in (None, "None", "null") else str(threads)


def _context(run, tags: dict) -> dict:
    """A run's columns after its variant's: the validation split, the baseline model's accuracy
    and interval, the last validation loss, the device."""
    return {
        col.VAL_IMAGES: _metric(run, results.VAL_IMAGES),
        col.BASELINE_ACCURACY: _metric(run, results.BASELINE_ACCURACY),
        col.BASELINE_CI_LOW: _metric(run, results.BASELINE_CI_LOW),
        col.BASELINE_CI_HIGH: _metric(run, results.BASELINE_CI_HIGH),
        col.VAL_LOSS: _metric(run, results.CURVES["val_loss"]),
        col.DEVICE: tags.get(results.DEVICE_TAG) or "",
    }


def _timed(tags: dict, variant: str, device: str) -> dict:
    """Where a variant was timed (the device, or ``host`` beside a remote device) and what
    kernels ran it."""
    return {
        col.TIMED_ON: tags.get(results.timed_on_tag(variant)) or device,
        col.KERNELS: tags.get(results.kernels_tag(variant)) or "",
    }


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
    tags = runs.filter(like=TAGS).rename(columns=lambda c: c[len(TAGS) :])
    model = [
        _model(t, t.get(results.RUN_NAME_TAG) or "")
        for t in tags.where(tags.notna(), None).to_dict("records")
    ]
    seed = PARAMS + SEED_PARAM
    seeds = runs[seed].fillna("") if seed in runs else None
    swept = []
    for column in runs:
        if not column.startswith(PARAMS):
            continue
        key = column[len(PARAMS) :]
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


def _metric(run, name: str) -> float:
    """The metric ``name`` of a run (its ``search_runs`` row); NaN where it has none."""
    return _float(run.get(METRICS + name))


def _param(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _text(value) -> str:
    """A tag's text; empty for none (None, or NaN in search_runs' frame)."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
