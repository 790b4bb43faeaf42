"""Issue #4's digits figures: accuracy and gzip size versus sparsity for unstructured and 2:4
pruning, and int8 from post-training quantization (PTQ) against prune-preserving QAT.

Runs, in a temporary folder, two sweeps with the default settings and `stage=qat`
(tflite_fp32, tflite_int8 = PTQ, tflite_int8_qat = PQAT, 4 QAT epochs at 3e-5):
  python -m pruneflow -m stage=qat prune.sparsity=0,0.5,0.8,0.9
  python -m pruneflow -m stage=qat prune.pattern=2:4 prune.sparsity=0.5
and reads every run back from MLflow. Goal: PQAT int8 within 0.5 points of fp32, zeros kept.
Writes bench/results/pruning_quantization.json.     python bench/pruning_quantization.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from sweeps import PAPER_METHOD, read_runs, run_pruneflow

HERE = Path(__file__).resolve().parent
SWEEPS = [
    # the recipe these figures were recorded with (issue #4): the paper's uniform method
    ["stage=qat", "prune.sparsity=0,0.5,0.8,0.9", *PAPER_METHOD],
    ["stage=qat", "prune.pattern=2:4", "prune.sparsity=0.5", *PAPER_METHOD],
]
VARIANTS = ["tflite_fp32", "tflite_int8", "tflite_int8_qat"]


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sweep in SWEEPS:
            run_pruneflow(tmp, "-m", *sweep)
        for r in read_runs(tmp):
            m, p = r.data.metrics, r.data.params
            skip = ("time/", "train/", "val/")
            rows.append(
                {
                    "pattern": p["prune.pattern"],
                    "target": float(p["prune.sparsity"]),
                    **{k: v for k, v in m.items() if not k.startswith(skip)},
                }
            )
    dense_gz = next(r for r in rows if r["target"] == 0)["tflite_fp32/gzip_bytes"]
    print(
        f"{'pattern':<13}{'S':>5}{'measured':>9}{'fp32 acc':>9}{'PTQ acc':>8}{'PQAT acc':>9}"
        f"{'PQAT-fp32':>10}{'fp32 gz KB':>11}{'gz/dense':>9}{'PTQ gz KB':>10}"
        f"{'PQAT gz KB':>11}{'PTQ zeros':>10}{'PQAT zeros':>11}"
    )
    for r in rows:
        gap = (r["tflite_int8_qat/accuracy"] - r["tflite_fp32/accuracy"]) * 100
        r["pqat_minus_fp32_points"] = gap
        print(
            f"{r['pattern']:<13}{r['target']:>5g}{r['sparsity']:>9.4f}"
            f"{r['tflite_fp32/accuracy']:>9.4f}{r['tflite_int8/accuracy']:>8.4f}"
            f"{r['tflite_int8_qat/accuracy']:>9.4f}{gap:>+10.2f}"
            f"{r['tflite_fp32/gzip_bytes'] / 1024:>11.1f}"
            f"{r['tflite_fp32/gzip_bytes'] / dense_gz:>9.2f}"
            f"{r['tflite_int8/gzip_bytes'] / 1024:>10.1f}"
            f"{r['tflite_int8_qat/gzip_bytes'] / 1024:>11.1f}"
            f"{r['tflite_int8/sparsity']:>10.4f}{r['tflite_int8_qat/sparsity']:>11.4f}"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "pruning_quantization.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
