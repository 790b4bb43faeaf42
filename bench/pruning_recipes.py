"""Issue #11's figures: pruning recipes against today's uniform one on digits + cnn, S = 0.5-0.99.

Every recipe is one pruneflow sweep over the same sparsities in one folder, so all share one
baseline (12 epochs) and every job fine-tunes for the default 3 epochs; `stage=int8` builds the
float32 and int8 files. Accuracy is on the whole validation split (540 images). Writes
bench/results/pruning_recipes.json and prints a table per recipe.

    python bench/pruning_recipes.py [RECIPE ...]   # distribution/ramp/lr, e.g. erk/0.5/cosine
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from sweeps import read_runs, run_pruneflow

HERE = Path(__file__).resolve().parent
SPARSITIES = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]
TODAY = "uniform/1.0/constant"  # the paper's method with the ramp ending on the last step
CANDIDATES = [
    TODAY,
    "uniform/0.5/cosine",
    "erk/0.5/cosine",
    "erk/0.75/cosine",
    "global/0.5/cosine",
    "global/0.75/cosine",
]


def main() -> None:
    recipes = sys.argv[1:] or CANDIDATES
    table: dict[str, dict[float, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_pruneflow(work, "prune.sparsity=0", "stage=int8")  # the shared baseline, dense
        for recipe in recipes:
            distribution, ramp, lr = recipe.split("/")
            t0 = time.perf_counter()
            run_pruneflow(
                work,
                "-m",
                f"prune.sparsity={','.join(map(str, SPARSITIES))}",
                f"prune.distribution={distribution}",
                f"prune.ramp_fraction={ramp}",
                f"prune.lr_schedule={lr}",
                "stage=int8",
                f"tracking.run_name={recipe}-s${{prune.sparsity}}",
            )
            print(f"{recipe}: {time.perf_counter() - t0:.0f} s", flush=True)
        runs = read_runs(work)
    dense = next(r for r in runs if r.info.run_name == "digits-cnn-s0")
    baseline = dense.data.metrics["baseline/accuracy"]
    dense_gz = dense.data.metrics["tflite_fp32/gzip_bytes"]
    for r in runs:
        if "-s" not in r.info.run_name or r is dense:
            continue
        recipe, s = r.info.run_name.rsplit("-s", 1)
        m = r.data.metrics
        table.setdefault(recipe, {})[float(s)] = {
            "measured": m["sparsity"],
            "fp32": m["tflite_fp32/accuracy"],
            "int8": m["tflite_int8/accuracy"],
            "fp32_gz_kb": m["tflite_fp32/gzip_bytes"] / 1024,
            "int8_gz_kb": m["tflite_int8/gzip_bytes"] / 1024,
            "int8_gz_vs_dense_fp32": m["tflite_int8/gzip_bytes"] / dense_gz,
        }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    result = {"baseline": baseline, "dense_fp32_gz_kb": dense_gz / 1024, "recipes": table}
    (out / "pruning_recipes.json").write_text(json.dumps(result, indent=2))
    print(f"\nbaseline accuracy {baseline:.4f}; dense fp32 gzip {dense_gz / 1024:.1f} KB")
    for recipe, rows in table.items():
        print(
            f"\n{recipe}\n{'S':>5}{'measured':>9}{'fp32':>8}{'delta':>8}{'int8':>8}"
            f"{'int8-fp32':>10}{'int8 gz KB':>11}"
        )
        for s in sorted(rows):
            v = rows[s]
            print(
                f"{s:>5}{v['measured']:>9.4f}{v['fp32']:>8.4f}{(v['fp32'] - baseline) * 100:>+8.2f}"
                f"{v['int8']:>8.4f}{(v['int8'] - v['fp32']) * 100:>+10.2f}{v['int8_gz_kb']:>11.1f}"
            )


if __name__ == "__main__":
    main()
