"""Issue #8's numbers: a 4-sparsity sweep in parallel against sequential, and a resumed sweep.

1. `pruneflow -m prune.sparsity=0.25,0.5,0.75,0.9` (defaults: 12 baseline epochs, 3 fine-tune
   epochs, 4 TFLite variants, 100 timed images), cold (empty baseline cache, fresh store), run
   sequentially (Hydra's basic launcher), with `hydra/launcher=joblib hydra.launcher.n_jobs=2`,
   and with joblib and one TensorFlow thread per worker (`TF_NUM_INTRAOP_THREADS=1`),
   alternating, ROUNDS times; medians and ratios to sequential. Also how long the one baseline
   took and how long jobs waited for the timing lock (what stays serial).
2. The same command again in the folder of a finished sequential sweep: every job is skipped;
   wall time, and whether TensorFlow was imported at all (`python -X importtime`: its import
   lines would be in the console or the job logs).

    python bench/parallel_sweeps.py [ROUNDS]

Writes bench/results/parallel_sweeps.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweeps import clean_env, read_runs

HERE = Path(__file__).resolve().parent
SWEEP = ["-m", "prune.sparsity=0.25,0.5,0.75,0.9"]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
MODES = {
    "sequential": ([], {}),
    "joblib n_jobs=2": (JOBLIB, {}),
    "joblib n_jobs=2, 1 TF thread each": (JOBLIB, {"TF_NUM_INTRAOP_THREADS": "1"}),
}


def sweep(work: Path, extra: list[str], env: dict[str, str], python_flags=()) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *python_flags, "-m", "pruneflow", *SWEEP, *extra],
        cwd=work,
        env={**clean_env(), **env},
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return wall, proc.stdout + proc.stderr


def facts(work: Path) -> dict:
    runs = read_runs(work)
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    return {
        "misses": sum(r.data.tags["baseline_cache"] == "miss" for r in runs),
        "train_s": max(r.data.metrics["time/train_s"] for r in runs),
        "lock_wait_s": sum(r.data.metrics["device/lock_wait_s"] for r in runs),
        "benchmark_s": sum(r.data.metrics["time/benchmark_s"] for r in runs),
    }


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    walls: dict[str, list[float]] = {m: [] for m in MODES}
    details: dict[str, list[dict]] = {m: [] for m in MODES}
    resume: dict | None = None
    for i in range(rounds):
        for mode, (extra, env) in MODES.items():
            with tempfile.TemporaryDirectory() as tmp:
                wall, _ = sweep(Path(tmp), extra, env)
                walls[mode].append(wall)
                details[mode].append(facts(Path(tmp)))
                print(f"round {i + 1} {mode:<36} {wall:6.1f} s", flush=True)
                if mode == "sequential" and resume is None:
                    wall, out = sweep(Path(tmp), [], {}, ("-X", "importtime"))
                    logs = "".join(p.read_text() for p in Path(tmp).rglob("pruneflow.log"))
                    tf_imported = any(
                        line.rstrip().endswith("| tensorflow") for line in (out + logs).splitlines()
                    )
                    resume = {
                        "wall_s": wall,
                        "skipped": out.count("skipped (finished run"),
                        "tensorflow_imported": tf_imported,
                        "runs_after": len(read_runs(Path(tmp))),
                    }
                    print(f"resume of the finished sweep: {resume}", flush=True)
    seq = statistics.median(walls["sequential"])
    result = {
        "rounds": rounds,
        "median_wall_s": {m: statistics.median(w) for m, w in walls.items()},
        "ratio_to_sequential": {m: statistics.median(w) / seq for m, w in walls.items()},
        "all_walls": walls,
        "details": details,
        "resume": resume,
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "parallel_sweeps.json").write_text(json.dumps(result, indent=2))
    print()
    for m in MODES:
        d = details[m]
        print(
            f"{m:<36} {result['median_wall_s'][m]:6.1f} s  ratio "
            f"{result['ratio_to_sequential'][m]:.2f}  misses {[x['misses'] for x in d]}  "
            f"baseline {statistics.median(x['train_s'] for x in d):.1f} s  lock wait "
            f"{statistics.median(x['lock_wait_s'] for x in d):.1f} s"
        )


if __name__ == "__main__":
    main()
