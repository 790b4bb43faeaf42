"""Issue #3's figures: the cost of the SSH device path, and whether it changes the numbers.

Trains the digits CNN briefly, converts it to the four TFLite variants, writes 100 benchmark
images, starts a private sshd on 127.0.0.1, then alternates ROUNDS times between the local
device and the SSH device (a new Connection each round) running the same runner on the same
files. Reports the remote wall time split into its steps, and per variant the ratio of the
runner's median per-image time remote / local (target 0.9-1.1).
Writes bench/results/remote_overhead.json.      python bench/remote_overhead.py [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pruneflow  # noqa: F401 - sets the Keras environment first

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.sshd import PrivateSSHD  # noqa: E402

HERE = Path(__file__).resolve().parent
DELEGATE = {"name": "xnnpack", "threads": 1, "fallback": "builtin"}


def main() -> None:
    import tf_keras as keras

    from pruneflow.devices.base import open_device
    from pruneflow.devices.config import LocalDeviceConfig
    from pruneflow.steps.benchmark.benchmark import write_images
    from pruneflow.steps.convert.convert import export_models
    from pruneflow.steps.convert.variants import VARIANTS
    from pruneflow.steps.data.config import DigitsConfig
    from pruneflow.steps.data.loaders import load_digits
    from pruneflow.steps.model.build import build_cnn
    from pruneflow.steps.model.config import CNNConfig
    from pruneflow.steps.train.train import fit

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = load_digits(DigitsConfig(seed=42))
        keras.utils.set_random_seed(0)
        model = build_cnn(CNNConfig(), data.image_shape, data.num_classes)
        fit(model, data, epochs=2, batch_size=32, learning_rate=1e-3)
        paths = export_models(model, VARIANTS, tmp / "models", data.train_sample(100))
        models = [paths[v] for v in VARIANTS]
        images = write_images(data.x_val, data.y_val, data.class_names, 100, tmp / "images", seed=0)

        walls = {"local": [], "ssh": []}
        steps: list[dict[str, float]] = []
        medians = {"local": {v: [] for v in VARIANTS}, "ssh": {v: [] for v in VARIANTS}}
        with PrivateSSHD(tmp / "sshd") as sshd:
            for i in range(rounds):
                for kind in ("local", "ssh"):
                    opts = (
                        sshd.device_config(python=sys.executable)
                        if kind == "ssh"
                        else LocalDeviceConfig()
                    )
                    t0 = time.perf_counter()
                    with open_device(opts) as dev:
                        doc = dev.benchmark(models, images, tmp / f"{kind}{i}.json", DELEGATE)
                    walls[kind].append(time.perf_counter() - t0)
                    if kind == "ssh":
                        steps.append(dict(dev.timings))
                    for v in VARIANTS:
                        medians[kind][v].append(statistics.median(doc.results[v].times_ms[1:]))
                print(
                    f"round {i + 1}: local {walls['local'][-1]:.2f} s, "
                    f"ssh {walls['ssh'][-1]:.2f} s",
                    flush=True,
                )

    step_med = {k: statistics.median(s[k] for s in steps) for k in steps[0]}
    ratio = {
        v: statistics.median(medians["ssh"][v]) / statistics.median(medians["local"][v])
        for v in VARIANTS
    }
    result = {
        "rounds": rounds,
        "local_wall_s": statistics.median(walls["local"]),
        "ssh_wall_s": statistics.median(walls["ssh"]),
        "ssh_steps_s": step_med,
        "median_per_image_ms": {
            k: {v: statistics.median(m[v]) for v in VARIANTS} for k, m in medians.items()
        },
        "ratio_remote_over_local": ratio,
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "remote_overhead.json").write_text(json.dumps(result, indent=2))
    print(
        f"\nwall (median of {rounds}): local {result['local_wall_s']:.3f} s, "
        f"ssh {result['ssh_wall_s']:.3f} s"
    )
    for k, v in step_med.items():
        print(f"  ssh {k:<12}{v:8.3f} s")
    print(f"{'variant':<16}{'local p50 ms':>13}{'ssh p50 ms':>12}{'ratio':>7}")
    for v in VARIANTS:
        print(
            f"{v:<16}{result['median_per_image_ms']['local'][v]:>13.4f}"
            f"{result['median_per_image_ms']['ssh'][v]:>12.4f}{ratio[v]:>7.3f}"
        )


if __name__ == "__main__":
    main()
