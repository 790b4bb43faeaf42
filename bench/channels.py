"""Issue #17's figures: channel pruning (prune.channels) against unstructured pruning.

Every latency is the device runner's per-image ``invoke`` p50 (set_tensor + invoke + get_tensor)
on this machine (device=local's code path, each model in a fresh process, XNNPACK, 1 thread),
the compared models alternating ROUNDS times; ratios are of the medians over rounds.

1. ``defaults``: digits + cnn, the default budget, channels 0.5 and 0.75 alone (sparsity 0):
   validation accuracy for each criterion (l1, l2; the cnn has no BatchNorm, so bn is l1 there) x
   distribution (uniform, global) x schedule (oneshot, gradual).
2. ``digits``: the default config (sparsity 0.5) at channels 0 and 0.5: accuracy, MACs,
   tflite_fp32 and tflite_int8 invoke p50.
3. ``curve``: digits + cnn, channels 0 / 0.25 / 0.5 / 0.75 (sparsity 0) against sparsity
   0.25 / 0.5 / 0.75 / 0.9 (channels 0): accuracy, MACs, tflite_fp32 invoke p50.
4. ``speed``: weights=null at 96x96 (latency does not depend on the weights' values), one-shot
   channel removal (no fine-tuning): MobileNetV2 at channels 0 / 0.25 / 0.5 / 0.75, ResNet50 and
   VGG16 at 0 / 0.3 / 0.5; tflite_fp32 and tflite_int8.

Writes bench/results/channels.json.     python bench/channels.py [ROUNDS] [PART ...]
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import statistics
import time
from pathlib import Path

import numpy as np
from parts import run_parts

import pruneflow  # noqa: F401 - sets the Keras environment first

VARIANTS = ["tflite_fp32", "tflite_int8"]
DELEGATE = {"name": "xnnpack", "threads": 1, "fallback": "builtin", "library": None, "options": {}}


def compose_default(overrides=()):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from pruneflow.config import check, register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="pruneflow.conf", version_base="1.3"):
        return check(compose(config_name="config", overrides=list(overrides)))


def timed(paths: dict[str, Path], images: Path, rounds: int, tmp: Path) -> dict[str, float]:
    """{name: median over rounds of the runner's invoke p50 in ms}, alternating the order."""
    from pruneflow.devices.base import open_device
    from pruneflow.devices.config import LocalDeviceConfig

    names = list(paths)
    p50 = {n: [] for n in names}
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            with open_device(LocalDeviceConfig()) as dev:
                doc = dev.benchmark([paths[name]], images, tmp / "r.json", DELEGATE)
            (r,) = doc.results.values()
            p50[name].append(statistics.median(r.invoke_ms[1:]))
    return {n: statistics.median(v) for n, v in p50.items()}


class Digits:
    """The default config's data and baseline, and pruned variants of it."""

    def __init__(self, tmp: Path):
        from pruneflow.config import instantiate
        from pruneflow.identity import without_targets
        from pruneflow.steps.benchmark.benchmark import write_images
        from pruneflow.steps.train.train import train_baseline

        self.tmp = tmp
        self.config = c = compose_default()
        self.data = d = instantiate(c.dataset)
        self.baseline = train_baseline(
            d,
            lambda: instantiate(c.backbone, d.image_shape, d.num_classes),
            c.train,
            seed=c.seed,
            cache_dir=tmp / "cache",
            key_spec=without_targets({"bench": "channels", "data": d.fingerprint()}),
        )
        self.images = write_images(d.x_val, d.y_val, d.class_names, 100, tmp / "img", seed=0)

    def prune(self, name: str, variants=VARIANTS, **keys) -> dict:
        from pruneflow.results import KERAS
        from pruneflow.steps.convert.convert import export_models
        from pruneflow.steps.evaluate import evaluate
        from pruneflow.steps.prune.prune import prune_model

        c = self.config
        t0 = time.perf_counter()
        p = prune_model(
            self.baseline.model_path,
            self.data,
            dataclasses.replace(c.prune, **keys),
            batch_size=c.train.batch_size,
            seed=c.seed,
        )
        sample = self.data.train_sample(c.stage.representative_samples, seed=c.seed)
        paths = export_models(p.model, variants, self.tmp / name, sample)
        models = {v: q for v, q in paths.items() if v != KERAS}
        acc = evaluate({KERAS: p.model, **models}, self.data.x_val, self.data.y_val)
        return {
            "keys": keys,
            "accuracy": acc,
            "baseline_accuracy": self.baseline.accuracy,
            "channels": p.channels,
            "sparsity": p.sparsity,
            "macs": p.macs,
            "baseline_macs": p.baseline_macs,
            "prune_s": time.perf_counter() - t0,
            "paths": {v: str(q) for v, q in models.items()},
        }


def part_defaults(tmp: Path, rounds: int) -> dict:
    digits = Digits(tmp)
    out = {}
    for level, criterion, distribution, schedule in itertools.product(
        (0.5, 0.75), ("l1", "l2"), ("uniform", "global"), ("oneshot", "gradual")
    ):
        name = f"c{level}/{criterion}/{distribution}/{schedule}"
        r = digits.prune(
            name.replace("/", "_"),
            variants=[],
            sparsity=0.0,
            channels=level,
            channel_criterion=criterion,
            channel_distribution=distribution,
            channel_schedule=schedule,
        )
        out[name] = {k: r[k] for k in ("accuracy", "baseline_accuracy", "macs", "channels")}
        print(name, json.dumps(out[name]), flush=True)
    return out


def part_digits(tmp: Path, rounds: int) -> dict:
    digits = Digits(tmp)
    runs = {c: digits.prune(f"c{c}", channels=c) for c in (0.0, 0.5)}
    paths = {f"{v} c{c}": Path(r["paths"][v]) for c, r in runs.items() for v in VARIANTS}
    p50 = timed(paths, digits.images, rounds, tmp)
    thin = runs[0.5]
    out = {
        "runs": {str(c): {k: v for k, v in r.items() if k != "paths"} for c, r in runs.items()},
        "invoke_p50_ms": p50,
        "macs_over_baseline": thin["macs"] / thin["baseline_macs"],
        "accuracy_minus_baseline": {
            v: thin["accuracy"][v] - thin["baseline_accuracy"] for v in thin["accuracy"]
        },
        **{f"{v}_invoke_ratio": p50[f"{v} c0.5"] / p50[f"{v} c0.0"] for v in VARIANTS},
    }
    print(json.dumps(out, indent=1), flush=True)
    return out


def part_curve(tmp: Path, rounds: int) -> dict:
    digits = Digits(tmp)
    runs = {
        f"c{c}": digits.prune(f"c{c}", ["tflite_fp32"], channels=c, sparsity=0.0)
        for c in (0.0, 0.25, 0.5, 0.75)
    }
    runs |= {
        f"s{s}": digits.prune(f"s{s}", ["tflite_fp32"], sparsity=s) for s in (0.25, 0.5, 0.75, 0.9)
    }
    p50 = timed(
        {n: Path(r["paths"]["tflite_fp32"]) for n, r in runs.items()}, digits.images, rounds, tmp
    )
    out = {
        n: {
            "accuracy": r["accuracy"]["tflite_fp32"],
            "macs": r["macs"],
            "invoke_p50_ms": p50[n],
            "invoke_over_dense": p50[n] / p50["c0.0"],
        }
        for n, r in runs.items()
    }
    for n, r in out.items():
        print(n, json.dumps(r), flush=True)
    return out


SPEED = {
    "mobilenetv2": (0.0, 0.25, 0.5, 0.75),
    "resnet50": (0.0, 0.3, 0.5),
    "vgg16": (0.0, 0.3, 0.5),
}


def part_speed(tmp: Path, rounds: int) -> dict:
    from pruneflow.steps.benchmark.benchmark import write_images
    from pruneflow.steps.convert.convert import export_models
    from pruneflow.steps.model.build import build_transfer
    from pruneflow.steps.model.config import TransferConfig
    from pruneflow.steps.model.measure import macs
    from pruneflow.steps.prune import channels
    from pruneflow.steps.prune.config import PruneConfig

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(50, 96, 96, 3), dtype=np.uint8)
    images = write_images(x, rng.integers(0, 5, 50), list("abcde"), 50, tmp / "img96", seed=0)
    out = {}
    for arch, levels in SPEED.items():
        paths, cost = {}, {}
        for c in levels:
            model = build_transfer(TransferConfig(arch=arch, weights=None), (96, 96, 3), 5)
            if c:
                model = channels.rebuild(model, channels.plan(model, c, PruneConfig(channels=c)))
            cost[c] = macs(model)
            made = export_models(model, VARIANTS, tmp / f"{arch}{c}", x[:8].astype("float32"))
            paths |= {f"{v} c{c}": made[v] for v in VARIANTS}
        p50 = timed(paths, images, rounds, tmp)
        out[arch] = {
            f"c{c}": {
                "macs": cost[c],
                "macs_ratio": cost[c] / cost[0.0],
                **{f"{v}_invoke_p50_ms": p50[f"{v} c{c}"] for v in VARIANTS},
                **{f"{v}_ratio": p50[f"{v} c{c}"] / p50[f"{v} c0.0"] for v in VARIANTS},
            }
            for c in levels
        }
        print(arch, json.dumps(out[arch], indent=1), flush=True)
    return out


PARTS = {"defaults": part_defaults, "digits": part_digits, "curve": part_curve, "speed": part_speed}


def main() -> None:
    run_parts("channels", PARTS, rounds=3)


if __name__ == "__main__":
    main()
