"""The columns of the report's two tables, each named once: runs.csv (:func:`~.selection.rows`,
one row per run and variant: what every table and plot reads) and summary.csv
(:func:`~.summary.summary`, one row per configuration and variant over its seeds).

A column that holds the value of a name of the results contract keeps that name
(:mod:`pruneflow.results`): a variant's measures (``results.ACCURACY``, ``results.GZIP``,
``results.latency("p50")`` ...), the run's ``macs`` and ``params_total``, the ``model``,
``dataset``, ``backbone`` and ``device`` tags. The others are the report's own, here."""

from __future__ import annotations

from pruneflow import results

# -- runs.csv: the run ---------------------------------------------------------------------------
RUN_ID, RUN_NAME, STATUS, ERROR = "run_id", "run_name", "status", "error"  # id, status: MLflow's
SEED = "seed"  # params.seed; <NA> for a run made before it was logged
MODEL, DATASET, BACKBONE = results.MODEL_TAG, results.DATASET_TAG, results.BACKBONE_TAG
DEVICE = results.DEVICE_TAG
# Its configuration: the target sparsity and the target of each dimension beside it
# (:data:`~.selection.DIMENSIONS`), and what pruning measured
TARGET_SPARSITY, MEASURED_SPARSITY = "target_sparsity", "measured_sparsity"
CHANNELS, CLUSTERS = "channels", "clusters"  # prune.channels, cluster.clusters (0: off)
MEASURED_CHANNELS = "measured_channels"  # the run's metric results.CHANNELS
MACS, PARAMS_TOTAL, BASELINE_MACS = results.MACS, results.PARAMS_TOTAL, "baseline_macs"
# The baseline model's accuracy and its interval, the split, the last validation loss
BASELINE_ACCURACY = "baseline_accuracy"
BASELINE_CI_LOW, BASELINE_CI_HIGH = "baseline_ci_low", "baseline_ci_high"
VAL_IMAGES, VAL_LOSS = "val_images", "val_loss"

# -- runs.csv: the variant (its measures keep their names) ---------------------------------------
VARIANT, THREADS, TIMED_ON, KERNELS = "variant", "threads", "timed_on", "kernels"
P50 = results.latency("p50")  # what the latency tables, plots and picks read

# -- summary.csv: a configuration's runs together ------------------------------------------------
N_RUNS, SEEDS = "n_runs", "seeds"  # the runs with an accuracy, their seeds (``1 2 3``)
LATENCY_P50 = "latency_p50"  # the p50's stem in summary.csv (latency_p50_mean ...), ms
VS_BASELINE_N = "vs_baseline_n"  # the runs with the paired comparison


def mean(column: str) -> str:
    """``<column>_mean``: its mean over a configuration's runs."""
    return f"{column}_mean"


def std(column: str) -> str:
    """``<column>_std``: the runs' standard deviation."""
    return f"{column}_std"


def ci_low(column: str) -> str:
    """``<column>_ci_low``: the low end of the mean's 95% interval."""
    return f"{column}_ci_low"


def ci_high(column: str) -> str:
    """``<column>_ci_high``: its high end."""
    return f"{column}_ci_high"


# -- runs.csv and summary.csv: energy per image, only where some run measured it (device.energy) --
# runs.csv: a variant's energy measures keep their names (results.ENERGY_MEASURES), beside what
# measured them (the run's tag results.ENERGY_SOURCE_TAG), and why a run asked for energy has
# none (results.ENERGY_NOTE_TAG: a column only where some run has that note)
ENERGY_SOURCE, ENERGY_NOTE = "energy_source", "energy_note"
# summary.csv: the energy per image over a configuration's runs (energy_mj_mean, _std, _ci_low,
# _ci_high: col.mean(results.ENERGY) ...), and the means of what it is made of
ENERGY_MEANS = (results.ENERGY_ABOVE_IDLE, results.POWER, results.IDLE_POWER)
