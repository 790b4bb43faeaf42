"""Issue #11's speed figure: tflite_fp32_sparse against tflite_fp32 on MobileNetV2's 1x1 convs.

MobileNetV2 at 96x96 (weights=null: latency does not depend on the weights' values), every 1x1
convolution (the preset conf/experiment/mobilenetv2_sparse_1x1.yaml: Conv2D layers but the first)
pruned by magnitude to S, converted to tflite_fp32 and tflite_fp32_sparse
(Optimize.EXPERIMENTAL_SPARSITY), each timed by the device runner on this machine (100 image
files, XNNPACK, 1 thread), alternating ROUNDS times. Reports per-image p50 ratios and sizes, and
which kernels ran. x86 here: XNNPACK's sparse kernels target ARM (NEON); a Pi was not measured.

    python bench/sparse_fp32.py [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

import pruneflow  # noqa: F401 - sets the Keras environment first

HERE = Path(__file__).resolve().parent
SPARSITIES = [0.7, 0.8, 0.9]
VARIANTS = ["tflite_fp32", "tflite_fp32_sparse"]


def prune_1x1(model, sparsity: float) -> int:
    """Zero the smallest-magnitude ``sparsity`` of each 1x1 convolution's kernel (one-shot
    magnitude pruning: the zero pattern, not the fine-tuned values, decides latency)."""
    from pruneflow.steps.prune.prune import leaf_layers

    count = 0
    for layer in leaf_layers(model):
        if type(layer).__name__ == "Conv2D" and layer.kernel.shape[:2] == (1, 1):
            kernel, *rest = layer.get_weights()
            k = int(round(sparsity * kernel.size))
            threshold = np.partition(np.abs(kernel).ravel(), k - 1)[k - 1]
            layer.set_weights([np.where(np.abs(kernel) <= threshold, 0.0, kernel), *rest])
            count += 1
    return count


def main() -> None:
    from pruneflow.devices.base import open_device
    from pruneflow.devices.config import LocalDeviceConfig
    from pruneflow.steps.benchmark.benchmark import write_images
    from pruneflow.steps.convert.convert import describe, export_models
    from pruneflow.steps.model.build import build_transfer
    from pruneflow.steps.model.config import TransferConfig

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(100, 96, 96, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, size=100)
    result = {"rounds": rounds, "sparsities": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = write_images(
            images, labels, [str(i) for i in range(5)], 100, tmp / "images", seed=0
        )
        for s in SPARSITIES:
            model = build_transfer(TransferConfig(arch="mobilenetv2", weights=None), (96, 96, 3), 5)
            layers = prune_1x1(model, s)
            paths = export_models(model, VARIANTS, tmp / f"s{s}", images[:8])
            files = describe(paths)
            p50 = {v: [] for v in VARIANTS}
            kernels = {}
            for i in range(rounds):
                for variant in VARIANTS if i % 2 == 0 else VARIANTS[::-1]:
                    with open_device(LocalDeviceConfig()) as dev:
                        doc = dev.benchmark(
                            [paths[variant]], folder, tmp / "r.json", {"name": "xnnpack"}
                        )
                    r = doc.results[variant]
                    p50[variant].append(statistics.median(r.times_ms[1:]))
                    kernels[variant] = r.kernels + (f" ({r.note})" if r.note else "")
            med = {v: statistics.median(p50[v]) for v in VARIANTS}
            row = {
                "pruned_1x1_layers": layers,
                "p50_ms": med,
                "sparse_over_dense_p50": med["tflite_fp32_sparse"] / med["tflite_fp32"],
                "size_bytes": {v: files[v].size_bytes for v in VARIANTS},
                "gzip_bytes": {v: files[v].gzip_bytes for v in VARIANTS},
                "file_sparsity": {v: files[v].sparsity for v in VARIANTS},
                "kernels": kernels,
            }
            result["sparsities"][s] = row
            print(f"S={s}: {json.dumps(row)}", flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "sparse_fp32.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
