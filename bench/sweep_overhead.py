"""Issue #2's speed figure: the pruneflow sweep against a plain tfmot script doing the same work
(and, issue #8, against a naive script that trains the baseline again for every sparsity).

Runs, alternating, `bench/plain_tfmot.py` and `python -m pruneflow -m prune.sparsity=0.25,0.5,0.9`
(defaults: 12 baseline epochs, 3 fine-tune epochs, 4 TFLite variants, 100 timed images), each
from a cold start with an empty baseline cache, ROUNDS times, and reports the ratio of their
wall times and where pruneflow's extra time goes (its `time/<stage>_s` metrics read back from
MLflow; the rest is start-up, Hydra, and MLflow logging). Writes bench/results/sweep_overhead.json.

    python bench/sweep_overhead.py [ROUNDS] [OLD_CHECKOUT]

With OLD_CHECKOUT (e.g. `git worktree add /tmp/old <commit>`), that version of pruneflow runs
the same sweep in the same rounds (`python -m pruneflow` with PYTHONPATH=OLD_CHECKOUT), so a
change's cost is a ratio measured side by side, not against a figure from another day.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweeps import clean_env, read_runs, run_pruneflow

HERE = Path(__file__).resolve().parent
SPARSITIES = ["0.25", "0.5", "0.9"]
STAGES = ["data", "train", "prune", "convert", "evaluate", "benchmark"]


def run_plain(work: Path, naive: bool = False) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "plain_tfmot.py"),
            *(["--naive"] if naive else []),
            *SPARSITIES,
        ],
        cwd=work,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]


def run_flow(work: Path, old: str | None = None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    if old is None:
        run_pruneflow(work, "-m", f"prune.sparsity={','.join(SPARSITIES)}")
    else:
        subprocess.run(
            [sys.executable, "-m", "pruneflow", "-m", f"prune.sparsity={','.join(SPARSITIES)}"],
            cwd=work,
            env={**clean_env(), "PYTHONPATH": old},
            capture_output=True,
            check=True,
        )
    wall = time.perf_counter() - t0
    runs = read_runs(work)
    assert len(runs) == len(SPARSITIES) and all(r.info.status == "FINISHED" for r in runs)
    stages = {s: sum(r.data.metrics[f"time/{s}_s"] for r in runs) for s in STAGES}
    stages["in runs, untimed (MLflow logging, artifact copies)"] = sum(
        (r.info.end_time - r.info.start_time) / 1e3 for r in runs
    ) - sum(stages.values())
    return wall, stages


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    old = sys.argv[2] if len(sys.argv) > 2 else None
    plain, flow, previous, naive = [], [], [], []
    contenders = [
        ("plain", run_plain, plain),
        ("pruneflow", run_flow, flow),
        ("naive", lambda work: run_plain(work, naive=True), naive),
    ]
    if old:
        contenders.append(("previous", lambda work: run_flow(work, old), previous))
    for i in range(rounds):
        for name, fn, sink in contenders:
            with tempfile.TemporaryDirectory() as tmp:
                wall, stages = fn(Path(tmp))
            sink.append((wall, stages))
            print(f"round {i + 1} {name:<10} {wall:6.1f} s", flush=True)
    p_wall = statistics.median(w for w, _ in plain)
    f_wall = statistics.median(w for w, _ in flow)
    # per-stage medians; what no stage timer covers is start-up (imports, Hydra, store set-up)
    f_stages = {k: statistics.median(s[k] for _, s in flow) for k in flow[0][1]}
    p_stages = {k: statistics.median(s.get(k, 0.0) for _, s in plain) for k in plain[0][1]}
    f_stages["outside runs (imports, Hydra, MLflow store set-up)"] = f_wall - sum(f_stages.values())
    p_stages["outside stages (process start)"] = p_wall - sum(p_stages.values())
    n_wall = statistics.median(w for w, _ in naive)
    result = {
        "rounds": rounds,
        "naive_wall_s": n_wall,
        "ratio_to_naive": f_wall / n_wall,
        "plain_wall_s": p_wall,
        "pruneflow_wall_s": f_wall,
        "ratio": f_wall / p_wall,
        "pruneflow_stages_s": f_stages,
        "plain_stages_s": p_stages,
        "all_walls": {
            "plain": [w for w, _ in plain],
            "pruneflow": [w for w, _ in flow],
            "naive": [w for w, _ in naive],
        },
    }
    if previous:
        o_wall = statistics.median(w for w, _ in previous)
        result.update(previous_wall_s=o_wall, previous_ratio=o_wall / p_wall)
        result["all_walls"]["previous"] = [w for w, _ in previous]
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "sweep_overhead.json").write_text(json.dumps(result, indent=2))
    print(
        f"\nplain tfmot script {p_wall:.1f} s, pruneflow sweep {f_wall:.1f} s: "
        f"ratio {f_wall / p_wall:.2f} (median of {rounds}); naive script (a baseline per "
        f"sparsity) {n_wall:.1f} s: pruneflow / naive {f_wall / n_wall:.2f}"
    )
    if previous:
        print(
            f"previous version {result['previous_wall_s']:.1f} s: ratio "
            f"{result['previous_ratio']:.2f}; this version / previous "
            f"{f_wall / result['previous_wall_s']:.2f}"
        )
    print(f"{'stage':<55}{'plain s':>9}{'pruneflow s':>12}")
    for k in sorted(set(f_stages) | set(p_stages), key=lambda k: (k not in STAGES, k)):
        print(f"{k:<55}{p_stages.get(k, float('nan')):>9.2f}{f_stages.get(k, float('nan')):>12.2f}")


if __name__ == "__main__":
    main()
