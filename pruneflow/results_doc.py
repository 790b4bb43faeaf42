"""What each name of the results contract (:mod:`pruneflow.results`) means, for the reference
page docs/reference/results.md (``make docs``: scripts/gen_docs.py). Every key is made by the
contract itself (its constants and functions, a placeholder such as ``<variant>`` where a name
has a part that varies); tests/test_docs.py fails when a name of the contract has no entry.

Apart from results.py so that the contract stays the names alone and no run loads this prose:
nothing at run time imports it. It imports the contract only, never the code that uses it.
"""

from __future__ import annotations

from pruneflow import results as r
from pruneflow.devices.config import kinds
from pruneflow.results import KERAS
from pruneflow.stats import MEASURES
from pruneflow.steps.convert.variants import VARIANTS


def _any(words) -> str:
    return ", ".join(f"`{w}`" for w in words)


V, S, W = "<variant>", "<statistic>", "<when>"  # placeholders in a name

# `<variant>/<measure>`: {measure: (which variants have it, what it is)}
VARIANT_METRICS = {
    r.ACCURACY: ("every", f"top-1 accuracy over every validation image (`{r.VAL_IMAGES}`)"),
    r.ACCURACY_CI_LOW: ("every", "the accuracy's 95% Wilson interval, low end"),
    r.ACCURACY_CI_HIGH: ("every", "the accuracy's 95% Wilson interval, high end"),
    r.VS_BASELINE["delta"]: ("every", "accuracy minus the baseline model's, on the same images"),
    r.VS_BASELINE["p"]: (
        "every",
        "exact two-sided McNemar test against the baseline on the images only one of them gets "
        "right (1.0 when there are none)",
    ),
    r.VS_BASELINE["ci_low"]: (
        "every",
        "Newcombe's interval of the paired difference (from the two Wilson intervals and their "
        "correlation), low end",
    ),
    r.VS_BASELINE["ci_high"]: ("every", "the same interval, high end"),
    r.SIZE: ("every", "the model file's size in bytes"),
    r.GZIP: ("every", "the file's size gzip-compressed: what pruning's zeros save"),
    r.latency(S): (
        "every",
        f"per-image inference time over the first timed pass (the paper's protocol); {S}: "
        f"{_any(MEASURES)} (`first`: the first image alone; `ste`: the standard error)",
    ),
    r.LOAD: ("every", "time to load the model and allocate its tensors"),
    r.decode(S): (
        "every",
        f"read + decode + preprocess of an image; {S}: {_any(r.SPLIT_STATS)}",
    ),
    r.invoke(S): ("every", f"set_tensor + invoke + get_tensor; {S}: {_any(r.SPLIT_STATS)}"),
    r.steady(S): (
        "with `benchmark.warmup` or `benchmark.repeats` > 1",
        f"the steady state: every timed image of every pass but the first image; {S}: "
        f"{_any(r.STEADY_STATS)}",
    ),
    r.WARMUP_MEAN: ("with `benchmark.warmup` > 0", "mean time of the untimed warm-up images"),
    r.PEAK_RSS: ("every", "peak resident memory of the model's own runner process"),
    r.THREADS_USED: ("every", "threads the runtime ran the model with"),
    r.HYGIENE["temp_c"].format(W): (
        "where the device exposes it",
        f"CPU temperature before or after timing the variant; {W}: `before`, `after`",
    ),
    r.HYGIENE["freq_mhz"].format(W): ("where the device exposes it", "CPU clock, likewise"),
    r.HYGIENE["load1"].format(W): ("where the device exposes it", "1-minute load, likewise"),
    r.COOLDOWN: ("with `device.cooldown_c`", "seconds waited for the CPU to cool down first"),
    r.ENERGY: (
        "where `device.energy` measured",
        "energy of one image while the variant runs back to back: mean power x window / images "
        "(mJ)",
    ),
    r.ENERGY_CI_LOW: ("where `device.energy` measured", "its 95% interval, low end"),
    r.ENERGY_CI_HIGH: ("where `device.energy` measured", "its 95% interval, high end"),
    r.ENERGY_ABOVE_IDLE: (
        "where `device.energy` measured",
        "what running adds to idling, per image: (power - idle power) x window / images (mJ)",
    ),
    r.POWER: ("where `device.energy` measured", "mean power while running (W)"),
    r.IDLE_POWER: ("where `device.energy` measured", "mean power while idle, just before (W)"),
    r.POWER_SAMPLES: ("where `device.energy` measured", "power samples while running"),
    r.IDLE_SAMPLES: ("where `device.energy` measured", "power samples while idle"),
    r.ENERGY_WINDOW: ("where `device.energy` measured", "the running window (s)"),
    r.ENERGY_IMAGES: ("where `device.energy` measured", "images run in the window"),
    r.FILE_SPARSITY: (".tflite only", "fraction of zeros stored in the file's weights"),
    r.FELL_BACK: (
        ".tflite only",
        "1 when the delegate could not run the model and builtin kernels did",
    ),
    r.UNIQUE_WEIGHTS: (
        "with `cluster.clusters` > 0",
        "the most distinct values in any clustered weight tensor, counted from the file (per "
        "output channel where int8 gives every channel its own scale)",
    ),
}

# The names a measure with a placeholder stands for (so each can be found on the page)
EXPANDED = {
    r.latency(S): [r.latency(m) for m in MEASURES],
    r.decode(S): [r.decode(m) for m in r.SPLIT_STATS],
    r.invoke(S): [r.invoke(m) for m in r.SPLIT_STATS],
    r.steady(S): [r.steady(m) for m in r.STEADY_STATS],
    **{
        name.format(W): [name.format(w) for w in ("before", "after")] for name in r.HYGIENE.values()
    },
}

# Metrics of the run itself
RUN_METRICS = {
    r.BASELINE_ACCURACY: "the baseline model's accuracy on the same validation images",
    r.BASELINE_CI_LOW: "its 95% Wilson interval, low end",
    r.BASELINE_CI_HIGH: "its 95% Wilson interval, high end",
    r.VAL_IMAGES: "how many validation images every accuracy is measured on",
    r.SPARSITY: "measured fraction of zeros over every kernel of the pruned model",
    r.PARAMS_TOTAL: "parameters of the model converted",
    r.PARAMS_NONZERO: "its non-zero parameters",
    r.CHANNELS: "measured fraction of prunable output channels removed (`prune.channels`)",
    r.MACS: "multiply-accumulates per image of the model converted",
    r.BASELINE_MACS: "multiply-accumulates per image of its baseline",
    r.CHANNELS_ALL: "fraction of the output channels of every kernel layer (prunable or kept: "
    "`pruneflow inspect` says why) removed by channel pruning",
    r.MACS_REMOVED: "fraction of the baseline's multiply-accumulates per image removed "
    "(1 - macs / baseline/macs)",
    **{
        curve: f"stepped, one value per epoch: Keras's `{key}` (baseline epochs, then "
        "fine-tuning epochs)"
        for key, curve in r.CURVES.items()
    },
    r.stage_time("<stage>"): f"wall seconds of each stage; <stage>: {_any(r.STAGES)}",
    r.device_time("<step>"): "seconds of an SSH device's steps (connect, upload, run ...)",
    r.LOCK_WAIT: "the wait for the device's timing lock",
}

# Tags, by the runs that have them
TAGS = {
    "Every run, from its creation": {
        r.JOB_KEY_TAG: "a hash of the config minus `paths` and `tracking`: the same work has "
        "the same key",
        r.GIT_COMMIT_TAG: "the checkout's commit, when run from a git checkout",
        r.VERSION_TAG: "pruneflow's version",
        r.CODE_TAG: "a hash of the code that made the run; a job resumes only from a run of "
        "the same code",
        r.REPLACES_TAG: "a run of the same config by other code that this one replaces",
        r.HOST_TAG: "the machine the job ran on",
        r.PID_TAG: "the job's process id",
        r.RUNTIME_TAG: "the LiteRT runtime and its version",
        r.DELEGATE_TAG: "`delegate.name`",
        r.MODEL_TAG: "what reports group by: `tracking.model`, else `<dataset>-<backbone>`",
        r.DATASET_TAG: "the dataset's label",
        r.BACKBONE_TAG: "the backbone's label",
        r.DEVICE_TAG: "`device.name`",
        r.DEVICE_KIND_TAG: f"the device's kind (its schema's `kind`): {_any(kinds())}",
        r.DEVICE_ADDRESS_TAG: "an SSH device's host",
        r.RUN_NAME_TAG: "MLflow's own: the run's name, `tracking.run_name`, else "
        "`<model>-s<sparsity>`",
    },
    "Every finished run": {
        r.CLAIMED_TAG: "`true` (with `tracking.resume`): the run went on as the one run of its "
        "config, where concurrent sweeps had the same job",
        r.BASELINE_CACHE_TAG: "`hit` (a trained baseline was found) or `miss` (it was trained)",
        r.BASELINE_KEY_TAG: "the baseline's key: a hash of what determines it",
        r.BASELINE_FROM_TAG: "`cache` (this machine's), `store` (the tracking store), `trained`",
        r.MODELS_FROM_TAG: "the run whose models this run timed: an earlier job that differed "
        "only in `device`, `delegate` or `benchmark` (the models cache); absent where the job "
        "made its own",
        r.kernels_tag(V): "what really ran the variant: `xnnpack`, `builtin`, a delegate, "
        "`tensorflow`",
        r.fallback_tag(V): "why the delegate fell back to builtin kernels (only when it did)",
        r.timed_on_tag(V): "where the variant's latency was measured: the device's name, or `host`",
        r.throttled_tag(V): "a Raspberry Pi's `vcgencmd get_throttled` before -> after timing "
        "the variant",
        r.cooldown_tag(V): "why the device did not cool down to `device.cooldown_c` first",
        r.device_tag("<fact>"): "CPU, cores, OS, versions, as the runner saw them",
        r.device_tag(r.BOARD): "the board, from `/proc/device-tree/model` (`Raspberry Pi 5 "
        "Model B Rev 1.0`; absent on x86)",
        r.device_tag(r.CPU_FEATURES): "the CPU features that decide which variants can be fast, "
        "from `/proc/cpuinfo` (`Features` on arm, `flags` on x86), those present of: FP16 "
        "arithmetic `fphp asimdhp` (a Pi 5's Cortex-A76; not a Pi 4's A72), `asimdfhm`, int8 "
        "dot product `asimddp`, int8 matrix multiply `i8mm`, `bf16`, `sve`, `sve2`; x86 `avx2`, "
        "`fma`, `f16c` (float16 conversion only), `avx512f`, `avx512_vnni`, `avx512_bf16`, "
        "`avx512_fp16`",
        r.device_tag(r.HWCAP_FEATURES): "arm64 only: the same features as the kernel hands them "
        "to the process (AT_HWCAP, AT_HWCAP2), which is what XNNPACK reads; under qemu-user the "
        "emulated CPU's, where `/proc/cpuinfo` can be the host's",
        r.device_tag(r.CORES): "the CPU's cores",
        r.arithmetic_tag(V): "a variant that asks for FP16 arithmetic (`tflite_float16_compute`): "
        "`float16` where the runtime computed it in float16, `float32` where it did not (a CPU "
        "without FP16 arithmetic). Measured on the device, not guessed: its output on the first "
        "image against that of the same file with its reduced-precision metadata hidden, both "
        "built alike: float16 arithmetic rounds every activation (the outputs differ), float32 "
        "gives the same bits",
        r.DEVICE_PYTHON_TAG: "the python that ran the device runner",
        r.GOVERNOR_TAG: "the CPU frequency governor (where the device exposes it)",
        r.DEVICE_NOTES_TAG: "what the device check warned of",
        r.ENERGY_SOURCE_TAG: "what measured the energy numbers: `pmic`, or the meter command",
        r.ENERGY_NOTE_TAG: "why a run asked for energy has no energy number",
        r.TIMING_START_TAG: "start of the device's exclusive timing window (seconds since the "
        "epoch)",
        r.TIMING_END_TAG: "its end",
        r.QAT_SCHEME_TAG: "with `tflite_int8_qat`: `pqat`, `cqat` or `pcqat`, the "
        "quantization-aware scheme that made it",
        r.CLUSTERED_LAYERS_TAG: "the layers clustering clustered",
        r.LAYERS_WITHOUT_WEIGHTS_TAG: "selected layers the target sparsity leaves without a "
        "single weight (also a warning before fine-tuning)",
        r.LEFT_DENSE_TAG: "backbone=file: the model's own (custom) layers with weights, which no "
        f"optimization touches (also in {r.LAYERS_DIR}/{r.LAYERS_FILE} and the log)",
    },
    "A run that failed": {
        r.ERROR_TYPE_TAG: "the error's type",
        r.ERROR_MESSAGE_TAG: f"its message (the traceback is in `{r.LOG_FILE}`)",
    },
    "A sweep's parent run and its jobs": {
        r.PARENT_TAG: "MLflow's nesting tag, on each job: its sweep's parent run",
        r.JOB_NUM_TAG: "on each job: its number in the sweep",
        r.JOB_OVERRIDES_TAG: "on each job: its overrides",
        r.SWEEP_TAG: "on the parent: the sweep's name",
        r.SWEEP_DIR_TAG: "on the parent: the sweep's folder",
        r.SWEEP_OVERRIDES_TAG: "on the parent: the sweep's overrides",
        r.SWEEP_JOBS_TAG: "on the parent: the number of jobs",
        r.BEST_TAG: "on the parent: the report's best sparsity per model (non-inferior to the "
        "baseline)",
        r.FRONT_TAG: "on a search's parent: the runs on the Pareto front",
        r.OBJECTIVES_TAG: "on a search's parent: `objective:direction, ...`",
    },
}

# Artifacts, by the runs that have them
ARTIFACTS = {
    "Every run": {
        r.CONFIG_FILE: "the resolved config",
        r.LOG_FILE: "the job's log (libraries' output and any traceback included)",
        f"{r.MODELS_DIR}/": "the stripped Keras model and every `.tflite`",
        f"{r.EVAL_DIR}/{r.PREDICTIONS_FILE}": "every validation image: `index`, `label`, the "
        f"`{r.BASELINE}` model's predicted class, then each variant's",
        f"{r.LAYERS_DIR}/{r.LAYERS_FILE}": "every kernel: its output channels before and after "
        "channel pruning, selected for pruning or not, measured zeros, clustered or not and "
        "its distinct values",
        f"{r.BENCHMARK_DIR}/{r.LATENCY_FILE}": "one row per variant, pass and image (warm-up "
        "images as pass -1): `latency_ms`, `decode_ms`, `invoke_ms`",
        f"{r.BENCHMARK_DIR}/{r.RUNNER_FILE}": "the device runner's raw result",
    },
    "A sweep's parent run": {
        r.SUMMARY_FILE: "the sweep's table of jobs",
        r.JOBS_FILE: "every job: its overrides, status and run",
        f"{r.REPORT_DIR}/": "the sweep's report (also `<sweep dir>/report/`): its plots and "
        "the files below",
        f"{r.REPORT_DIR}/{r.REPORT_MD}": "the report: the paper's tables, the best sparsity per "
        "model, the evidence",
        f"{r.REPORT_DIR}/{r.RUNS_CSV}": "one row per run and variant: every measure, its "
        "config and where it was timed",
        f"{r.REPORT_DIR}/{r.SUMMARY_CSV}": "one row per configuration and variant: the mean "
        "and spread over its runs (seeds)",
        f"{r.REPORT_DIR}/{r.COMPARE_CSV}": "`pruneflow compare`: every .tflite variant of the "
        "sweep's runs and of its dense baseline re-timed in interleaved rounds (beside each, its "
        "run's measured energy per image, from the run's own pass)",
        f"{r.REPORT_DIR}/{r.COMPARE_ROUNDS_CSV}": "its every round",
        f"{r.REPORT_DIR}/{r.COMPARE_PLOT}": "its plot",
        f"{r.REPORT_DIR}/{r.FRONT_CSV}": "a search's Pareto front of its trials",
        f"{r.REPORT_DIR}/{r.FRONT_PLOT}": "its plot",
    },
}

OTHER = {
    r.BASELINE_EXPERIMENT: "the experiment that keeps one run per trained baseline (with "
    "`tracking.store_baselines`), found by its key",
}

__all__ = [
    "ARTIFACTS",
    "EXPANDED",
    "KERAS",
    "OTHER",
    "RUN_METRICS",
    "TAGS",
    "VARIANTS",
    "VARIANT_METRICS",
]
