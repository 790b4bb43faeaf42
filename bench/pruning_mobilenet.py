"""Issue #11's MobileNetV2 figure: how the target is spread (uniform, erk, global) at S = 0.5
and 0.8 with the same budget, on digits at 96x96 (weights=null: no download here).

One pruneflow sweep in one folder: every job shares one baseline. Accuracy is on the whole
validation split (540 images). Writes bench/results/pruning_mobilenet.json.

    python bench/pruning_mobilenet.py [TRAIN_EPOCHS] [PRUNE_EPOCHS] [BATCH_SIZE]

From scratch on 1257 images, MobileNetV2's BatchNorm statistics need many steps: at batch 32
and 6 epochs (240 steps), and at batch 8 and 12 epochs (1900 steps), the baseline's validation
accuracy stayed at chance while training accuracy reached 0.97; 40 epochs at batch 8 (6300
steps) gave 0.86 at 32x32. Hence the defaults: 40 epochs at batch 8.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from sweeps import read_runs, run_pruneflow

HERE = Path(__file__).resolve().parent


def main() -> None:
    train_epochs = sys.argv[1] if len(sys.argv) > 1 else "40"
    prune_epochs = sys.argv[2] if len(sys.argv) > 2 else "3"
    batch_size = sys.argv[3] if len(sys.argv) > 3 else "8"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_pruneflow(
            Path(tmp),
            "-m",
            "backbone=mobilenetv2",
            "backbone.weights=null",
            "backbone.input_size=96",
            "stage=int8",
            f"train.epochs={train_epochs}",
            f"prune.epochs={prune_epochs}",
            f"train.batch_size={batch_size}",
            "prune.sparsity=0.5,0.8",
            "prune.distribution=uniform,erk,global",
        )
        wall = time.perf_counter() - t0
        for r in read_runs(Path(tmp)):
            m, p = r.data.metrics, r.data.params
            rows.append(
                {
                    "distribution": p["prune.distribution"],
                    "target": float(p["prune.sparsity"]),
                    "measured": m["sparsity"],
                    "baseline": m["baseline/accuracy"],
                    "keras": m["keras/accuracy"],
                    "fp32": m["tflite_fp32/accuracy"],
                    "int8": m["tflite_int8/accuracy"],
                    "fp32_gz_kb": m["tflite_fp32/gzip_bytes"] / 1024,
                }
            )
    rows.sort(key=lambda r: (r["target"], r["distribution"]))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    result = {
        "train_epochs": train_epochs,
        "prune_epochs": prune_epochs,
        "batch_size": batch_size,
        "wall_s": wall,
    }
    (out / "pruning_mobilenet.json").write_text(json.dumps({**result, "rows": rows}, indent=2))
    print(json.dumps(result))
    print(f"{'S':>4} {'distribution':<13}{'measured':>9}{'baseline':>9}{'fp32':>8}{'int8':>8}")
    for r in rows:
        print(
            f"{r['target']:>4} {r['distribution']:<13}{r['measured']:>9.4f}{r['baseline']:>9.4f}"
            f"{r['fp32']:>8.4f}{r['int8']:>8.4f}"
        )


if __name__ == "__main__":
    main()
