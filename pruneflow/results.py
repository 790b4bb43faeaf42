"""The metric contract: how a job's results become MLflow metric, tag and artifact names.

Every name a run writes is made here, from the stages' typed results, and the job log's table
is drawn here; the README's tables, the tests (and any report) read these definitions.

Per model variant (``keras`` and each ``tflite_*``): ``<variant>/<measure>`` for the measures
in :data:`VARIANT_MEASURES`, plus :data:`TFLITE_MEASURES` for the .tflite files.
"""

from __future__ import annotations

import csv
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pruneflow import __version__
from pruneflow.stats import MEASURES, latency_stats
from pruneflow.steps.convert.variants import (
    KERAS,  # the stripped Keras model, beside the .tflite variants
)

# -- per-variant measures ----------------------------------------------------------------------
ACCURACY, SIZE, GZIP, LOAD = "accuracy", "size_bytes", "gzip_bytes", "load_ms"


def latency(statistic: str) -> str:
    """``latency_<statistic>_ms`` for a statistic of :data:`pruneflow.stats.MEASURES`."""
    return f"latency_{statistic}_ms"


LATENCY = tuple(latency(m) for m in MEASURES)  # first, mean, std, ste, p50, p90, p99
VARIANT_MEASURES = (ACCURACY, SIZE, GZIP, LOAD, *LATENCY)  # every variant, keras included
# Beyond the paper (benchmark.warmup/repeats): the steady state over every timed image of every
# pass (the first timed image apart), the warm-up apart, and the per-image time split into
# decode (read + decode + preprocess) and invoke (set_tensor + invoke + get_tensor).
STEADY_STATS, SPLIT_STATS = ("mean", "std", "p50", "p99"), ("p50", "mean")


def steady(statistic: str) -> str:
    return f"steady_{statistic}_ms"


def decode(statistic: str) -> str:
    return f"decode_{statistic}_ms"


def invoke(statistic: str) -> str:
    return f"invoke_{statistic}_ms"


WARMUP_MEAN = "warmup_mean_ms"
PEAK_RSS, THREADS_USED = "peak_rss_mb", "threads_used"  # the model's own runner process
# The device's state around each model (only what the device exposes)
HYGIENE = {"temp_c": "temp_{}_c", "freq_mhz": "freq_{}_mhz", "load1": "load1_{}"}
COOLDOWN = "cooldown_s"
# Beyond the paper (issue #18): each accuracy's 95% Wilson interval over the validation images,
# and each variant against the baseline model on the same images (pruneflow.stats): accuracy
# minus the baseline's, the exact McNemar p-value, the exact interval of the difference.
ACCURACY_CI_LOW, ACCURACY_CI_HIGH = "accuracy_ci_low", "accuracy_ci_high"
VS_BASELINE = {
    "delta": "vs_baseline_delta",
    "p": "vs_baseline_p",
    "ci_low": "vs_baseline_ci_low",
    "ci_high": "vs_baseline_ci_high",
}
EVIDENCE = (ACCURACY_CI_LOW, ACCURACY_CI_HIGH, *VS_BASELINE.values())  # every variant
FILE_SPARSITY, FELL_BACK = "sparsity", "fell_back"
TFLITE_MEASURES = (FILE_SPARSITY, FELL_BACK)  # .tflite variants only
# Clustered runs (cluster.clusters): the most distinct values in any clustered weight tensor,
# counted from each file (per channel where int8 scales each channel apart), and in Keras's.
UNIQUE_WEIGHTS = "unique_weights"


def metric(variant: str, measure: str) -> str:
    """``<variant>/<measure>``, e.g. ``tflite_int8/latency_p50_ms``."""
    return f"{variant}/{measure}"


# -- run-level metrics -------------------------------------------------------------------------
BASELINE_ACCURACY = "baseline/accuracy"
BASELINE_CI_LOW, BASELINE_CI_HIGH = "baseline/accuracy_ci_low", "baseline/accuracy_ci_high"
BASELINE = "baseline"  # the baseline model's column in eval/predictions.csv
VAL_IMAGES = "val/images"  # how many validation images every accuracy is measured on
SPARSITY, PARAMS_TOTAL, PARAMS_NONZERO = "sparsity", "params_total", "params_nonzero"
# Channel pruning (prune.channels): the measured fraction of prunable output channels removed,
# and multiply-accumulates per image of the model that is converted, and of its baseline.
CHANNELS, MACS, BASELINE_MACS = "channels", "macs", "baseline/macs"
# The bare names that are the run's own, never a variant's, though a variant may log a measure
# of that name (a .tflite file's stored zeros, <variant>/sparsity: FILE_SPARSITY). (A run also
# has a variant's bare measures, accuracy or gzip_bytes: MLflow's copy of a LoggedModel's.)
RUN_MEASURES = (SPARSITY, PARAMS_TOTAL, PARAMS_NONZERO, CHANNELS, MACS)
CURVES = {  # Keras history key -> stepped metric (baseline epochs, then fine-tuning epochs)
    "loss": "train/loss",
    "accuracy": "train/accuracy",
    "val_loss": "val/loss",
    "val_accuracy": "val/accuracy",
}
STAGES = ("check", "data", "train", "prune", "cluster", "qat", "convert", "evaluate", "benchmark")


def stage_time(stage: str) -> str:
    """``time/<stage>_s``: where the run's time went."""
    return f"time/{stage}_s"


def device_time(step: str) -> str:
    """``device/<step>_s`` for an SSH device's steps (connect, upload, run ...)."""
    return f"device/{step}_s"


# -- tags --------------------------------------------------------------------------------------
DATASET_TAG, BACKBONE_TAG = "dataset", "backbone"
MODEL_TAG = "model"  # what reports group by: tracking.model, else <dataset>-<backbone>
JOB_KEY_TAG = "pruneflow.job_key"  # identity of the work (config minus paths and tracking)
VERSION_TAG, PID_TAG, HOST_TAG = "pruneflow.version", "pruneflow.pid", "host"
# What tells a run pruneflow made (a job's, from its creation: start_tags; a sweep's parent) from
# one logged into the same experiment by plain MLflow or another tool: reports skip the latter.
MADE_BY_TAG = VERSION_TAG
# The code that made a run (a hash of the package: study.provenance.code_version); a job is resumed
# only from a run of the same code. REPLACES_TAG: on a run made again because the FINISHED run of
# its config came from other code, that run's id.
CODE_TAG, REPLACES_TAG = "pruneflow.code", "pruneflow.replaces"
BASELINE_CACHE_TAG, BASELINE_KEY_TAG = "baseline_cache", "baseline_key"
# selected layers the target sparsity leaves without a single weight (a warning)
LAYERS_WITHOUT_WEIGHTS_TAG = "prune.layers_without_weights"
# tflite_int8_qat's quantization-aware scheme: pqat | cqat | pcqat (steps/quantize/qat.py)
QAT_SCHEME_TAG = "qat.scheme"
CLUSTERED_LAYERS_TAG = "cluster.layers"  # the layers clustering clustered
# Tags of a run that failed: why, in the run itself (its log artifact has the traceback).
ERROR_TYPE_TAG, ERROR_MESSAGE_TAG = "pruneflow.error.type", "pruneflow.error.message"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting tag: a sweep job's parent run
# A sweep's parent run and its jobs
SWEEP_TAG = "pruneflow.sweep"  # on the parent: the sweep's name
SWEEP_DIR_TAG, SWEEP_OVERRIDES_TAG = "pruneflow.sweep.dir", "pruneflow.sweep.overrides"
SWEEP_JOBS_TAG = "pruneflow.sweep.jobs"  # the number of jobs
JOB_NUM_TAG, JOB_OVERRIDES_TAG = "pruneflow.job.num", "pruneflow.job.overrides"
# Where the baseline came from: cache (this machine's), store (the tracking store), trained
BASELINE_FROM_TAG = "baseline_from"
BASELINE_EXPERIMENT = "pruneflow-baselines"  # one run per cached baseline, found by its key
# The device's exclusive timing window (seconds since the epoch) and the wait for it
TIMING_START_TAG, TIMING_END_TAG = "timing.started_at", "timing.ended_at"
LOCK_WAIT = device_time("lock_wait")  # from Timing.steps


def timed_on_tag(variant: str) -> str:
    """Where a variant was timed: the device's name, or ``host`` (this machine)."""
    return f"timed_on/{variant}"


def throttled_tag(variant: str) -> str:
    """A Raspberry Pi's ``vcgencmd get_throttled`` before -> after timing a variant."""
    return f"throttled/{variant}"


DEVICE_PYTHON_TAG, GOVERNOR_TAG = "device.executable", "device.governor"
RUNTIME_TAG, DELEGATE_TAG, GIT_COMMIT_TAG = "runtime", "delegate", "mlflow.source.git.commit"
DEVICE_TAG, DEVICE_KIND_TAG, DEVICE_ADDRESS_TAG = "device", "device.kind", "device.address"
DEVICE_NOTES_TAG = "device.check_notes"  # what the device check warned of


def kernels_tag(variant: str) -> str:
    """What really ran a variant: ``xnnpack``, ``builtin``, a delegate, ``tensorflow``."""
    return f"kernels/{variant}"


def fallback_tag(variant: str) -> str:
    """Why a variant fell back to builtin kernels (only when it did)."""
    return f"fallback/{variant}"


def cooldown_tag(variant: str) -> str:
    """Why the device did not cool down to ``device.cooldown_c`` before a variant."""
    return f"cooldown/{variant}"


def device_tag(fact: str) -> str:
    """``device.<fact>``: what the runner saw of the device (CPU, cores, OS ...)."""
    return f"device.{fact}"


# -- artifacts ---------------------------------------------------------------------------------
CONFIG_FILE = "config.yaml"
MODELS_DIR = "models"
LAYERS_DIR, LAYERS_FILE = "prune", "layers.csv"
EVAL_DIR, PREDICTIONS_FILE = "eval", "predictions.csv"  # index, label, baseline, each variant
BENCHMARK_DIR, LATENCY_FILE, RUNNER_FILE = "benchmark", "latency.csv", "runner.json"
LOG_FILE = "pruneflow.log"  # the job's log (with libraries' output and any traceback)
SUMMARY_FILE, JOBS_FILE = "sweep_summary.txt", "sweep_jobs.json"  # on a sweep's parent run
REPORT_DIR = "report"  # a sweep's report: <sweep dir>/report/ and the parent run's report/
# `pruneflow compare` (issue #18): every .tflite variant of a sweep's runs and of its dense
# baseline re-timed in interleaved rounds; in the report folder and the parent's report/
COMPARE_CSV, COMPARE_ROUNDS_CSV, COMPARE_PLOT = "compare.csv", "compare_rounds.csv", "compare.png"
# Studies' tags: MLflow's run name; a parent's best per model (report), front, objectives (search)
RUN_NAME_TAG, BEST_TAG = "mlflow.runName", "pruneflow.best_sparsity"
FRONT_TAG, OBJECTIVES_TAG = "pruneflow.search.front", "pruneflow.search.objectives"


@dataclass
class Record:
    """What one stage adds to a run."""

    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    steps: dict[int, dict[str, float]] = field(default_factory=dict)  # curves: {step: metrics}
    artifacts: list[tuple[Path, str | None]] = field(default_factory=list)  # (file, folder)
    models: list[LoggedModel] = field(default_factory=list)  # MLflow LoggedModels of the run


@dataclass
class LoggedModel:
    """One variant as a model in MLflow's sense: its file, params and measures (logged with
    its ``model_id``, so the experiment's Models tab compares every variant of every run)."""

    name: str
    path: Path
    model_type: str
    params: dict[str, str]
    metrics: dict[str, float]


def model_name(
    model: str, sparsity: float, variant: str, channels: float = 0.0, clusters: int = 0
) -> str:
    """``digits-cnn-s50-tflite_int8`` (``digits-cnn-s50-c25-cl16-tflite_int8`` with 25% of the
    channels removed and 16 clusters): a LoggedModel's name (MLflow allows no dot in it)."""
    thin = f"-c{channels * 100:g}" if channels else ""
    shared = f"-cl{clusters}" if clusters else ""
    return f"{model}-s{sparsity * 100:g}{thin}{shared}-{variant}".replace(".", "_")


def start_tags(config, runtime: str, git_commit: str | None, code: str) -> dict[str, Any]:
    """Tags a run has from its creation, before any work (a run that fails early has them)."""
    dev = config.device
    return {
        GIT_COMMIT_TAG: git_commit,
        VERSION_TAG: __version__,
        CODE_TAG: code,
        JOB_KEY_TAG: config.job_key,
        RUNTIME_TAG: runtime,
        DELEGATE_TAG: config.delegate.name,
        MODEL_TAG: config.model_name,
        DATASET_TAG: config.dataset.label,
        BACKBONE_TAG: config.backbone.label,
        DEVICE_TAG: dev.name,
        DEVICE_KIND_TAG: "ssh" if dev.remote else "local",
        DEVICE_ADDRESS_TAG: getattr(dev, "host", None),
        HOST_TAG: socket.gethostname(),
        PID_TAG: os.getpid(),
    }


def _curves(history: Mapping[str, list[float]], offset: int) -> dict[int, dict[str, float]]:
    steps: dict[int, dict[str, float]] = {}
    for key, values in history.items():
        if key in CURVES:
            for i, v in enumerate(values):
                steps.setdefault(offset + i, {})[CURVES[key]] = float(v)
    return steps


def for_baseline(baseline) -> Record:
    """A :class:`pruneflow.steps.train.train.Baseline`: its accuracy, curves and cache use."""
    return Record(
        metrics={BASELINE_ACCURACY: baseline.accuracy},
        tags={
            BASELINE_CACHE_TAG: "hit" if baseline.cache_hit else "miss",
            BASELINE_KEY_TAG: baseline.key,
            BASELINE_FROM_TAG: baseline.source,
        },
        steps=_curves(baseline.history, 0),
    )


def for_pruning(pruned, baseline_epochs: int, out_dir: Path) -> Record:
    """A :class:`~pruneflow.steps.prune.prune.Pruned`: measured sparsity and removed channels,
    parameters, MACs (of the model converted, and of the baseline), fine-tuning curves, the
    per-layer table with channels before and after (written to ``out_dir/layers.csv``)."""
    path = _layers_csv(pruned.layers, out_dir)
    starved = pruned.layers_without_weights
    return Record(
        metrics={
            SPARSITY: pruned.sparsity,
            PARAMS_TOTAL: pruned.params_total,
            PARAMS_NONZERO: pruned.params_nonzero,
            CHANNELS: pruned.channels,
            MACS: pruned.macs,
            BASELINE_MACS: pruned.baseline_macs,
        },
        tags={LAYERS_WITHOUT_WEIGHTS_TAG: ",".join(starved)} if starved else {},
        steps=_curves(pruned.history, baseline_epochs),
        artifacts=[(path, LAYERS_DIR)],
    )


def _layers_csv(rows: list[dict], out_dir: Path) -> Path:
    """The per-layer table (``prune/layers.csv``) written to ``out_dir``."""
    path = Path(out_dir) / LAYERS_FILE
    with open(path, "w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def for_clustering(clustered, layers: list[dict], offset: int, out_dir: Path) -> Record:
    """A :class:`~pruneflow.steps.cluster.cluster.Clustered`: the layers clustered, its
    fine-tuning curves (after the epochs before it, ``offset``), and the per-layer table of
    the clustered model (``layers``, with distinct values per layer) replacing the pruned
    one's in ``prune/layers.csv``."""
    return Record(
        tags={CLUSTERED_LAYERS_TAG: ",".join(clustered.layers)},
        steps=_curves(clustered.history, offset),
        artifacts=[(_layers_csv(layers, out_dir), LAYERS_DIR)],
    )


def for_qat(scheme: str) -> Record:
    """Which quantization-aware scheme made ``tflite_int8_qat`` (pqat, cqat, pcqat)."""
    return Record(tags={QAT_SCHEME_TAG: scheme})


def for_files(files: Mapping[str, Any]) -> Record:
    """``{variant: pruneflow.steps.convert.convert.ModelFile}``: sizes, stored zeros, the
    files themselves."""
    rec = Record()
    for variant, f in files.items():
        rec.metrics[metric(variant, SIZE)] = f.size_bytes
        rec.metrics[metric(variant, GZIP)] = f.gzip_bytes
        if f.sparsity is not None:
            rec.metrics[metric(variant, FILE_SPARSITY)] = f.sparsity
        if f.unique_weights is not None:
            rec.metrics[metric(variant, UNIQUE_WEIGHTS)] = f.unique_weights
        rec.artifacts.append((f.path, MODELS_DIR))
    return rec


def for_accuracy(predictions: Mapping[str, Any], labels, out_dir: Path) -> Record:
    """``{name: predicted classes}`` of the baseline model (:data:`BASELINE`) and of every
    variant on the same validation images: each variant's accuracy and its Wilson interval,
    its paired comparison with the baseline, the baseline's interval, ``val/images``, and
    every prediction in ``out_dir/predictions.csv``."""
    import numpy as np

    from pruneflow.stats import paired_comparison, wilson_interval

    y = np.asarray(labels)
    correct = {name: np.asarray(p) == y for name, p in predictions.items()}
    rec = Record(metrics={VAL_IMAGES: float(len(y))})
    base = correct.get(BASELINE)
    if base is not None:
        rec.metrics[BASELINE_CI_LOW], rec.metrics[BASELINE_CI_HIGH] = wilson_interval(
            int(base.sum()), len(y)
        )
    for name, ok in correct.items():
        if name == BASELINE:
            continue
        rec.metrics[metric(name, ACCURACY)] = float(ok.mean()) if len(ok) else float("nan")
        low, high = wilson_interval(int(ok.sum()), len(ok))
        rec.metrics[metric(name, ACCURACY_CI_LOW)] = low
        rec.metrics[metric(name, ACCURACY_CI_HIGH)] = high
        if base is not None:
            paired = paired_comparison(ok, base)
            for key, measure in VS_BASELINE.items():
                rec.metrics[metric(name, measure)] = float(paired[key])
    path = Path(out_dir) / PREDICTIONS_FILE
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "label", *predictions])
        for i, label in enumerate(y):
            writer.writerow([i, int(label), *(int(p[i]) for p in predictions.values())])
    rec.artifacts.append((path, EVAL_DIR))
    return rec


def for_device_check(ready) -> Record:
    """A :class:`~pruneflow.devices.readiness.Ready`: the python that runs the runner, its
    warnings."""
    tags = {DEVICE_PYTHON_TAG: ready.facts.get("executable", ready.python)}
    if ready.notes:
        tags[DEVICE_NOTES_TAG] = "; ".join(ready.notes)
    return Record(tags=tags)


def for_timing(timing) -> Record:
    """A :class:`~pruneflow.steps.benchmark.benchmark.Timing`: latency statistics (the
    paper's over the first pass; steady state, warm-up, decode and invoke beside them), kernels,
    memory, threads, the device's state and where each variant was timed, the device's facts
    and steps, the per-image table and the runner's raw result."""
    rec = Record()
    for variant, r in timing.results.items():
        m = rec.metrics
        n = len(r["labels"])
        stats = latency_stats(r["times_ms"][:n])  # the paper's protocol: the first pass
        m.update({metric(variant, latency(s)): stats[s] for s in MEASURES})
        m[metric(variant, LOAD)] = float(r["load_ms"])
        if r.get("repeats", 1) > 1 or r.get("warmup_ms"):
            every = latency_stats(r["times_ms"])
            m.update({metric(variant, steady(s)): every[s] for s in STEADY_STATS})
        if r.get("warmup_ms"):
            m[metric(variant, WARMUP_MEAN)] = sum(r["warmup_ms"]) / len(r["warmup_ms"])
        for name, key in ((decode, "decode_ms"), (invoke, "invoke_ms")):
            if r.get(key):
                split = latency_stats(r[key])
                m.update({metric(variant, name(s)): split[s] for s in SPLIT_STATS})
        if r.get("peak_rss_kb"):
            m[metric(variant, PEAK_RSS)] = r["peak_rss_kb"] / 1024
        if r.get("threads_used") is not None:
            m[metric(variant, THREADS_USED)] = float(r["threads_used"])
        if variant != KERAS:
            m[metric(variant, FELL_BACK)] = float(bool(r["note"]))
        rec.tags[kernels_tag(variant)] = r["kernels"]
        rec.tags[timed_on_tag(variant)] = timing.timed_on[variant]
        if r["note"]:
            rec.tags[fallback_tag(variant)] = r["note"]
        _hygiene(rec, variant, r)
    rec.tags.update({device_tag(k): v for k, v in timing.device.items()})
    rec.metrics.update({device_time(k.removesuffix("_s")): v for k, v in timing.steps.items()})
    rec.tags[TIMING_START_TAG], rec.tags[TIMING_END_TAG] = (f"{t:.3f}" for t in timing.window)
    rec.artifacts += [(timing.runner_json, BENCHMARK_DIR), (timing.latency_csv, BENCHMARK_DIR)]
    return rec


def _hygiene(rec: Record, variant: str, r: Mapping) -> None:
    """The device's state before and after timing a variant: what it exposed, nothing else."""
    states = r.get("hygiene", {})
    for when in ("before", "after"):
        for key, name in HYGIENE.items():
            if key in states.get(when, {}):
                rec.metrics[metric(variant, name.format(when))] = float(states[when][key])
    if "governor" in states.get("before", {}):
        rec.tags[GOVERNOR_TAG] = states["before"]["governor"]
    throttled = [states.get(w, {}).get("throttled") for w in ("before", "after")]
    if any(throttled):
        rec.tags[throttled_tag(variant)] = " -> ".join(str(t) for t in throttled)
    if r.get("cooldown_s"):
        rec.metrics[metric(variant, COOLDOWN)] = float(r["cooldown_s"])
    if r.get("cooldown_note"):
        rec.tags[cooldown_tag(variant)] = r["cooldown_note"]


def for_models(config, metrics: Mapping[str, float], paths: Mapping[str, Path], timing) -> Record:
    """Every variant of the run as a :class:`LoggedModel`: its file, params variant, sparsity,
    device and kernels, and its :data:`VARIANT_MEASURES` (and :data:`TFLITE_MEASURES`) under
    their bare names."""
    rec = Record()
    for variant, path in paths.items():
        measures = (
            *VARIANT_MEASURES,
            *EVIDENCE,
            decode("p50"),
            invoke("p50"),
            PEAK_RSS,
            UNIQUE_WEIGHTS,
            *(TFLITE_MEASURES if variant != KERAS else ()),
        )
        rec.models.append(
            LoggedModel(
                name=model_name(
                    config.model_name,
                    config.prune.sparsity,
                    variant,
                    config.prune.channels,
                    config.cluster.clusters,
                ),
                path=Path(path),
                model_type="keras" if variant == KERAS else "tflite",
                params={
                    "variant": variant,
                    "sparsity": str(config.prune.sparsity),
                    "channels": str(config.prune.channels),
                    "clusters": str(config.cluster.clusters),
                    "measured_sparsity": f"{metrics.get(SPARSITY, float('nan')):.4f}",
                    "model": config.model_name,
                    "device": config.device.name,
                    "kernels": timing.results.get(variant, {}).get("kernels", ""),
                    "timed_on": timing.timed_on.get(variant, ""),
                },
                metrics={
                    m: metrics[metric(variant, m)]
                    for m in measures
                    if metric(variant, m) in metrics
                },
            )
        )
    return rec


def for_stage_times(seconds: Mapping[str, float]) -> Record:
    """``{stage: wall seconds}`` as ``time/<stage>_s``."""
    return Record(metrics={stage_time(s): v for s, v in seconds.items()})


def table(
    metrics: Mapping[str, float], variants: list[str], tags: Mapping[str, str] | None = None
) -> str:
    """A fixed-width table of accuracy, size and latency per variant, and where each was
    timed, for the job log. ``decode``/``invoke``: the p50 of the per-image time's two parts."""
    tags = tags or {}
    head = (
        f"{'variant':<20}{'accuracy':>9}{'size KB':>10}{'gzip KB':>10}{'p50 ms':>9}"
        f"{'mean ms':>9}{'std ms':>9}{'first ms':>10}{'decode':>9}{'invoke':>9}  timed on"
    )
    rows = [head]
    for v in variants:

        def g(measure: str, v: str = v) -> float:
            return metrics.get(metric(v, measure), float("nan"))

        rows.append(
            f"{v:<20}{g(ACCURACY):>9.4f}{g(SIZE) / 1024:>10.1f}{g(GZIP) / 1024:>10.1f}"
            f"{g(latency('p50')):>9.3f}{g(latency('mean')):>9.3f}"
            f"{g(latency('std')):>9.3f}{g(latency('first')):>10.3f}"
            f"{g(decode('p50')):>9.3f}{g(invoke('p50')):>9.3f}  {tags.get(timed_on_tag(v), '-')}"
        )
    return "\n".join(rows)
