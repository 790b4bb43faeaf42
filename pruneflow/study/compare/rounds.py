"""The comparison's work: the models prepared (the runs' files fetched, the dense baselines'
variants converted), the interleaved rounds on each group's device, and their summary."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

from pruneflow import results
from pruneflow.study.compare.plan import DEFAULT_SEED, Plan, dense_index
from pruneflow.tracking.runs import store_client


def check_devices(the_plan: Plan) -> None:
    """Each group's device answers and can run its delegate (the pipeline's device check):
    a :class:`~pruneflow.devices.base.DeviceError` naming it, before anything is converted."""
    from pruneflow.devices.base import open_device

    for group in the_plan.groups:
        c = group.config
        open_device(c.device).check(dataclasses.asdict(c.delegate), "off")


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

    client = store_client(the_plan.uri)
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
            configs.setdefault(f"dense{dense_index(group, config)}", (run_id, config))
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
    order (``seed``), by one runner call inside the device's timing lock
    (:meth:`~pruneflow.devices.base.Device.timing_lock`); fills each model's per-round p50
    and returns one row per model and round (:data:`ROUND_COLUMNS`)."""
    import numpy as np

    from pruneflow.devices.base import Protocol, open_device
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
                with dev.timing_lock():
                    doc = dev.benchmark(
                        [m.path for m in order],
                        images[n],
                        work / f"g{n}" / f"round{r}.json",
                        delegate,
                        protocol,
                    )
                for m in order:
                    m.p50_ms.append(latency_stats(doc.results[m.stem].invoke_ms)["p50"])
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
        dense_energy = {}  # a dense stem: the energy of an unpruned run of it that measured
        for m in group.models:
            if m.unpruned and not math.isnan(m.energy[0]):
                dense_energy.setdefault(m.reference, m.energy)
        for m in group.models:
            ref = by_stem[m.reference]
            nan3 = (math.nan, math.nan, math.nan)
            own = dense_energy.get(m.stem, nan3) if m.dense else m.energy
            reference = dense_energy.get(m.reference, nan3)[0]
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
            mj = (results.ENERGY, results.ENERGY_CI_LOW, results.ENERGY_CI_HIGH)
            row.update(zip(mj, own, strict=True))
            row["energy_ratio_to_dense"] = _ratio(own[0], reference)
            out.append(row)
    keys = ("model", "dense", "sparsity", "channels", *the_plan.settings, "variant")
    return sorted(out, key=lambda r: tuple((-r[k] if k == "dense" else str(r[k])) for k in keys))
