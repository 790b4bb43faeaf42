"""Issue #21's figures: what a study costs, this version against the previous one, side by side.

Parts (``python bench/study_speed.py ROUNDS [PART ...]``, OLD_CHECKOUT=<a checkout of the
previous version> in the environment for the side-by-side parts; that version runs as
``python -m pruneflow`` with PYTHONPATH=OLD_CHECKOUT; its configs must be importable as
``pruneflow.conf`` there too: ``ln -s ../conf OLD_CHECKOUT/pruneflow/conf``):

- ``mobilenet``: one MobileNetV2 96x96 job (`backbone.weights=null`, digits upsampled, 2
  baseline epochs, 1 fine-tuning epoch, the default stage: keras and four TFLite variants),
  cold, this version and the previous alternating ROUNDS times: the whole job's wall time and
  its convert step (``time/convert_s``), pair by pair;
- ``workers``: the convert step alone, serial against one worker process, for the digits CNN
  and MobileNetV2 (where a worker pays: :func:`pruneflow.steps.convert.convert.conversion_workers`);
- ``growth``: the offline paper study (`+experiment=paper_offline`: five stand-in models x nine
  sparsities) at 3 jobs (one model, three sparsities), 9 (one model, nine) and 45 (all), cold,
  this version; and the 45 jobs with the previous version: wall time per job, and where it goes
  (start-up before the first job, the jobs' own stages from ``time/<stage>_s``, the end: summary
  and report).

Each command runs in a fresh empty folder (no store, no baseline cache). Writes
bench/results/study_speed.json.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from parts import run_parts
from sweeps import clean_env, read_runs, spread

STAGES = ("check", "data", "train", "prune", "cluster", "qat", "convert", "evaluate", "benchmark")
MOBILENET = [
    "backbone=mobilenetv2",
    "backbone.weights=null",
    "backbone.input_size=96",
    "train.epochs=2",
    "prune.epochs=1",
    "prune.sparsity=0.5",
]
NINE = "0.25,0.5,0.6,0.7,0.8,0.9,0.95,0.97,0.99"
GROWTH = {
    3: ["-m", "+experiment=offline_mnist", "prune.sparsity=0.25,0.5,0.6"],
    9: ["-m", "+experiment=offline_mnist", f"prune.sparsity={NINE}"],
    45: ["-m", "+experiment=paper_offline"],
}
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def pruneflow(work: Path, args: list[str], old: str | None) -> dict:
    """Run ``python -m pruneflow ARGS`` (the previous version's with ``old``) in the empty
    folder ``work``; its wall time, the console's timeline and its runs' stage times."""
    env = clean_env() | ({"PYTHONPATH": old} if old else {})
    started = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "pruneflow", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.time() - started
    if proc.returncode != 0:
        raise RuntimeError(f"pruneflow {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    first_job = last_end = None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = _STAMP.match(line)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() - started
        if first_job is None and re.search(r"\] - (\[1/\d+\] )?.* \.\.\. \(job ", line):
            first_job = t
        if " finished in " in line:
            last_end = t
    runs = [r for r in read_runs(work) if "prune.sparsity" in r.data.params]
    assert runs and all(r.info.status == "FINISHED" for r in runs), "a run did not finish"
    stages = {
        s: sum(r.data.metrics.get(f"time/{s}_s", 0.0) for r in runs)
        for s in STAGES
        if any(f"time/{s}_s" in r.data.metrics for r in runs)
    }
    durations = {r.info.run_name: (r.info.end_time - r.info.start_time) / 1e3 for r in runs}
    in_runs = sum(durations.values())
    return {
        "runs_s": durations,  # each job's run, by name (the same job in studies of any size)
        "between_runs_s": wall - in_runs,  # start-up, Hydra between jobs, the end
        "wall_s": wall,
        "jobs": len(runs),
        "start_up_s": first_job,  # process start to the first job's first line
        "end_s": wall - last_end if last_end is not None else None,  # summary, report, exit
        "stages_s": stages,
        "in_runs_outside_stages_s": in_runs - sum(stages.values()),
    }


def _fresh(tmp: Path, name: str) -> Path:
    folder = tmp / name
    folder.mkdir()
    return folder


def mobilenet(tmp: Path, rounds: int) -> dict:
    old = os.environ["OLD_CHECKOUT"]
    rows: dict[str, list[dict]] = {"this": [], "previous": []}
    for i in range(rounds):
        order = [("this", None), ("previous", old)]
        for name, checkout in order if i % 2 == 0 else order[::-1]:
            r = pruneflow(_fresh(tmp, f"{name}{i}"), MOBILENET, checkout)
            rows[name].append(r)
            print(f"round {i + 1} {name:<9} {r['wall_s']:6.1f} s", r["stages_s"], flush=True)
    pairs = list(zip(rows["this"], rows["previous"], strict=True))
    return {
        "this": rows["this"],
        "previous": rows["previous"],
        "job_ratio": spread([a["wall_s"] / b["wall_s"] for a, b in pairs]),
        "convert_ratio": spread(
            [a["stages_s"]["convert"] / b["stages_s"]["convert"] for a, b in pairs]
        ),
    }


def growth(tmp: Path, rounds: int) -> dict:
    old = os.environ.get("OLD_CHECKOUT")
    result: dict = {}
    for i in range(rounds):
        for jobs, args in GROWTH.items():
            r = pruneflow(_fresh(tmp, f"this{jobs}-{i}"), args, None)
            result.setdefault(f"this_{jobs}", []).append(r)
            print(f"round {i + 1} this {jobs:>2} jobs {r['wall_s']:6.1f} s", flush=True)
        if old:
            r = pruneflow(_fresh(tmp, f"previous45-{i}"), GROWTH[45], old)
            result.setdefault("previous_45", []).append(r)
            print(f"round {i + 1} previous 45 jobs {r['wall_s']:6.1f} s", flush=True)
    per_job = {k: statistics.median(r["wall_s"] / r["jobs"] for r in v) for k, v in result.items()}
    result["per_job_s"] = per_job
    result["per_job_45_over_9"] = per_job["this_45"] / per_job["this_9"]
    # the same nine jobs (offline_mnist at nine sparsities) in the 9- and the 45-job study: the
    # cost of a job as the study around it grows, free of the other models' sizes
    same = [
        statistics.median(
            r9["runs_s"][name] / r45["runs_s"][name]
            for r9, r45 in zip(result["this_9"], result["this_45"], strict=True)
        )
        for name in result["this_9"][0]["runs_s"]
    ]
    result["same_jobs_9_over_45"] = spread(same)
    result["between_runs_per_job_s"] = {
        k: statistics.median(r["between_runs_s"] / r["jobs"] for r in v)
        for k, v in result.items()
        if k.startswith(("this_", "previous_")) and isinstance(v, list)
    }
    if old:
        result["this_over_previous_45"] = spread(
            [
                a["wall_s"] / b["wall_s"]
                for a, b in zip(result["this_45"], result["previous_45"], strict=True)
            ]
        )
    return result


def workers(tmp: Path, rounds: int) -> dict:
    """The convert step alone, serial (``workers=0``) against one worker process, alternating,
    for the digits CNN and MobileNetV2 at 96x96 (untrained: a conversion's cost does not depend
    on the weights' values), the default stage's four TFLite variants: where a worker pays."""
    import numpy as np

    from pruneflow.config import instantiate
    from pruneflow.steps.convert.convert import conversion_workers, export_models
    from pruneflow.steps.model.config import CNNConfig, TransferConfig

    variants = ["tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]
    models = {
        "cnn": (CNNConfig(), (28, 28, 1)),
        "mobilenetv2": (TransferConfig(arch="mobilenetv2", weights=None), (96, 96, 3)),
    }
    result = {}
    for name, (config, shape) in models.items():
        model = instantiate(config, shape, 10)
        sample = np.random.default_rng(0).integers(0, 255, (100, *shape), dtype=np.uint8)
        seconds: dict[int, list[float]] = {0: [], 1: []}
        files = {}
        for i in range(rounds):
            for n in (0, 1) if i % 2 == 0 else (1, 0):
                t0 = time.perf_counter()
                paths = export_models(model, variants, tmp / f"{name}{n}{i}", sample, workers=n)
                seconds[n].append(time.perf_counter() - t0)
                files.setdefault(n, {v: paths[v].read_bytes() for v in variants})
                print(f"round {i + 1} {name} workers={n} {seconds[n][-1]:.1f} s", flush=True)
        result[name] = {
            "auto_workers": conversion_workers(model, len(variants)),
            "serial_s": seconds[0],
            "worker_s": seconds[1],
            "worker_over_serial": spread(
                [a / b for a, b in zip(seconds[1], seconds[0], strict=True)]
            ),
            "same_files": files[0] == files[1],
        }
    return result


if __name__ == "__main__":
    run_parts(
        "study_speed", {"mobilenet": mobilenet, "growth": growth, "workers": workers}, rounds=1
    )
