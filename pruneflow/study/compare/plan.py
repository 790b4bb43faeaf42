"""What a comparison times, read from the store (no TensorFlow, no device): the sweep's
FINISHED runs, their configs and .tflite files, their swept settings, grouped by where and how
they are timed, each model beside its dense reference; the columns of what it writes."""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pruneflow import results
from pruneflow.errors import PruneflowError
from pruneflow.tracking.runs import store_client

DEFAULT_ROUNDS = 10
DEFAULT_SEED = 0
STATISTIC = "invoke p50"  # what is compared, per model per round (the runner's invoke_ms)
# Settings that have columns of their own, and sections that are not settings of the work
OWN_COLUMNS = ("prune.sparsity", "prune.channels")
NOT_SETTINGS = ("tracking.", "paths.", "hydra.")
COLUMNS = ("model", "sparsity", "channels")  # then the other swept settings, then TAIL
TAIL = (
    "variant",
    "run_id",  # empty for the dense baseline's rows
    "dense",  # 1: the dense baseline's variant (its own reference)
    "device",
    "rounds",
    "p50_ms",
    "ratio_to_dense",
    "ratio_ci_low",
    "ratio_ci_high",
    # each run's energy per image from its own energy pass (device.energy: its metrics), not
    # interleaved; empty where not measured. The ratio is to the energy of the sweep's unpruned
    # run of the same baseline and variant (prune.sparsity=0), where it has one that measured
    results.ENERGY,
    results.ENERGY_CI_LOW,
    results.ENERGY_CI_HIGH,
    "energy_ratio_to_dense",
)
# compare_rounds.csv: one row per model and round (group: the timing group it was timed in)
ROUND_COLUMNS = (
    "group",
    "round",
    "position",  # its place in the round's shuffled order
    "stem",
    "run_id",
    "variant",
    "dense",
    "p50_ms",
    "ratio",  # to its dense baseline's p50 in the same round
)


class CompareError(PruneflowError, ValueError):
    """Nothing to compare, or a sweep whose runs cannot be compared; the message says why."""


@dataclass
class Model:
    """One model timed in every round: a run's variant, or its dense baseline's."""

    stem: str  # its file's name without .tflite: unique in its group (the runner keys by it)
    variant: str
    run_id: str  # "" for a dense baseline's variant
    model: str
    sparsity: float
    channels: float
    settings: dict[str, str]
    reference: str  # the stem of the dense model it is compared to (its own for dense ones)
    path: Path | None = None
    # its run's energy per image and 95% interval (mJ, its own pass: NaN where not measured),
    # and whether its run is unpruned (its energy is then its dense baseline's)
    energy: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    unpruned: bool = False
    p50_ms: list[float] = field(default_factory=list)  # one per round

    @property
    def dense(self) -> bool:
        return not self.run_id


@dataclass
class Group:
    """Runs timed together: one device, delegate, benchmark protocol, images and dataset."""

    config: object  # pruneflow.config.Config of its first run
    runs: list[tuple[str, object, list[str]]] = field(
        default_factory=list
    )  # (id, Config, variants)
    models: list[Model] = field(default_factory=list)


@dataclass
class Plan:
    """What :func:`run_rounds` times, read from the store (no TensorFlow, no device)."""

    title: str
    parent_id: str
    uri: str
    settings: list[str]  # the other swept settings (columns)
    groups: list[Group]
    skipped: list[str]  # why runs are left out


def plan(selection, say: Callable[[str], None] = print) -> Plan:
    """The models of a sweep's FINISHED runs (``selection``: :func:`pruneflow.study.report.
    select` of a sweep), each run's config read from its ``config.yaml`` artifact, grouped by
    where and how they are timed; raises :class:`CompareError` when none has a .tflite file."""
    from pruneflow.config import from_settings

    client = store_client(selection.uri)
    runs = selection.runs
    columns, values = swept_settings(client, selection.parent_id, runs)
    groups: dict[str, Group] = {}
    skipped = []
    for _, run in runs.iterrows():
        run_id = run["run_id"]
        if run["status"] != "FINISHED":
            skipped.append(f"run {run_id} is {run['status']}")
            continue
        variants = sorted(
            Path(a.path).stem
            for a in client.list_artifacts(run_id, results.MODELS_DIR)
            if a.path.endswith(".tflite")
        )
        if not variants:
            skipped.append(f"run {run_id} has no .tflite model")
            continue
        with tempfile.TemporaryDirectory(prefix="pruneflow-compare.") as tmp:
            text = Path(client.download_artifacts(run_id, results.CONFIG_FILE, tmp)).read_text()
        try:
            config = from_settings(text)
        except PruneflowError as exc:
            skipped.append(f"run {run_id}: its {results.CONFIG_FILE} does not compose ({exc})")
            continue
        key = _timing_key(config)
        group = groups.setdefault(key, Group(config))
        group.runs.append((run_id, config, variants))
        dense = f"dense{dense_index(group, config)}"
        unpruned = not (config.prune.sparsity or config.prune.channels or config.cluster.clusters)
        for variant in variants:
            group.models.append(
                Model(
                    f"{run_id}-{variant}",
                    variant,
                    run_id,
                    config.model_name,
                    float(config.prune.sparsity),
                    float(config.prune.channels),
                    values.get(run_id, {}),
                    f"{dense}-{variant}",
                    energy=energy(run, variant),
                    unpruned=unpruned,
                )
            )
    for reason in skipped:
        say(f"compare: {reason}: left out")
    if not groups:
        raise CompareError(f"no FINISHED run of {selection.title} has a .tflite model to compare")
    for group in groups.values():
        _add_dense(group)
    return Plan(
        selection.title, selection.parent_id, selection.uri, columns, list(groups.values()), skipped
    )


def energy(run, variant: str) -> tuple[float, float, float]:
    """A run's (a ``search_runs`` row) energy per image of ``variant`` and its 95% interval,
    mJ, from its metrics (NaN where it measured none)."""
    measures = (results.ENERGY, results.ENERGY_CI_LOW, results.ENERGY_CI_HIGH)
    values = [run.get(f"metrics.{results.metric(variant, m)}") for m in measures]
    return tuple(float(v) if v is not None and v == v else math.nan for v in values)


def _timing_key(config) -> str:
    """Where and how a run is timed: its device, delegate, benchmark images and protocol, and
    the dataset the images come from."""
    s = config.as_dict()
    bench = {k: s["benchmark"][k] for k in ("images", "seed", "warmup", "repeats")}
    spec = {k: s[k] for k in ("device", "delegate", "dataset")}
    return json.dumps({**spec, "benchmark": bench}, sort_keys=True, default=str)


def _dense_key(config) -> str:
    """What a run's dense variants depend on: its baseline (dataset, backbone, training, seed)
    and how variants are converted (``stage``, less the list of variants)."""
    s = config.as_dict()
    stage = {k: v for k, v in s["stage"].items() if k != "variants"}
    spec = {**{k: s[k] for k in ("dataset", "backbone", "train", "seed")}, "stage": stage}
    return json.dumps(spec, sort_keys=True, default=str)


def dense_index(group: Group, config) -> int:
    keys = list(dict.fromkeys(_dense_key(c) for _, c, _ in group.runs))
    return keys.index(_dense_key(config))


def _add_dense(group: Group) -> None:
    """The dense models of a group: one per dense key and variant its runs have, with the
    swept settings its runs share."""
    for model in list(group.models):
        if any(m.stem == model.reference for m in group.models):
            continue
        users = [m for m in group.models if m.reference == model.reference]
        shared = {
            k: v for k, v in model.settings.items() if all(u.settings.get(k) == v for u in users)
        }
        group.models.append(
            Model(
                model.reference,
                model.variant,
                "",
                model.model,
                0.0,
                0.0,
                shared,
                model.reference,
            )
        )


def swept_settings(client, parent_id: str | None, runs) -> tuple[list[str], dict[str, dict]]:
    """(the sweep's swept settings but sparsity and channels, {run id: {setting: value}}):
    the keys whose values differ between the sweep's jobs (its ``sweep_jobs.json``; else the
    runs' ``pruneflow.job.overrides`` tags), less ``tracking``, ``paths`` and Hydra's; a
    run's value is its param (the resolved config), else its override's."""
    by_key: dict[str, dict[str, str]] = {}
    listed: list[dict[str, str]] = []
    with contextlib.suppress(Exception):  # a parent without its job list: the runs' tags
        with tempfile.TemporaryDirectory(prefix="pruneflow-compare.") as tmp:
            jobs = json.loads(
                Path(client.download_artifacts(parent_id, results.JOBS_FILE, tmp)).read_text()
            )
        for job in jobs:
            by_key[job["key"]] = _overrides(job["overrides"])
            listed.append(by_key[job["key"]])
    own: dict[str, dict[str, str]] = {}
    for _, run in runs.iterrows():
        key = run.get(f"tags.{results.JOB_KEY_TAG}")
        tag = run.get(f"tags.{results.JOB_OVERRIDES_TAG}")
        own[run["run_id"]] = by_key.get(key) or _overrides(str(tag).split() if _text(tag) else [])
    if not listed:
        listed = list(own.values())
    keys = list(dict.fromkeys(k for job in listed for k in job))
    columns = [
        k
        for k in keys
        if k not in OWN_COLUMNS
        and not k.startswith(NOT_SETTINGS)
        and len({job.get(k) for job in listed}) > 1
    ]
    values = {}
    for _, run in runs.iterrows():
        row = {}
        for k in columns:
            param = run.get(f"params.{k}")
            row[k] = str(param) if _text(param) else own[run["run_id"]].get(k, "")
        values[run["run_id"]] = row
    return columns, values


def _text(value) -> bool:
    return isinstance(value, str) and value != ""


def _overrides(overrides: list[str]) -> dict[str, str]:
    """``{key: value}`` of Hydra overrides (``+key=value``, ``key=value``)."""
    out = {}
    for o in overrides:
        key, eq, value = o.partition("=")
        if eq:
            out[key.lstrip("+~")] = value
    return out


def estimate_s(the_plan: Plan, runs, rounds: int) -> float | None:
    """The seconds ``rounds`` rounds of ``the_plan`` spend timing, from what the runs
    recorded: each model, each round, times (warmup + images x repeats) of its group's
    protocol at the per-image p50 its run logged for its variant (a dense model: its pruned
    runs' highest p50 of that variant). Conversion, device set-up and cool-downs come on top.
    None when no run logged a p50 (``runs``: the selection's ``search_runs`` table)."""

    logged = {}
    for _, run in runs.iterrows():
        for m in (c for c in run.index if c.endswith("/" + results.latency("p50"))):
            logged[(run["run_id"], m.split(".", 1)[1].rsplit("/", 1)[0])] = run[m]
    total, known = 0.0, False
    for group in the_plan.groups:
        b = group.config.benchmark
        per_model = b.warmup + b.images * b.repeats
        for model in group.models:
            if model.dense:
                ms = [logged.get((m.run_id, model.variant), math.nan) for m in group.models]
                ms = [v for v in ms if not math.isnan(v)]
                p50 = max(ms) if ms else math.nan
            else:
                p50 = logged.get((model.run_id, model.variant), math.nan)
            if not math.isnan(p50):
                total, known = total + rounds * per_model * p50 / 1000, True
    return total if known else None


def estimate_line(the_plan: Plan, runs, rounds: int) -> str:
    """``timing alone about 12 s`` (:func:`estimate_s`, and how it is made), for the console
    before the rounds start."""
    from pruneflow.progress import duration

    seconds = estimate_s(the_plan, runs, rounds)
    if seconds is None:
        return "no time estimate (the runs logged no p50)"
    about = f"about {duration(seconds)}" if seconds >= 1 else "under 1 s"
    return (
        f"timing alone {about} (rounds x models x images x the p50 per image each run logged; "
        "converting and cool-downs come on top)"
    )
