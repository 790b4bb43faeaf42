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

import contextlib
import csv
import dataclasses
import json
import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pruneflow import results
from pruneflow.errors import PruneflowError
from pruneflow.study import tracking
from pruneflow.study.config import MIN_ROUNDS

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

    client = tracking.store_client(selection.uri)
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
        dense = f"dense{_dense_index(group, config)}"
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


def _dense_index(group: Group, config) -> int:
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


# -- the rounds ---------------------------------------------------------------------------------
def check_devices(the_plan: Plan) -> None:
    """Each group's device answers and can run its delegate (the pipeline's device check):
    a :class:`~pruneflow.devices.base.DeviceError` naming it, before anything is converted."""
    from pruneflow.cli.device import device_command
    from pruneflow.devices import readiness

    for group in the_plan.groups:
        c = group.config
        delegate = dataclasses.asdict(c.delegate)
        readiness.check(c.device, delegate, "off", device_command(c, "setup"))


def prepare(the_plan: Plan, work: Path, say: Callable[[str], None] = print) -> dict[int, Path]:
    """Every model's file under ``work/g<n>/models/<stem>.tflite`` (the runs' artifacts; the
    dense baselines' variants converted), and each group's benchmark images; returns {group
    index: images folder}."""
    import tf_keras as keras

    from pruneflow.config import instantiate
    from pruneflow.pipeline import calibration_sample, get_baseline
    from pruneflow.steps.benchmark.benchmark import write_images
    from pruneflow.steps.convert.convert import export_models
    from pruneflow.steps.convert.variants import VARIANTS
    from pruneflow.steps.quantize.qat import quantize_aware
    from pruneflow.steps.train.train import load_model

    client = tracking.store_client(the_plan.uri)
    images: dict[int, Path] = {}
    datasets: dict[str, object] = {}

    def dataset(config):
        spec = json.dumps(config.as_dict()["dataset"], sort_keys=True, default=str)
        if spec not in datasets:
            datasets[spec] = instantiate(config.dataset)
        return datasets[spec]

    (work / "dl").mkdir(parents=True, exist_ok=True)
    for n, group in enumerate(the_plan.groups):
        folder = work / f"g{n}" / "models"
        folder.mkdir(parents=True)
        for model in group.models:
            if model.dense:
                continue
            got = client.download_artifacts(
                model.run_id, f"{results.MODELS_DIR}/{model.variant}.tflite", str(work / "dl")
            )
            model.path = folder / f"{model.stem}.tflite"
            shutil.move(got, model.path)
        configs = {}
        for run_id, config, _ in group.runs:
            configs.setdefault(f"dense{_dense_index(group, config)}", (run_id, config))
        for stem, (run_id, config) in configs.items():
            data = dataset(config)
            keras.backend.clear_session()
            baseline = get_baseline(config, data, the_plan.uri)
            used = client.get_run(run_id).data.tags.get(results.BASELINE_KEY_TAG)
            if used and used != baseline.key:
                say(
                    f"compare: the dense baseline of run {run_id} is {baseline.key}, not the "
                    f"{used} it used (pruneflow's code changed since): its {baseline.source} copy "
                    "is timed"
                )
            else:
                say(f"compare: dense baseline {baseline.key} ({baseline.source})")
            dense = [m for m in group.models if m.dense and m.stem.startswith(f"{stem}-")]
            variants = [m.variant for m in dense]
            qat = None
            if any(VARIANTS[v].from_qat for v in variants):
                qat = quantize_aware(
                    load_model(baseline.model_path),
                    data,
                    config.stage,
                    batch_size=config.train.batch_size,
                    seed=config.seed,
                )
            paths = export_models(
                load_model(baseline.model_path),
                variants,
                work / f"g{n}" / stem,
                calibration_sample(config, data),
                qat_model=qat,
            )
            for m in dense:
                m.path = folder / f"{m.stem}.tflite"
                shutil.move(paths[m.variant], m.path)
        data, b = dataset(group.config), group.config.benchmark
        images[n] = write_images(
            data.x_val,
            data.y_val,
            data.class_names,
            b.images,
            work / f"g{n}" / "images",
            seed=b.seed,
        )
    return images


def run_rounds(
    the_plan: Plan,
    images: dict[int, Path],
    work: Path,
    rounds: int,
    seed: int = DEFAULT_SEED,
    say: Callable[[str], None] = print,
) -> list[dict]:
    """Time every group's models ``rounds`` times, each round every model once in a shuffled
    order (``seed``), by one runner call inside the device's timing lock (this machine's for
    a local device; an SSH device's runner takes its own); fills each model's per-round p50
    and returns one row per model and round (:data:`ROUND_COLUMNS`)."""
    import numpy as np

    from pruneflow.devices.base import Protocol, open_device
    from pruneflow.devices.locks import timing_lock
    from pruneflow.stats import latency_stats

    rng = np.random.default_rng(seed)
    rows = []
    for n, group in enumerate(the_plan.groups):
        c = group.config
        delegate = dataclasses.asdict(c.delegate)
        protocol = Protocol(
            c.benchmark.warmup, c.benchmark.repeats, c.device.cooldown_c, c.device.cooldown_max_s
        )
        with open_device(c.device) as dev:
            for r in range(rounds):
                order = [group.models[i] for i in rng.permutation(len(group.models))]
                lock = contextlib.nullcontext() if c.device.remote else timing_lock()
                with lock:
                    doc = dev.benchmark(
                        [m.path for m in order],
                        images[n],
                        work / f"g{n}" / f"round{r}.json",
                        delegate,
                        protocol,
                    )
                for m in order:
                    m.p50_ms.append(latency_stats(doc["results"][m.stem]["invoke_ms"])["p50"])
                say(
                    f"compare: round {r + 1}/{rounds} on {dev.name}: {len(order)} models"
                    + (
                        f" (group {n + 1}/{len(the_plan.groups)})"
                        if len(the_plan.groups) > 1
                        else ""
                    )
                )
                refs = {m.stem: m.p50_ms[-1] for m in group.models}
                for position, m in enumerate(order):
                    rows.append(
                        {
                            "group": n,
                            "round": r,
                            "position": position,
                            "stem": m.stem,
                            "run_id": m.run_id,
                            "variant": m.variant,
                            "dense": int(m.dense),
                            "p50_ms": m.p50_ms[-1],
                            "ratio": _ratio(m.p50_ms[-1], refs[m.reference]),
                        }
                    )
    return rows


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference > 0 and math.isfinite(reference) else math.nan


def summarise(the_plan: Plan) -> list[dict]:
    """One row per model (:data:`COLUMNS`, the swept settings, :data:`TAIL`): its median p50
    over the rounds and its ratio to its dense baseline with the paired interval
    (:func:`pruneflow.stats.ratio_interval`)."""
    import numpy as np

    from pruneflow.stats import ratio_interval

    out = []
    for group in the_plan.groups:
        by_stem = {m.stem: m for m in group.models}
        for m in group.models:
            ref = by_stem[m.reference]
            ratios = [_ratio(a, b) for a, b in zip(m.p50_ms, ref.p50_ms, strict=True)]
            point, low, high = ratio_interval(ratios)
            row = {"model": m.model, "sparsity": m.sparsity, "channels": m.channels}
            row.update({k: m.settings.get(k, "") for k in the_plan.settings})
            row.update(
                variant=m.variant,
                run_id=m.run_id,
                dense=int(m.dense),
                device=group.config.device.name,
                rounds=len(m.p50_ms),
                p50_ms=float(np.median(m.p50_ms)) if m.p50_ms else math.nan,
                ratio_to_dense=point,
                ratio_ci_low=low,
                ratio_ci_high=high,
            )
            out.append(row)
    keys = ("model", "dense", "sparsity", "channels", *the_plan.settings, "variant")
    return sorted(out, key=lambda r: tuple((-r[k] if k == "dense" else str(r[k])) for k in keys))


def write(the_plan: Plan, table: list[dict], per_round: list[dict], out: Path) -> list[Path]:
    """compare.csv, compare_rounds.csv and compare.png into ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, columns, rows in (
        (results.COMPARE_CSV, [*COLUMNS, *the_plan.settings, *TAIL], table),
        (results.COMPARE_ROUNDS_CSV, ROUND_COLUMNS, per_round),
    ):
        with open(out / name, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)
        paths.append(out / name)
    paths.append(plot(table, the_plan.settings, out / results.COMPARE_PLOT))
    return paths


def plot(table: list[dict], settings: list[str], path: Path) -> Path:
    """Ratio to dense with its interval against sparsity, per model, a line per variant (and
    channels value and other swept settings); the dense baseline at 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in table))
    fig, axes = plt.subplots(
        1, len(models), figsize=(6 * len(models), 4.5), squeeze=False, constrained_layout=True
    )
    for ax, model in zip(axes[0], models, strict=True):
        rows = [r for r in table if r["model"] == model and not r["dense"]]
        lines: dict[str, list[dict]] = {}
        for r in rows:
            label = r["variant"] + (f" c{r['channels']:g}" if r["channels"] else "")
            label += "".join(f" {k}={r[k]}" for k in settings if r.get(k) != "")
            lines.setdefault(label, []).append(r)
        for label, points in lines.items():
            points.sort(key=lambda r: r["sparsity"])
            x = [r["sparsity"] for r in points]
            y = [r["ratio_to_dense"] for r in points]
            below = [max(0.0, r["ratio_to_dense"] - r["ratio_ci_low"]) for r in points]
            above = [max(0.0, r["ratio_ci_high"] - r["ratio_to_dense"]) for r in points]
            ax.errorbar(x, y, yerr=[below, above], marker="o", capsize=3, label=label)
        ax.axhline(1.0, color="k", ls=":", alpha=0.6, label="dense baseline")
        ax.set_yscale("log")  # ratios: 2x slower and 2x faster equally far from 1
        ax.set_title(f"{model}: invoke p50 / dense, 95% paired interval")
        ax.set_xlabel("target sparsity")
        ax.set_ylabel("ratio to the dense baseline (same variant)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def lines(table: list[dict], settings: list[str]) -> str:
    """A fixed-width table of compare.csv for the console."""
    head = f"{'model':<16}{'sparsity':>9}{'channels':>9}"
    head += "".join(f"  {k}" for k in settings)
    head += f"  {'variant':<20}{'p50 ms':>9}{'ratio':>8}  95% interval"
    out = [head]
    for r in table:
        row = f"{r['model']:<16}{r['sparsity']:>9g}{r['channels']:>9g}"
        row += "".join(f"  {r.get(k, '')!s:>{len(k)}}" for k in settings)
        name = r["variant"] + (" (dense)" if r["dense"] else "")
        row += f"  {name:<20}{r['p50_ms']:>9.4f}{r['ratio_to_dense']:>8.3f}"
        row += f"  [{r['ratio_ci_low']:.3f}, {r['ratio_ci_high']:.3f}]"
        out.append(row)
    return "\n".join(out)


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
    client = tracking.store_client(the_plan.uri)
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
