"""Issue #20's figures: a multi-objective search against the grid of the same space, both in
one run, on digits + cnn at the default budget, every job by the console script.

1. ``search``: the grid of ``+experiment=search``'s space (sparsity 0.5/0.75/0.9 x channels
   0/0.25/0.5 x clusters 0/16 x distribution uniform/global: 36 jobs) and the search itself
   (``pruneflow -m +experiment=search``: NSGA-II, seeded, 16 trials), each in its own store,
   sharing one baseline cache warmed first (neither trains the baseline). Per side: wall time,
   runs, and the hypervolume of its Pareto front over the three objectives (tflite_int8
   accuracy, invoke p50, gzip bytes), every objective scaled to [0, 1] over the union of both
   sides' trials (0 the best value seen, 1 the worst), with reference point 1.1 in each.
   Then the finished search run again: its wall time and the runs it added.

Writes bench/results/search.json.     python bench/search.py [ROUNDS(unused)] [PART ...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from parts import run_parts

PRUNEFLOW = str(Path(sys.executable).parent / "pruneflow")
OBJECTIVES = ["tflite_int8/accuracy", "tflite_int8/invoke_p50_ms", "tflite_int8/gzip_bytes"]
SIGNS = [-1.0, 1.0, 1.0]  # as costs: accuracy maximized, the others minimized
GRID = [
    "prune.sparsity=0.5,0.75,0.9",
    "prune.channels=0,0.25,0.5",
    "cluster.clusters=0,16",
    "prune.distribution=uniform,global",
    "stage.variants=[tflite_fp32,tflite_int8]",
]


def pruneflow(*args: str, cwd: Path) -> float:
    """The console script in ``cwd`` (no MLFLOW_ variables); its wall seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    t0 = time.perf_counter()
    proc = subprocess.run([PRUNEFLOW, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"pruneflow {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def points(folder: Path) -> list[list[float]]:
    """Every FINISHED job run's objectives (as costs) in the store in ``folder``."""
    from mlflow.tracking import MlflowClient

    from pruneflow import results

    client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("pruneflow")
    out = []
    for run in client.search_runs([exp.experiment_id], max_results=10000):
        if results.SWEEP_TAG in run.data.tags or run.info.status != "FINISHED":
            continue
        out.append([s * run.data.metrics[o] for s, o in zip(SIGNS, OBJECTIVES, strict=True)])
    return out


def hypervolume(front: list[list[float]], low: list[float], high: list[float]) -> float:
    """The hypervolume of ``front`` (costs) scaled to [0, 1] by ``low``/``high``, reference
    point 1.1 in every objective (optuna's WFG algorithm)."""
    import numpy as np
    from optuna._hypervolume import WFG

    scaled = np.array(
        [[(v - lo) / (hi - lo) for v, lo, hi in zip(p, low, high, strict=True)] for p in front]
    )
    return float(WFG().compute(scaled, np.full(len(low), 1.1)))


def part_search(tmp: Path, rounds: int) -> dict:
    from pruneflow.study.search import front

    cache = f"paths.cache_dir={tmp / 'cache'}"
    (tmp / "warm").mkdir()
    pruneflow("prune.sparsity=0", "stage.variants=[tflite_int8]", cache, cwd=tmp / "warm")
    (tmp / "grid").mkdir()
    (tmp / "search").mkdir()
    grid_s = pruneflow("-m", *GRID, cache, cwd=tmp / "grid")
    search_s = pruneflow("-m", "+experiment=search", cache, cwd=tmp / "search")
    again_s = pruneflow("-m", "+experiment=search", cache, cwd=tmp / "search")
    grid, found = points(tmp / "grid"), points(tmp / "search")
    every = grid + found
    low = [min(p[i] for p in every) for i in range(3)]
    high = [max(p[i] for p in every) for i in range(3)]
    minimize = ["minimize"] * 3
    grid_front = [grid[i] for i in front(grid, minimize)]
    search_front = [found[i] for i in front(found, minimize)]
    hv_grid = hypervolume(grid_front, low, high)
    hv_search = hypervolume(search_front, low, high)
    return {
        "grid": {"jobs": len(grid), "front": len(grid_front), "wall_s": grid_s, "hv": hv_grid},
        "search": {
            "runs": len(found),
            "front": len(search_front),
            "wall_s": search_s,
            "hv": hv_search,
        },
        "hv_ratio": hv_search / hv_grid,
        "wall_ratio": search_s / grid_s,
        "again": {"wall_s": again_s, "runs_after": len(points(tmp / "search"))},
        "search_front": search_front,
        "grid_front": grid_front,
    }


if __name__ == "__main__":
    run_parts("search", {"search": part_search}, 1)
