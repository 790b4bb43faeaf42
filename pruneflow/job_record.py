"""What the job itself adds to its run, beside each step's record (``steps/<step>/record.py``),
in the names of the contract (:mod:`pruneflow.results`): the tags a run has from its creation,
every variant as an MLflow model, where the time went; and the job log's results table."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pruneflow import __version__
from pruneflow.results import (
    ACCURACY,
    BACKBONE_TAG,
    CODE_TAG,
    DATASET_TAG,
    DELEGATE_TAG,
    DEVICE_ADDRESS_TAG,
    DEVICE_KIND_TAG,
    DEVICE_TAG,
    EVIDENCE,
    GIT_COMMIT_TAG,
    GZIP,
    HOST_TAG,
    JOB_KEY_TAG,
    KERAS,
    MODEL_TAG,
    PEAK_RSS,
    PID_TAG,
    RUNTIME_TAG,
    SIZE,
    SPARSITY,
    TFLITE_MEASURES,
    UNIQUE_WEIGHTS,
    VARIANT_MEASURES,
    VERSION_TAG,
    LoggedModel,
    Record,
    decode,
    invoke,
    latency,
    metric,
    model_name,
    stage_time,
    timed_on_tag,
)

if TYPE_CHECKING:
    from pruneflow.config import Config
    from pruneflow.steps.benchmark.benchmark import Timing


def start_tags(config: Config, runtime: str, git_commit: str | None, code: str) -> dict[str, Any]:
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
        DEVICE_KIND_TAG: dev.kind,
        DEVICE_ADDRESS_TAG: getattr(dev, "host", None),
        HOST_TAG: socket.gethostname(),
        PID_TAG: os.getpid(),
    }


def for_models(
    config: Config, metrics: Mapping[str, float], paths: Mapping[str, Path], timing: Timing
) -> Record:
    """Every variant of the run as a :class:`~pruneflow.results.LoggedModel`: its file, params
    (variant, sparsity, device, kernels ...) and its measures of ``metrics`` (the run's so far:
    :data:`~pruneflow.results.VARIANT_MEASURES` and the others below) under their bare names."""
    rec = Record()
    kernels = {variant: r.kernels for variant, r in timing.results.items()}
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
                    "kernels": kernels.get(variant, ""),
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
