"""Issue #18's figures: what the evidence changes, and latency compared fairly.

1. ``seeds``: the README's default sweep at three seeds (``pruneflow -m seed=1,2,3
   prune.sparsity=0.25,0.5,0.9``, the default budget, digits + cnn): for each seed (one default
   sweep) the best sparsity per variant by the point rule and by the paired non-inferiority
   rule, the fraction of picks that change, the split's resolution; over the seeds, each
   sparsity's and variant's accuracy mean and 95% t interval (the report's summary.csv).
2. ``compare``: the default sweep (``pruneflow -m prune.sparsity=0.25,0.5,0.9``), then
   ``pruneflow compare --rounds ROUNDS`` three times: each unstructured-pruned variant's invoke
   p50 over the dense baseline's same variant, with its interval, against the same sweep's
   per-job numbers (each job timed alone, minutes apart): the jobs' tflite_fp32 invoke p50
   over the lowest of them (unstructured pruning runs the same kernels, so all would be 1).

Writes bench/results/evidence.json.     python bench/evidence.py [ROUNDS] [PART ...]
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from parts import run_parts

PRUNEFLOW = str(Path(sys.executable).parent / "pruneflow")
SPARSITIES = "prune.sparsity=0.25,0.5,0.9"


def pruneflow(*args: str, cwd: Path) -> str:
    """The console script in ``cwd``, its own store there (without the MLFLOW_ variables that
    reading a store in this process sets: mlflow.set_tracking_uri exports its URI)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run([PRUNEFLOW, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"pruneflow {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def table_of(folder: Path):
    from pruneflow.study.report.selection import rows, select

    uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    return rows(select(uri, "pruneflow"))


def part_seeds(tmp: Path, rounds: int) -> dict:
    from pruneflow.study.report.summary import summary
    from pruneflow.study.report.tables import best_sparsity, resolution

    pruneflow("-m", "seed=1,2,3", SPARSITIES, cwd=tmp)
    table = table_of(tmp)
    picks, changed, total = {}, 0, 0
    for seed, runs in table.groupby("seed"):
        for (_, variant), b in best_sparsity(runs).items():
            point = b.get("point_pick")
            chosen = "none" if b["why"] else f"{b['sparsity']:g}"
            picks[f"seed {seed} {variant}"] = {"point": point, "non_inferior": chosen}
            changed += (point or "none") != chosen
            total += 1
    agg = summary(table)
    over_seeds = {
        f"s{r['target_sparsity']:g} {r['variant']}": {
            k: r[k] for k in ("n_runs", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high")
        }
        for _, r in agg.iterrows()
    }
    return {
        "picks": picks,
        "changed": changed,
        "picks_total": total,
        "resolution": resolution(table),
        "over_seeds": over_seeds,
        "baseline_per_seed": {
            str(s): float(g["baseline_accuracy"].iloc[0]) for s, g in table.groupby("seed")
        },
    }


def part_compare(tmp: Path, rounds: int) -> dict:
    pruneflow("-m", SPARSITIES, cwd=tmp)
    table = table_of(tmp)
    fp32 = table[table["variant"] == "tflite_fp32"]
    jobs = {f"s{r['target_sparsity']:g}": r["invoke_p50_ms"] for _, r in fp32.iterrows()}
    low = min(jobs.values())
    out = {
        "per_job_fp32_invoke_p50_ms": jobs,
        "per_job_over_lowest": {k: v / low for k, v in jobs.items()},
        "invocations": [],
    }
    for i in range(3):
        t0 = time.perf_counter()
        pruneflow("compare", "--rounds", str(rounds), "--out", str(tmp / f"cmp{i}"), cwd=tmp)
        rows = list(csv.DictReader(open(tmp / f"cmp{i}" / "compare.csv")))
        out["invocations"].append(
            {
                "seconds": time.perf_counter() - t0,
                "rows": [
                    {
                        k: r[k]
                        for k in (
                            "sparsity",
                            "variant",
                            "dense",
                            "p50_ms",
                            "ratio_to_dense",
                            "ratio_ci_low",
                            "ratio_ci_high",
                        )
                    }
                    for r in rows
                ],
            }
        )
        print(json.dumps(out["invocations"][-1], indent=1), flush=True)
    return out


PARTS = {"seeds": part_seeds, "compare": part_compare}


def main() -> None:
    run_parts("evidence", PARTS, rounds=5)


if __name__ == "__main__":
    main()
