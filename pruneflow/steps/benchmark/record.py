"""What the device check and the timing add to a run, in the names of the contract
(:mod:`pruneflow.results`): latency statistics, kernels, memory, threads, the device's state
and facts, and the runner's files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pruneflow.results import (
    BENCHMARK_DIR,
    COOLDOWN,
    DEVICE_NOTES_TAG,
    DEVICE_PYTHON_TAG,
    ENERGY,
    ENERGY_ABOVE_IDLE,
    ENERGY_CI_HIGH,
    ENERGY_CI_LOW,
    ENERGY_IMAGES,
    ENERGY_NOTE_TAG,
    ENERGY_SOURCE_TAG,
    ENERGY_WINDOW,
    FELL_BACK,
    GOVERNOR_TAG,
    HYGIENE,
    IDLE_POWER,
    IDLE_SAMPLES,
    KERAS,
    LOAD,
    PEAK_RSS,
    POWER,
    POWER_SAMPLES,
    SPLIT_STATS,
    STEADY_STATS,
    THREADS_USED,
    TIMING_END_TAG,
    TIMING_START_TAG,
    WARMUP_MEAN,
    Record,
    arithmetic_tag,
    cooldown_tag,
    decode,
    device_tag,
    device_time,
    fallback_tag,
    invoke,
    kernels_tag,
    latency,
    metric,
    steady,
    throttled_tag,
    timed_on_tag,
)
from pruneflow.stats import MEASURES, latency_stats

if TYPE_CHECKING:
    from pruneflow.devices.readiness import Ready
    from pruneflow.steps.benchmark.benchmark import Timing


def for_device_check(ready: Ready) -> Record:
    """A :class:`~pruneflow.devices.readiness.Ready`: the python that runs the runner, its
    warnings, why nothing measures energy (``device.energy.source=auto`` without a PMIC)."""
    tags = {DEVICE_PYTHON_TAG: ready.facts.get("executable", ready.python)}
    if ready.notes:
        tags[DEVICE_NOTES_TAG] = "; ".join(ready.notes)
    if ready.energy_note:
        tags[ENERGY_NOTE_TAG] = ready.energy_note
    return Record(tags=tags)


def for_timing(timing: Timing) -> Record:
    """A :class:`~pruneflow.steps.benchmark.benchmark.Timing`: latency statistics (the
    paper's over the first pass; steady state, warm-up, decode and invoke beside them), kernels,
    memory, threads, the device's state and where each variant was timed, the device's facts
    and steps, the per-image table and the runner's raw result."""
    rec = Record()
    for variant, r in timing.results.items():
        m = rec.metrics
        n = len(r.labels)
        stats = latency_stats(r.times_ms[:n])  # the paper's protocol: the first pass
        m.update({metric(variant, latency(s)): stats[s] for s in MEASURES})
        m[metric(variant, LOAD)] = float(r.load_ms)
        if r.repeats > 1 or r.warmup_ms:
            every = latency_stats(r.times_ms)
            m.update({metric(variant, steady(s)): every[s] for s in STEADY_STATS})
        if r.warmup_ms:
            m[metric(variant, WARMUP_MEAN)] = sum(r.warmup_ms) / len(r.warmup_ms)
        for name, times in ((decode, r.decode_ms), (invoke, r.invoke_ms)):
            if times:
                split = latency_stats(times)
                m.update({metric(variant, name(s)): split[s] for s in SPLIT_STATS})
        if r.peak_rss_kb:
            m[metric(variant, PEAK_RSS)] = r.peak_rss_kb / 1024
        if r.threads_used is not None:
            m[metric(variant, THREADS_USED)] = float(r.threads_used)
        if variant != KERAS:
            m[metric(variant, FELL_BACK)] = float(bool(r.note))
        rec.tags[kernels_tag(variant)] = r.kernels
        rec.tags[timed_on_tag(variant)] = timing.timed_on[variant]
        if r.note:
            rec.tags[fallback_tag(variant)] = r.note
        if r.arithmetic:
            rec.tags[arithmetic_tag(variant)] = r.arithmetic
        _hygiene(rec, variant, r)
        if variant in timing.energy:
            _energy(rec, variant, timing.energy[variant])
    if timing.energy_source:
        rec.tags[ENERGY_SOURCE_TAG] = timing.energy_source
    if timing.energy_notes:
        rec.tags[ENERGY_NOTE_TAG] = "; ".join(timing.energy_notes)
    rec.tags.update({device_tag(k): v for k, v in timing.device.items()})
    rec.metrics.update({device_time(k.removesuffix("_s")): v for k, v in timing.steps.items()})
    rec.tags[TIMING_START_TAG], rec.tags[TIMING_END_TAG] = (f"{t:.3f}" for t in timing.window)
    rec.artifacts += [(timing.runner_json, BENCHMARK_DIR), (timing.latency_csv, BENCHMARK_DIR)]
    return rec


def _energy(rec: Record, variant: str, e) -> None:
    """A variant's energy per image (:class:`~pruneflow.steps.benchmark.energy.EnergyNumbers`)."""
    values = {
        ENERGY: e.energy_mj,
        ENERGY_CI_LOW: e.ci_low,
        ENERGY_CI_HIGH: e.ci_high,
        ENERGY_ABOVE_IDLE: e.above_idle_mj,
        POWER: e.power_w,
        IDLE_POWER: e.idle_power_w,
        POWER_SAMPLES: e.power_samples,
        IDLE_SAMPLES: e.idle_samples,
        ENERGY_WINDOW: e.window_s,
        ENERGY_IMAGES: e.images,
    }
    rec.metrics.update({metric(variant, k): float(v) for k, v in values.items()})


def _hygiene(rec: Record, variant: str, r) -> None:
    """The device's state before and after timing a variant: what it exposed, nothing else."""
    states = r.hygiene
    for when in ("before", "after"):
        for key, name in HYGIENE.items():
            if key in states.get(when, {}):
                rec.metrics[metric(variant, name.format(when))] = float(states[when][key])
    if "governor" in states.get("before", {}):
        rec.tags[GOVERNOR_TAG] = states["before"]["governor"]
    throttled = [states.get(w, {}).get("throttled") for w in ("before", "after")]
    if any(throttled):
        rec.tags[throttled_tag(variant)] = " -> ".join(str(t) for t in throttled)
    if r.cooldown_s:
        rec.metrics[metric(variant, COOLDOWN)] = float(r.cooldown_s)
    if r.cooldown_note:
        rec.tags[cooldown_tag(variant)] = r.cooldown_note
