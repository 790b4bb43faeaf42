"""Issue #10's figures: what the device runner costs, what decoding costs, threads, Keras vs TFLite.

On this machine (the device runner through ``device=local``'s code path, each model in its own
process, XNNPACK), alternating the compared runs ROUNDS times and reporting ratios of medians:

1. Harness overhead: the runner's per-image ``invoke`` p50 (set_tensor + invoke + get_tensor)
   against a bare LiteRT loop timing only that on the same model, same images, same threads and
   kernels, in a fresh process: with each image decoded just before its invoke, as the runner
   does (the harness's own cost; target: within 5%), and with every image decoded ahead (a
   tight loop, benchmark_model's way); their ratio is what interleaving decode costs invoke.
2. The share of the paper's per-image time (file to class) that is image decoding (read, decode,
   preprocess): digits CNN 28x28x1 and MobileNetV2 96x96x3, fp32 and int8.
3. Threads 2 / 1 for MobileNetV2 96x96, fp32 and int8.
4. Keras (TensorFlow, the runner's Keras path) / TFLite per-image p50 on the same device, digits
   CNN: the paper's Table 6 / Table 7 ratio (theirs: 114 ms / 3.7 ms on a Pi 4).

Models have random weights (latency and size do not depend on the weights' values); images are
100 real digits and 100 random 96x96 RGB images saved as PNG files.
Writes bench/results/device_protocol.json.      python bench/device_protocol.py [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import pruneflow  # noqa: F401 - sets the Keras environment first

HERE = Path(__file__).resolve().parent
IMAGES = 100

# A bare LiteRT loop timing only set_tensor + invoke + get_tensor, image by image, with the
# runner's interpreter options. "tight": every image decoded ahead (benchmark_model's way);
# "interleaved": each image decoded just before its (untimed) invoke, as the paper's protocol
# does, so the caches hold what decoding left there.
BARE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import device_runner as r
from ai_edge_litert import interpreter as lite
model, images, threads, out, mode = sys.argv[2:7]
threads = int(threads)
interp = lite.Interpreter(model_path=model, num_threads=threads)
interp.allocate_tensors()
inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
_, h, w, c = (int(d) for d in inp["shape"])
paths = [p for p, _ in r.read_images(images)[1]]
decode = lambda p: r.to_input(r.load_image(p, h, w, c), inp)
xs = [decode(p) for p in paths] if mode == "tight" else paths
times = []
for x in xs:
    if mode != "tight":
        x = decode(x)
    t0 = time.perf_counter()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    interp.get_tensor(outp["index"])
    times.append((time.perf_counter() - t0) * 1e3)
json.dump(times, open(out, "w"))
"""


def runner(models: list[Path], images: Path, out: Path, threads: int, keras: Path | None = None):
    """The device runner as a device runs it: ``python3 device_runner.py ...``."""
    from pruneflow.devices.base import RUNNER

    delegate = json.dumps({"name": "xnnpack", "threads": threads})
    cmd = [sys.executable, str(RUNNER), "--images", str(images), "--out", str(out)]
    cmd += ["--delegate", delegate, *(["--keras", str(keras)] if keras else [])]
    subprocess.run([*cmd, *map(str, models)], check=True)
    return json.loads(out.read_text())["results"]


def bare(model: Path, images: Path, out: Path, threads: int, mode: str) -> list[float]:
    from pruneflow.devices.base import RUNNER

    cmd = [sys.executable, "-c", BARE, str(RUNNER.parent), str(model), str(images)]
    subprocess.run([*cmd, str(threads), str(out), mode], check=True)
    return json.loads(out.read_text())


def p50(times: list[float]) -> float:
    return statistics.median(times[1:])  # the first image apart, as everywhere


def main() -> None:
    from pruneflow.steps.benchmark.benchmark import write_images
    from pruneflow.steps.convert.convert import export_models
    from pruneflow.steps.data.config import DigitsConfig
    from pruneflow.steps.data.loaders import load_digits
    from pruneflow.steps.model.build import build_cnn, build_transfer
    from pruneflow.steps.model.config import CNNConfig, TransferConfig

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rng = np.random.default_rng(0)
    digits = load_digits(DigitsConfig(image_size=28, seed=0))
    rgb = rng.integers(0, 256, size=(IMAGES, 96, 96, 3), dtype=np.uint8)
    nets = {
        "digits_cnn": (
            build_cnn(CNNConfig(), (28, 28, 1), 10),
            digits.x_val,
            digits.y_val,
            digits.class_names,
        ),
        "mobilenetv2_96": (
            build_transfer(TransferConfig(arch="mobilenetv2", weights=None), (96, 96, 3), 5),
            rgb,
            rng.integers(0, 5, size=IMAGES),
            [str(i) for i in range(5)],
        ),
    }
    variants = ("tflite_fp32", "tflite_int8")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths, folders = {}, {}
        for name, (model, x, y, classes) in nets.items():
            paths[name] = export_models(model, list(variants), tmp / name / "models", x[:100])
            folders[name] = write_images(x, y, classes, IMAGES, tmp / name / "images", seed=0)
        overhead = {f"{n}/{v}": [] for n in nets for v in variants}
        over_tight = {f"{n}/{v}": [] for n in nets for v in variants}
        cache_effect = {f"{n}/{v}": [] for n in nets for v in variants}
        decode_share = {f"{n}/{v}": [] for n in nets for v in variants}
        threads = {f"mobilenetv2_96/{v}/{t}": [] for v in variants for t in (1, 2)}
        keras_vs = {v: [] for v in variants}
        for i in range(rounds):
            for name in nets:
                for variant in variants:
                    model, key = paths[name][variant], f"{name}/{variant}"
                    kinds = ["runner", "interleaved", "tight"]
                    got = {}
                    for kind in kinds if i % 2 == 0 else kinds[::-1]:
                        if kind == "runner":
                            r = runner([model], folders[name], tmp / "r.json", 1)[variant]
                            got[kind] = p50(r["invoke_ms"])
                            decode_share[key].append(p50(r["decode_ms"]) / p50(r["times_ms"]))
                        else:
                            times = bare(model, folders[name], tmp / "b.json", 1, kind)
                            got[kind] = p50(times)
                    overhead[key].append(got["runner"] / got["interleaved"])
                    over_tight[key].append(got["runner"] / got["tight"])
                    cache_effect[key].append(got["interleaved"] / got["tight"])
            for variant in variants:  # threads, alternating the order
                for t in (1, 2) if i % 2 == 0 else (2, 1):
                    model = paths["mobilenetv2_96"][variant]
                    r = runner([model], folders["mobilenetv2_96"], tmp / "t.json", t)[variant]
                    threads[f"mobilenetv2_96/{variant}/{t}"].append(p50(r["times_ms"]))
            cnn = paths["digits_cnn"]
            r = runner(
                [cnn[v] for v in variants], folders["digits_cnn"], tmp / "k.json", 1, cnn["keras"]
            )
            for variant in variants:
                keras_vs[variant].append(p50(r["keras"]["times_ms"]) / p50(r[variant]["times_ms"]))
            print(
                f"round {i + 1}: overhead "
                + ", ".join(f"{k} {v[-1]:.3f}" for k, v in overhead.items())
                + f"; keras/fp32 {keras_vs['tflite_fp32'][-1]:.1f}",
                flush=True,
            )
    med = statistics.median
    result = {
        "rounds": rounds,
        "images": IMAGES,
        "runner_invoke_over_bare_loop_interleaved": {k: med(v) for k, v in overhead.items()},
        "runner_invoke_over_bare_loop_tight": {k: med(v) for k, v in over_tight.items()},
        "bare_interleaved_over_tight": {k: med(v) for k, v in cache_effect.items()},
        "decode_share_of_the_paper_time": {k: med(v) for k, v in decode_share.items()},
        "mobilenetv2_96_p50_ms": {k: med(v) for k, v in threads.items()},
        "mobilenetv2_96_threads2_over_threads1": {
            v: med(
                a / b
                for a, b in zip(
                    threads[f"mobilenetv2_96/{v}/2"], threads[f"mobilenetv2_96/{v}/1"], strict=True
                )
            )
            for v in variants
        },
        "digits_cnn_keras_over_tflite_p50": {v: med(x) for v, x in keras_vs.items()},
        "cpu": _cpu(),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "device_protocol.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _cpu() -> str:
    from pruneflow.devices.runner import device_facts

    f = device_facts()
    return f"{f['cpu']} ({f['cores']} cores)"


if __name__ == "__main__":
    main()
