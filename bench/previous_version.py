"""This version against the previous one, side by side: the default sweep's wall time, and
whether the same config gives the same numbers.

Runs the README's default sweep (`pruneflow -m prune.sparsity=0.25,0.5,0.9`: 12 baseline
epochs, 3 fine-tuning epochs, 4 TFLite variants, 100 timed images) from a cold start (an
empty folder: no baseline cache, no store) with this checkout's pruneflow and with the
previous version's, alternating, ROUNDS times, and compares every job's accuracy, sparsity and
file sizes and job keys between the two (latency is timed, so it is compared only as a ratio).

    python bench/previous_version.py ROUNDS OLD_PYTHON

OLD_PYTHON: the python of a venv with the previous version installed, e.g.
`git worktree add /tmp/old <commit> && python3 -m venv /tmp/old-venv &&
/tmp/old-venv/bin/pip install -e /tmp/old`. Writes bench/results/previous_version.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweeps import clean_env, read_runs, spread

from pruneflow.results import JOB_KEY_TAG

HERE = Path(__file__).resolve().parent
SWEEP = ["-m", "prune.sparsity=0.25,0.5,0.9"]
EXACT = ("accuracy", "size_bytes", "gzip_bytes")
VARIANTS = ("keras", "tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8")


def sweep(python: str, work: Path) -> tuple[float, dict]:
    """Wall seconds of the default sweep by ``python -m pruneflow`` in ``work``, and its jobs'
    numbers by sparsity."""
    t0 = time.perf_counter()
    subprocess.run(
        [python, "-m", "pruneflow", *SWEEP],
        cwd=work,
        env=clean_env(),
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    numbers = {}
    for run in read_runs(work):
        if "prune.sparsity" not in run.data.params:
            continue  # the sweep's parent run
        m = run.data.metrics
        numbers[run.data.params["prune.sparsity"]] = {
            "job_key": run.data.tags[JOB_KEY_TAG],
            "sparsity": m["sparsity"],
            "baseline/accuracy": m["baseline/accuracy"],
            **{f"{v}/{k}": m[f"{v}/{k}"] for v in VARIANTS for k in EXACT},
            **{f"{v}/latency_p50_ms": m[f"{v}/latency_p50_ms"] for v in VARIANTS},
        }
    return wall, numbers


def main() -> None:
    rounds, old = int(sys.argv[1]), sys.argv[2]
    walls: dict[str, list[float]] = {"this": [], "previous": []}
    numbers: dict[str, list[dict]] = {"this": [], "previous": []}
    for i in range(rounds):
        order = [("this", sys.executable), ("previous", old)]
        for name, python in order if i % 2 == 0 else order[::-1]:
            with tempfile.TemporaryDirectory() as tmp:
                wall, nums = sweep(python, Path(tmp))
            walls[name].append(wall)
            numbers[name].append(nums)
            print(f"round {i + 1} {name:<9} {wall:6.1f} s", flush=True)
    ratios = [a / b for a, b in zip(walls["this"], walls["previous"], strict=True)]
    # the same numbers: every non-timed figure of every job, this version against previous
    differ = {}
    for this, prev in zip(numbers["this"], numbers["previous"], strict=True):
        for sparsity, figures in this.items():
            for key, value in figures.items():
                if "latency" not in key and value != prev[sparsity][key]:
                    differ.setdefault(f"{sparsity}:{key}", []).append((value, prev[sparsity][key]))
    p50 = {
        v: statistics.median(
            t[s][f"{v}/latency_p50_ms"] / p[s][f"{v}/latency_p50_ms"]
            for t, p in zip(numbers["this"], numbers["previous"], strict=True)
            for s in t
        )
        for v in VARIANTS
    }
    result = {
        "rounds": rounds,
        "walls_s": walls,
        "ratio_this_to_previous": spread(ratios),
        "latency_p50_ratio_median": p50,
        "figures_that_differ": differ,
        "numbers": numbers,
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "previous_version.json").write_text(json.dumps(result, indent=2))
    r = result["ratio_this_to_previous"]
    print(
        f"\nthis / previous wall, pair by pair: min {r['min']:.3f}, median {r['median']:.3f}, "
        f"max {r['max']:.3f} ({rounds} rounds)"
    )
    print("latency p50 this / previous (median over jobs and rounds):", p50)
    print(f"figures that differ (of job keys, accuracy, sparsity, sizes): {len(differ)}")
    for key, pairs in sorted(differ.items())[:20]:
        print(f"  {key}: {pairs}")


if __name__ == "__main__":
    main()
