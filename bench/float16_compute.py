"""Issue #29: the float16-arithmetic variant (``tflite_float16_compute``) against
``tflite_fp32`` and ``tflite_float16``: accuracy (with its 95% interval) and file size, from real
runs of the ``pruneflow`` command (``stage=float``: the three float variants of one model):

- digits, the default CNN at its default budget (12 epochs, pruned to 50%);
- MobileNetV2 at 96x96 with random weights (``backbone.weights=null``), trained for 2 epochs on
  digits: its accuracy is low, what counts is how far its variants agree.

Also what ran the variant on this machine (the ``arithmetic/<variant>`` tag, measured by the
runner) and the device's features. Accuracy and size do not depend on timing: the timing pass
uses few images (``benchmark.images=20``).

Writes bench/results/float16_compute.json.     python bench/float16_compute.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from sweeps import read_runs, run_pruneflow

from pruneflow import results as r

VARIANTS = ["tflite_fp32", "tflite_float16", "tflite_float16_compute"]
MODELS = {
    "digits-cnn": [],
    "digits-mobilenetv2-96": [
        "backbone=mobilenetv2",
        "backbone.weights=null",
        "backbone.input_size=96",
        "train.epochs=2",
    ],
}


def one(name: str, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="pruneflow-bench-") as tmp:
        run_pruneflow(tmp, "stage=float", "benchmark.images=20", *overrides)
        (run,) = read_runs(tmp)
    m, tags = run.data.metrics, run.data.tags
    row = {"overrides": overrides}
    for v in VARIANTS:
        row[v] = {
            "accuracy": m[r.metric(v, r.ACCURACY)],
            "ci": [m[r.metric(v, r.ACCURACY_CI_LOW)], m[r.metric(v, r.ACCURACY_CI_HIGH)]],
            "size_bytes": int(m[r.metric(v, r.SIZE)]),
        }
    fp32 = row["tflite_fp32"]["accuracy"]
    row["accuracy_diff_points"] = 100 * (row["tflite_float16_compute"]["accuracy"] - fp32)
    row["size_vs_float16"] = (
        row["tflite_float16_compute"]["size_bytes"] / row["tflite_float16"]["size_bytes"]
    )
    row["arithmetic"] = tags.get(r.arithmetic_tag("tflite_float16_compute"))
    row["device"] = {f: tags.get(r.device_tag(f)) for f in r.DEVICE_FACTS}
    print(name, json.dumps(row), flush=True)
    return row


def main() -> None:
    out = Path(__file__).parent / "results" / "float16_compute.json"
    found = {name: one(name, overrides) for name, overrides in MODELS.items()}
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(found, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
