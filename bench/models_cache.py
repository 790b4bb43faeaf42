"""The models cache's gain: the threads study (`pruneflow -m +experiment=threads`: timed at 1, 2
and 4 threads; MODEL ``digits``: the digits CNN at the defaults, ``mobilenet``: MobileNetV2
96x96, ``weights=null``, 2 epochs, sparsity 0.5, as bench/study_speed.py) from a cold start (an
empty folder: no cache, no store), with this checkout's pruneflow (the first job makes the
models, the others time them) and with a checkout from before the cache (each job prunes,
fine-tunes, converts and evaluates again), alternating, ROUNDS times. Also whether the jobs of
this version timed one set of models (the tag ``models_from``) with the same measures.

    python bench/models_cache.py ROUNDS OLD_CHECKOUT [MODEL]

OLD_CHECKOUT: a checkout of the commit before the cache (``git worktree add /tmp/old
a97ccbb``); it runs with this venv's packages, its own ``pruneflow`` first on ``PYTHONPATH``.
Writes bench/results/models_cache_<MODEL>.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from study_speed import MOBILENET, pruneflow
from sweeps import read_runs, spread

from pruneflow.results import MODELS_FROM_TAG

HERE = Path(__file__).resolve().parent
STUDY = ["-m", "+experiment=threads"]
MODELS = {"digits": [], "mobilenet": MOBILENET}
SAME = ("baseline/accuracy", "sparsity", "tflite_int8/accuracy", "tflite_int8/size_bytes")


def study(work: Path, old: str | None, model: list[str]) -> tuple[float, list]:
    """Wall seconds of the threads study in ``work`` (with ``old``'s code first on the path)
    and its runs."""
    wall = pruneflow(work, [*STUDY, *model], old)["wall_s"]
    return wall, [r for r in read_runs(work) if "delegate.threads" in r.data.params]


def main() -> None:
    rounds, old = int(sys.argv[1]), sys.argv[2]
    name = sys.argv[3] if len(sys.argv) > 3 else "digits"
    walls: dict[str, list[float]] = {"cached": [], "before": []}
    reused, same = [], []
    for i in range(rounds):
        order = [("cached", None), ("before", old)]
        for how, code in order if i % 2 == 0 else order[::-1]:
            with tempfile.TemporaryDirectory() as tmp:
                wall, runs = study(Path(tmp), code, MODELS[name])
            walls[how].append(wall)
            print(f"round {i + 1} {how:<7} {wall:6.1f} s", flush=True)
            if how == "cached":
                reused.append(sum(MODELS_FROM_TAG in r.data.tags for r in runs))
                figures = [tuple(r.data.metrics[k] for k in SAME) for r in runs]
                same.append(len(set(figures)) == 1 and len(runs) == 3)
    ratios = [a / b for a, b in zip(walls["cached"], walls["before"], strict=True)]
    result = {
        "model": name,
        "rounds": rounds,
        "walls_s": walls,
        "ratio_cached_to_before": spread(ratios),
        "jobs_that_timed_another_job_s_models": reused,
        "one_set_of_measures": same,
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"models_cache_{name}.json").write_text(json.dumps(result, indent=2))
    r = result["ratio_cached_to_before"]
    print(
        f"\ncached / before, pair by pair: min {r['min']:.3f}, median {r['median']:.3f}, "
        f"max {r['max']:.3f} ({rounds} rounds); jobs timing the first's models: {reused}; "
        f"one set of measures: {same}"
    )


if __name__ == "__main__":
    main()
