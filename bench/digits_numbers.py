"""Issue #2's accuracy and size figures on the embedded default (digits + cnn), default settings.

Runs `python -m pruneflow -m prune.sparsity=0,0.25,...,0.99` (the paper's sparsities plus the
dense model) in a temporary folder, reads every run back from MLflow, prints accuracy and size
per sparsity and variant, and checks the targets:

- baseline validation accuracy >= 0.97;
- at sparsity 0.5, Keras accuracy within 1 point of the baseline;
- tflite_int8 within 1 point of tflite_fp32 (every sparsity up to 0.9);
- at sparsity 0.9, the fp32 gzip size <= 25% of the dense (sparsity 0) one.

Writes bench/results/digits_numbers.json.   python bench/digits_numbers.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from sweeps import PAPER_METHOD, read_runs, run_pruneflow

HERE = Path(__file__).resolve().parent
SPARSITIES = ["0", "0.25", "0.5", "0.6", "0.7", "0.8", "0.9", "0.95", "0.97", "0.99"]
VARIANTS = ["keras", "tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        # the recipe these figures were recorded with (issue #2): the paper's uniform method
        run_pruneflow(tmp, "-m", f"prune.sparsity={','.join(SPARSITIES)}", *PAPER_METHOD)
        by_s = {float(r.data.params["prune.sparsity"]): r.data.metrics for r in read_runs(tmp)}

    rows = {s: by_s[s] for s in sorted(by_s)}
    dense, half, ninety = rows[0.0], rows[0.5], rows[0.9]
    checks = {
        "baseline accuracy >= 0.97": dense["baseline/accuracy"] >= 0.97,
        "keras accuracy at 0.5 within 1 point of baseline": abs(
            half["keras/accuracy"] - half["baseline/accuracy"]
        )
        <= 0.01,
        "tflite_int8 within 1 point of tflite_fp32 (S <= 0.9)": all(
            abs(m["tflite_int8/accuracy"] - m["tflite_fp32/accuracy"]) <= 0.01
            for s, m in rows.items()
            if s <= 0.9
        ),
        "fp32 gzip at 0.9 <= 25% of dense": ninety["tflite_fp32/gzip_bytes"]
        <= 0.25 * dense["tflite_fp32/gzip_bytes"],
    }
    print(f"baseline accuracy {dense['baseline/accuracy']:.4f}")
    print(
        f"{'S':>5} {'measured':>8} "
        + " ".join(f"{v:>15}" for v in VARIANTS)
        + f" {'fp32 KB':>8} {'fp32 gz KB':>10} {'gz/dense':>8} {'int8 gz KB':>10}"
    )
    for s, m in rows.items():
        print(
            f"{s:>5g} {m['sparsity']:>8.4f} "
            + " ".join(f"{m[f'{v}/accuracy']:>15.4f}" for v in VARIANTS)
            + f" {m['tflite_fp32/size_bytes'] / 1024:>8.1f}"
            f" {m['tflite_fp32/gzip_bytes'] / 1024:>10.1f}"
            f" {m['tflite_fp32/gzip_bytes'] / dense['tflite_fp32/gzip_bytes']:>8.2f}"
            f" {m['tflite_int8/gzip_bytes'] / 1024:>10.1f}"
        )
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "digits_numbers.json").write_text(
        json.dumps({"runs": {str(s): m for s, m in rows.items()}, "checks": checks}, indent=2)
    )
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
