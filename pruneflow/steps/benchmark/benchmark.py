"""Benchmark stage: benchmark images on disk, the device runner for the .tflite variants,
timed Keras inference.

The TFLite variants are timed by the device runner (:mod:`pruneflow.devices`); the Keras model,
which needs TensorFlow, by the runner too on a device that has it, else here in-process with the
runner's own code (same protocol, same image decoder), and every variant says where it was timed
(``timed_on``).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pruneflow.devices import power_sampler
from pruneflow.devices.base import Protocol, open_device
from pruneflow.devices.config import DeviceConfig
from pruneflow.devices.energy import EnergyPlan
from pruneflow.devices.local import time_keras
from pruneflow.devices.locks import LockWindow, timing_lock
from pruneflow.devices.result import ModelResult
from pruneflow.results import KERAS, LATENCY_FILE, RUNNER_FILE
from pruneflow.stats import MIN_TIMES, latency_stats
from pruneflow.steps.benchmark.config import BenchmarkConfig
from pruneflow.steps.benchmark.energy import EnergyNumbers, NoEnergy, energy_numbers

log = logging.getLogger(__name__)

HOST = "host"  # timed_on/<variant> for what is timed on this machine beside the device


@dataclass
class Timing:
    """Per-image timings of every variant, and where they were measured."""

    results: dict[str, ModelResult]  # {variant: its timing by the runner's protocol}
    device: dict[str, str]  # the device's facts as the runner saw them
    steps: dict[str, float]  # the device's step timings (connect_s, run_s, lock_wait_s ...)
    runner_json: Path  # the runner's raw result
    latency_csv: Path  # one row per variant and image
    window: tuple[float, float]  # when the timing held its lock(s), seconds since the epoch
    timed_on: dict[str, str]  # {variant: the device's name, or "host" (this machine)}
    energy: dict[str, EnergyNumbers] = field(default_factory=dict)  # {variant: per image}
    energy_source: str = ""  # what measured it (EnergyPlan.label); "": nothing
    energy_notes: list[str] = field(default_factory=list)  # why a variant has no energy number


def run_benchmark(
    keras_model: Path,
    tflite_models: Mapping[str, Path],
    images_dir: Path,
    config: BenchmarkConfig,
    device: DeviceConfig,
    delegate: Mapping,
    out_dir: Path,
    keras_on: str,
    meter: EnergyPlan | None = None,
) -> Timing:
    """Time the .tflite models on ``device`` with ``delegate`` (the ``delegate`` keys) by the
    protocol of ``config`` (warm-up, repeats) and the device's cool-down, and the Keras model
    where ``keras_on`` says (``device``: by the device; ``host``: in this process, beside the
    device; ``off``: not at all; :meth:`pruneflow.devices.base.Device.check` decides). Writes
    ``runner.json`` and ``latency.csv`` into ``out_dir``. With ``meter`` (what the device check
    found to measure energy: ``Ready.energy``), each .tflite variant's energy per image after
    its timing (:mod:`.energy`); a meter that runs here samples for the whole run.

    Timing is exclusive: the device's timing lock is held while it times
    (:meth:`~pruneflow.devices.base.Device.timing_lock`), and this machine's while the Keras
    model is timed here beside it (:mod:`pruneflow.devices.locks`).
    """
    out_dir = Path(out_dir)
    runner_json = out_dir / RUNNER_FILE
    models = list(tflite_models.values())
    protocol = Protocol(config.warmup, config.repeats, device.cooldown_c, device.cooldown_max_s)
    protocol.energy = meter.runner_arg() if meter else None
    on_device = keras_model if keras_on == "device" else None
    here, offset = None, (0.0, 0.0)  # a meter on this machine, and the device's clock offset
    with open_device(device) as dev, dev.timing_lock() as lock:
        if meter and protocol.energy["source"] == "host":
            offset = dev.clock_offset()
            read = power_sampler.reader("command", meter.command)
            here = power_sampler.Sampler(read, meter.period_s).start()
        try:
            doc = dev.benchmark(
                models, images_dir, runner_json, dict(delegate), protocol, on_device
            )
        finally:
            if here is not None:
                here.stop()
    _timed(doc.results, dev.name)
    energy, notes = _energy(doc.results, meter, here, offset)
    keras, host = {}, LockWindow(end=lock.end)  # nothing timed beside the device
    if keras_on == "host":
        with timing_lock() as host:  # the Keras model is timed on this machine
            keras = {KERAS: time_keras(keras_model, images_dir, protocol)}
        _timed(keras, HOST)
    waited = dev.timings.get("lock_wait_s", 0.0) + lock.wait_s + host.wait_s
    steps = {**dev.timings, "lock_wait_s": waited}
    results = {**keras, **doc.results}  # the runner keys a Keras model "keras" too
    timed_on = {v: HOST if v in keras else dev.name for v in results}
    csv_path = write_latency_csv(results, doc.images, out_dir / LATENCY_FILE)
    window = (lock.start, host.end)
    source = meter.label if meter else ""
    return Timing(
        results, doc.device, steps, runner_json, csv_path, window, timed_on, energy, source, notes
    )


def _energy(results: Mapping[str, ModelResult], meter, here, offset) -> tuple[dict, list[str]]:
    """({variant: its energy numbers}, [why a variant has none]) from each variant's trace;
    ``here``: the samples of a meter on this machine, set in the device's clock by ``offset``
    (the device's minus ours, its uncertainty), a sample counting only when it lies more than
    the uncertainty and one period inside a window."""
    found, notes = {}, []
    for variant, r in results.items():
        trace = r.energy
        if meter is None or trace is None:
            continue
        times, watts, guard = trace.times, trace.watts, 0.0
        if here is not None:
            times = [t + offset[0] for t in here.times]
            watts, guard = here.watts, offset[1] + meter.period_s
        elif trace.failures:
            _failed(variant, trace.failures)
        idle, run = (trace.idle_start, trace.idle_end), (trace.run_start, trace.run_end)
        try:
            found[variant] = energy_numbers(times, watts, idle, run, trace.images, guard)
        except NoEnergy as exc:
            notes.append(f"{variant}: {exc}")
            continue
        e = found[variant]
        log.info(
            "energy of %s: %.3f mJ/image [%.3f, %.3f], %.3f W running, %.3f W idle",
            *(variant, e.energy_mj, e.ci_low, e.ci_high, e.power_w, e.idle_power_w),
        )
    if here is not None and here.failures:
        _failed("the run", here.failures)
    return found, notes


def _failed(what: str, failures: list) -> None:
    """Say that power reads failed (they count for nothing), and what the first printed."""
    log.warning("energy of %s: %d power reads failed, e.g. %s", what, len(failures), failures[0][1])


def _timed(results: Mapping[str, ModelResult], where: str) -> None:
    """Say each variant just timed (``where``: the device's name or ``host``): its p50 and how
    many images, so a user sees timing move before the results table."""
    for variant, r in results.items():
        times, images = r.times_ms, len(r.labels)
        p50 = latency_stats(times)["p50"] if len(times) >= MIN_TIMES else float("nan")
        passes = len(times) // max(images, 1)
        times_over = f"{images} images x {passes} pass{'' if passes == 1 else 'es'}"
        log.info("timed %s on %s: p50 %.3f ms, %s", variant, where, p50, times_over)


def write_images(
    x: np.ndarray, y: np.ndarray, class_names: list[str], n: int, out_dir: str | Path, *, seed: int
) -> Path:
    """Save ``n`` images drawn from ``x`` (seeded) as ``out_dir/<class>/<i>.png``.

    Also writes ``manifest.json`` fixing their order and labels. Returns ``out_dir``.
    """
    from PIL import Image

    out = Path(out_dir)
    idx = np.random.default_rng(seed).permutation(len(x))[: min(n, len(x))]
    entries = []
    for i, j in enumerate(idx):
        label = int(y[j])
        rel = Path(class_names[label]) / f"{i:05d}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        img = x[j][..., 0] if x.shape[-1] == 1 else x[j]
        Image.fromarray(img).save(out / rel)
        entries.append([str(rel), label])
    (out / "manifest.json").write_text(json.dumps({"classes": class_names, "images": entries}))
    return out


LATENCY_COLUMNS = (
    "variant",
    "pass",  # 0, 1 ... (repeats); -1: a warm-up image
    "index",
    "image",
    "label",
    "prediction",
    "latency_ms",  # the paper's per-image time: decode_ms + invoke_ms + the class
    "decode_ms",  # read + decode + preprocess
    "invoke_ms",  # set_tensor + invoke + get_tensor
    "first",  # 1: the first timed image, reported apart
)


def write_latency_csv(
    results: Mapping[str, ModelResult], images: list[str], path: str | Path
) -> Path:
    """One row per (variant, pass, image): the per-image table behind every statistic."""
    path = Path(path)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LATENCY_COLUMNS)
        for variant, r in results.items():
            n = len(r.labels)
            for i, t in enumerate(r.warmup_ms):
                w.writerow([variant, -1, i % n, images[i % n], r.labels[i % n], "", f"{t:.6f}"])
            for i, t in enumerate(r.times_ms):
                w.writerow(
                    [
                        variant,
                        i // n,
                        i % n,
                        images[i % n],
                        r.labels[i % n],
                        r.predictions[i],
                        f"{t:.6f}",
                        f"{r.decode_ms[i]:.6f}",
                        f"{r.invoke_ms[i]:.6f}",
                        int(i == 0),
                    ]
                )
    return path
