"""Issue #28's zoo: channel pruning across keras.applications classifiers at 96x96.

For each arch (tf_keras, ``weights=None``: latency does not depend on the weights' values), one
shot at ``prune.channels=0.5`` (no fine-tuning):

- exactness: the thin model's logits against the original's with the same channels masked, on
  inputs in [-1, 1], with BatchNorm statistics and ConvNeXt's layer scales set away from their
  initial values (random weights and 0..255 inputs saturate a softmax: the check would prove
  nothing); relative to the largest logit, wanted <= 1e-5;
- what went: the fraction of prunable output channels (the ``channels`` metric), of all output
  channels (``channels_all``) and of the MACs (``macs_removed``), and why the kept groups stay;
- speed: tflite_fp32 and tflite_int8 per-image invoke p50 at 0.5 as a ratio to 0, the models
  alternating ROUNDS times as ``pruneflow compare`` alternates a sweep's runs (each model in a
  fresh device-runner process, XNNPACK, 1 thread: bench/channels.py's ``timed``); ratios are of
  the medians over rounds. ROUNDS=0: no conversion and no timing.

Writes bench/results/zoo.json.     python bench/zoo.py [ROUNDS] [ARCH ...]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from parts import run_parts
from sweeps import clean_env  # noqa: F401 - puts tests/ on sys.path for helpers

import pruneflow  # noqa: F401 - sets the Keras environment first
from helpers.models import logits_model

SIZE = 96
ARCHS = [
    "mobilenet",
    "mobilenetv3small",
    "mobilenetv3large",
    "efficientnetb0",
    "efficientnetv2b0",
    "densenet121",
    "resnet50v2",
    "regnety002",
    "regnetx002",
    "convnexttiny",
    "nasnetmobile",
]
VARIANTS = ["tflite_fp32", "tflite_int8"]


def _out_channels(model) -> int:
    from pruneflow.steps.model.measure import leaf_layers
    from pruneflow.steps.prune.prune import _has_kernel, out_channels

    return sum(out_channels(la) for la in leaf_layers(model) if _has_kernel(la))


def one(arch: str, tmp: Path, rounds: int) -> dict:
    from channels import timed

    from pruneflow.errors import ArgumentError
    from pruneflow.steps.benchmark.benchmark import write_images
    from pruneflow.steps.convert.convert import export_models
    from pruneflow.steps.model.measure import macs
    from pruneflow.steps.prune import channels
    from pruneflow.steps.prune.config import PruneConfig

    model = logits_model(arch, SIZE, classes=5)
    graph = channels.analyze(model)
    out: dict = {"kept": graph.summary()}
    try:
        plan = channels.plan(model, 0.5, PruneConfig(channels=0.5, channel_criterion="bn"))
    except ArgumentError as exc:  # nothing to remove: the one line a user gets
        return out | {"refused": str(exc)}
    thin, masked = channels.rebuild(model, plan), channels.masked(model, plan)
    x = np.random.default_rng(1).uniform(-1, 1, (4, SIZE, SIZE, 3)).astype("float32")
    want, got = masked(x).numpy(), thin(x).numpy()
    out |= {
        "relative_error": float(np.abs(got - want).max() / np.abs(want).max()),
        "channels": plan.removed_fraction,
        "channels_all": 1 - _out_channels(thin) / _out_channels(model),
        "macs_ratio": macs(thin) / macs(model),
        "macs_removed": 1 - macs(thin) / macs(model),
    }
    if rounds:
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, size=(20, SIZE, SIZE, 3), dtype=np.uint8)
        images = write_images(
            pixels, rng.integers(0, 5, 20), list("abcde"), 20, tmp / "img", seed=0
        )
        paths = {}
        for name, m in (("c0", model), ("c0.5", thin)):
            made = export_models(m, VARIANTS, tmp / name, pixels[:8].astype("float32"))
            paths |= {f"{v} {name}": made[v] for v in VARIANTS}
        p50 = timed(paths, images, rounds, tmp)
        for v in VARIANTS:
            out[f"{v}_p50_ms"] = {c: p50[f"{v} {c}"] for c in ("c0", "c0.5")}
            out[f"{v}_ratio"] = p50[f"{v} c0.5"] / p50[f"{v} c0"]
    return out


def table(result: dict) -> str:
    """The results as docs/models.md's markdown table."""
    rows = [
        "| arch | thin vs masked (relative) | channels | channels_all | MACs after | fp32 p50 "
        "ratio | int8 p50 ratio | kept groups |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arch in ARCHS:
        r = result.get(arch)
        if not r:
            continue
        if "refused" in r:
            rows.append(f"| {arch} | - | 0 | 0 | 1 | - | - | nothing to remove: {r['kept']} |")
            continue
        fp32, int8 = (
            f"{r[k]:.2f}" if k in r else "-" for k in ("tflite_fp32_ratio", "tflite_int8_ratio")
        )
        rows.append(
            f"| {arch} | {r['relative_error']:.1e} | {r['channels']:.2f} | "
            f"{r['channels_all']:.2f} | {r['macs_ratio']:.2f} | {fp32} | {int8} | {r['kept']} |"
        )
    return "\n".join(rows)


def main() -> None:
    import json
    import sys

    from parts import RESULTS

    archs = dict.fromkeys([*ARCHS, *sys.argv[2:]])  # any other arch named on the command line
    run_parts("zoo", {a: (lambda tmp, rounds, a=a: one(a, tmp, rounds)) for a in archs}, rounds=3)
    print(table(json.loads((RESULTS / "zoo.json").read_text())))


if __name__ == "__main__":
    main()
