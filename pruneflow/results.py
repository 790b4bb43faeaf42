"""The results contract: every MLflow metric, tag and artifact name pruneflow writes or reads.

The names only, and the shape of what a step adds to a run (:class:`Record`). Each step turns
its typed result into a Record in these names beside its own code (``steps/<step>/record.py``,
:func:`pruneflow.steps.evaluate.for_accuracy`), the job adds its own (:mod:`pruneflow.job_record`),
and the sweep, search, report and compare read and write by these names too. The reference page
docs/reference/results.md is generated from them (:mod:`pruneflow.results_doc`), and
tests/test_contract.py fails when one is written as a literal anywhere else in the package.

Per model variant (``keras`` and each ``tflite_*``): ``<variant>/<measure>`` for the measures
in :data:`VARIANT_MEASURES`, plus :data:`TFLITE_MEASURES` for the .tflite files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pruneflow.stats import MEASURES

# the stripped Keras model's name among the variants (beside the .tflite ones)
KERAS = "keras"

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
# Energy per image (issue #29, device.energy): after a variant's latency pass, power sampled
# while the device idles, then while it runs the variant back to back for a window. Per
# variant: the energy of one image while running (mean power x window / images, mJ) with its
# 95% interval, what running adds to idling per image, mean power running and idle (W), the
# samples of each and the window (s), and the images run in it. Absent where nothing measured.
ENERGY, ENERGY_CI_LOW, ENERGY_CI_HIGH = "energy_mj", "energy_mj_ci_low", "energy_mj_ci_high"
ENERGY_ABOVE_IDLE = "energy_above_idle_mj"
POWER, IDLE_POWER = "power_w", "idle_power_w"
POWER_SAMPLES, IDLE_SAMPLES = "power_samples", "idle_samples"
ENERGY_WINDOW, ENERGY_IMAGES = "energy_window_s", "energy_images"
ENERGY_MEASURES = (
    ENERGY,
    ENERGY_CI_LOW,
    ENERGY_CI_HIGH,
    ENERGY_ABOVE_IDLE,
    POWER,
    IDLE_POWER,
    POWER_SAMPLES,
    IDLE_SAMPLES,
    ENERGY_WINDOW,
    ENERGY_IMAGES,
)
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
# ... and what that is of the whole model: the fraction of every kernel layer's output channels
# removed, and of the baseline's multiply-accumulates (a model much of which must keep its
# channels removes 0.5 of its prunable channels and only a few percent of its MACs).
CHANNELS_ALL, MACS_REMOVED = "channels_all", "macs_removed"
# The bare names that are the run's own, never a variant's, though a variant may log a measure
# of that name (a .tflite file's stored zeros, <variant>/sparsity: FILE_SPARSITY). (A run also
# has a variant's bare measures, accuracy or gzip_bytes: MLflow's copy of a LoggedModel's.)
RUN_MEASURES = (SPARSITY, PARAMS_TOTAL, PARAMS_NONZERO, CHANNELS, MACS, CHANNELS_ALL, MACS_REMOVED)
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
# What tells a run pruneflow made (a job's, from its creation: job_record.start_tags; a sweep's
# parent) from one logged into the same experiment by plain MLflow or another tool: reports skip
# the latter.
MADE_BY_TAG = VERSION_TAG
# The code that made a run (a package hash: tracking.provenance.code_version); a job is resumed
# only from a run of the same code. REPLACES_TAG: on a run made again because the FINISHED run of
# its config came from other code, that run's id.
CODE_TAG, REPLACES_TAG = "pruneflow.code", "pruneflow.replaces"
# on a job's run once it goes on as the one run of its config (tracking.claims)
CLAIMED_TAG = "pruneflow.claimed"
BASELINE_CACHE_TAG, BASELINE_KEY_TAG = "baseline_cache", "baseline_key"
# selected layers the target sparsity leaves without a single weight (a warning)
LAYERS_WITHOUT_WEIGHTS_TAG = "prune.layers_without_weights"
# layers of a model file whose classes are the user's own: no optimization touches them
LEFT_DENSE_TAG = "prune.left_dense"
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
RUN_NAME_TAG = "mlflow.runName"  # MLflow's own: the run's name (tracking.run_name)
# On the parent, from the report: its choice per model, non-inferior to the baseline (sparsity,
# or sparsity/c<channels>, sparsity/cl<clusters> ...: the dimensions the study varies)
BEST_TAG = "pruneflow.best_sparsity"
# On a search's parent (hydra/sweeper=optuna: pruneflow.study.search): the runs on the Pareto
# front, comma-separated, and the objectives as objective:direction, ...
FRONT_TAG, OBJECTIVES_TAG = "pruneflow.search.front", "pruneflow.search.objectives"
# Where the baseline came from: cache (this machine's), store (the tracking store), trained
BASELINE_FROM_TAG = "baseline_from"
# On a run that timed the models of an earlier job that differed only in device, delegate or
# benchmark (this machine's models cache): the run that made them, whose model measures it has
MODELS_FROM_TAG = "models_from"
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
# What measured a run's energy (pmic, or `command: <the meter command> (on device|host)`), and
# why a run has no energy number where it was asked for (one note, never a made-up value)
ENERGY_SOURCE_TAG, ENERGY_NOTE_TAG = "energy.source", "energy.note"


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


# The device described (issue #29), facts of the runner's, each tagged device_tag(fact): the
# board (/proc/device-tree/model; none on x86), the CPU features that decide which variants can
# be fast (/proc/cpuinfo), the same from the kernel's AT_HWCAP on arm64 (what XNNPACK reads), the
# cores; the governor is GOVERNOR_TAG
BOARD, CPU_FEATURES, HWCAP_FEATURES, CORES = "board", "cpu_features", "hwcap_features", "cores"
DEVICE_FACTS = (BOARD, CPU_FEATURES, HWCAP_FEATURES, CORES)


def arithmetic_tag(variant: str) -> str:
    """A variant that asks for FP16 arithmetic: what computed it, ``float16`` or ``float32``."""
    return f"arithmetic/{variant}"


# -- artifacts ---------------------------------------------------------------------------------
CONFIG_FILE = "config.yaml"
MODELS_DIR = "models"
LAYERS_DIR, LAYERS_FILE = "prune", "layers.csv"
EVAL_DIR, PREDICTIONS_FILE = "eval", "predictions.csv"  # index, label, baseline, each variant
BENCHMARK_DIR, LATENCY_FILE, RUNNER_FILE = "benchmark", "latency.csv", "runner.json"
# the job's log (with libraries' output and any traceback): Hydra's job log, <hydra.job.name>.log
LOG_FILE = "pruneflow.log"
SUMMARY_FILE, JOBS_FILE = "sweep_summary.txt", "sweep_jobs.json"  # on a sweep's parent run
REPORT_DIR = "report"  # a sweep's report: <sweep dir>/report/ and the parent run's report/
# in it: the report's text, every run's row (a variant per row) and the mean over seeds
REPORT_MD, RUNS_CSV, SUMMARY_CSV = "report.md", "runs.csv", "summary.csv"
FRONT_CSV, FRONT_PLOT = "pareto.csv", "pareto_search.png"  # a search's Pareto front of trials
# `pruneflow compare` (issue #18): every .tflite variant of a sweep's runs and of its dense
# baseline re-timed in interleaved rounds; in the report folder and the parent's report/
COMPARE_CSV, COMPARE_ROUNDS_CSV, COMPARE_PLOT = "compare.csv", "compare_rounds.csv", "compare.png"


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
