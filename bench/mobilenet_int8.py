"""Issue #4's MobileNetV2 figure: fp32 against int8 per-image latency and size on this CPU.

MobileNetV2 at 96x96 with weights=null (ImageNet weights need a download; latency and size do
not depend on the weights' values) and a 5-class head, converted to tflite_fp32 and
tflite_int8 (calibrated on 100 random images). Both are timed by the device runner (100 image
files, XNNPACK, 1 thread), alternating ROUNDS times. Reports ratios of medians.
Writes bench/results/mobilenet_int8.json.        python bench/mobilenet_int8.py [ROUNDS]
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


def main() -> None:
    from pruneflow.devices.base import open_device
    from pruneflow.devices.config import LocalDeviceConfig
    from pruneflow.steps.benchmark.benchmark import write_images
    from pruneflow.steps.convert.convert import export_models, file_sizes
    from pruneflow.steps.model.build import build_transfer
    from pruneflow.steps.model.config import TransferConfig

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(100, 96, 96, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, size=100)
    model = build_transfer(TransferConfig(arch="mobilenetv2", weights=None), (96, 96, 3), 5)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = export_models(model, ["tflite_fp32", "tflite_int8"], tmp / "models", images)
        folder = write_images(
            images, labels, [str(i) for i in range(5)], 100, tmp / "images", seed=0
        )
        sizes = {v: file_sizes(paths[v]) for v in ("tflite_fp32", "tflite_int8")}
        p50 = {"tflite_fp32": [], "tflite_int8": []}
        mean = {"tflite_fp32": [], "tflite_int8": []}
        for i in range(rounds):
            for variant in (
                ("tflite_fp32", "tflite_int8") if i % 2 == 0 else ("tflite_int8", "tflite_fp32")
            ):
                with open_device(LocalDeviceConfig()) as dev:
                    doc = dev.benchmark(
                        [paths[variant]], folder, tmp / "r.json", {"name": "xnnpack", "threads": 1}
                    )
                times = doc.results[variant].times_ms[1:]
                p50[variant].append(statistics.median(times))
                mean[variant].append(statistics.fmean(times))
            print(
                f"round {i + 1}: fp32 p50 {p50['tflite_fp32'][-1]:.3f} ms, "
                f"int8 p50 {p50['tflite_int8'][-1]:.3f} ms",
                flush=True,
            )
    med = {v: statistics.median(p50[v]) for v in p50}
    result = {
        "rounds": rounds,
        "p50_ms": med,
        "mean_ms": {v: statistics.median(mean[v]) for v in mean},
        "int8_over_fp32_latency_p50": med["tflite_int8"] / med["tflite_fp32"],
        "fp32_over_int8_speedup_p50": med["tflite_fp32"] / med["tflite_int8"],
        "size_bytes": {v: s[0] for v, s in sizes.items()},
        "gzip_bytes": {v: s[1] for v, s in sizes.items()},
        "int8_over_fp32_size": sizes["tflite_int8"][0] / sizes["tflite_fp32"][0],
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "mobilenet_int8.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
