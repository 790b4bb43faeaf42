"""Issue #19's figures: tfmot's collaborative chain (pruning, clustering, PTQ and (P)(C)QAT int8)
on digits + cnn at the default budget, every job run by the console script as a user runs it.

1. ``chain``: ``pruneflow -m prune.sparsity=0,0.5,0.9 cluster.clusters=0,8,16,32 stage=qat``
   (12 jobs, seed 42): per job and variant (tflite_fp32, PTQ tflite_int8, QAT tflite_int8_qat:
   PQAT, CQAT or PCQAT as the tag says) accuracy, gzip bytes, the most distinct values in a
   clustered tensor counted from the file, and the zeros in the file.
2. ``seeds``: S=0.9 with and without 16 clusters at seeds 1, 2, 3 (6 jobs): the ratios of the
   issue (clustered / unclustered gzip of tflite_fp32, PCQAT / PQAT gzip of tflite_int8_qat) and
   the accuracy differences, per seed.

No timing: the figures are sizes and accuracies. Writes bench/results/clustering.json.
    python bench/clustering.py [ROUNDS(unused)] [PART ...]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from parts import run_parts

PRUNEFLOW = str(Path(sys.executable).parent / "pruneflow")
VARIANTS = ("tflite_fp32", "tflite_int8", "tflite_int8_qat")


def pruneflow(*args: str, cwd: Path) -> str:
    """The console script in ``cwd``, its own store there (no MLFLOW_ variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run([PRUNEFLOW, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"pruneflow {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def jobs(folder: Path) -> list[dict]:
    """Every finished job run of the store in ``folder``: its settings and per-variant figures."""
    from mlflow.tracking import MlflowClient

    from pruneflow import results

    client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("pruneflow")
    out = []
    for run in client.search_runs([exp.experiment_id]):
        if results.SWEEP_TAG in run.data.tags:
            continue
        m, p = run.data.metrics, run.data.params
        row = {
            "seed": int(p["seed"]),
            "sparsity": float(p["prune.sparsity"]),
            "clusters": int(p["cluster.clusters"]),
            "qat_scheme": run.data.tags.get(results.QAT_SCHEME_TAG),
            "baseline_accuracy": m[results.BASELINE_ACCURACY],
        }
        for v in VARIANTS:
            row[v] = {
                "accuracy": m[results.metric(v, results.ACCURACY)],
                "gzip_bytes": m[results.metric(v, results.GZIP)],
                "zeros": m[results.metric(v, results.FILE_SPARSITY)],
                "unique_weights": m.get(results.metric(v, results.UNIQUE_WEIGHTS)),
            }
        out.append(row)
    return sorted(out, key=lambda r: (r["seed"], r["sparsity"], r["clusters"]))


def unclustered_unique(folder: Path) -> dict:
    """The distinct values the unclustered files hold, counted as for clustered ones (every
    kernel layer of the cnn), for the table's comparison."""
    from pruneflow.steps.convert.convert import unique_weights

    found = {}
    for path in sorted(folder.glob("multirun/*/*/*/models/*.tflite")):
        config = (path.parents[1] / ".hydra" / "overrides.yaml").read_text()
        if "cluster.clusters=0" in config:
            key = f"{path.parents[1].name}/{path.stem}"
            found[key] = unique_weights(path, ["conv1", "conv2", "dense", "probs"])
    return found


def part_chain(tmp: Path, rounds: int) -> dict:
    pruneflow("-m", "prune.sparsity=0,0.5,0.9", "cluster.clusters=0,8,16,32", "stage=qat", cwd=tmp)
    return {"jobs": jobs(tmp), "unclustered_unique": unclustered_unique(tmp)}


def part_seeds(tmp: Path, rounds: int) -> dict:
    pruneflow(
        "-m", "seed=1,2,3", "prune.sparsity=0.9", "cluster.clusters=0,16", "stage=qat", cwd=tmp
    )
    rows = jobs(tmp)
    per_seed = {}
    for seed in (1, 2, 3):
        plain, shared = (
            next(r for r in rows if r["seed"] == seed and r["clusters"] == k) for k in (0, 16)
        )
        per_seed[seed] = {
            "fp32_gzip_ratio": shared["tflite_fp32"]["gzip_bytes"]
            / plain["tflite_fp32"]["gzip_bytes"],
            "qat_gzip_ratio": shared["tflite_int8_qat"]["gzip_bytes"]
            / plain["tflite_int8_qat"]["gzip_bytes"],
            "fp32_accuracy_delta": shared["tflite_fp32"]["accuracy"]
            - plain["tflite_fp32"]["accuracy"],
            "qat_accuracy_delta": shared["tflite_int8_qat"]["accuracy"]
            - plain["tflite_int8_qat"]["accuracy"],
            "max_unique": max(shared[v]["unique_weights"] for v in VARIANTS),
            "zeros": {v: shared[v]["zeros"] for v in VARIANTS},
            "schemes": [plain["qat_scheme"], shared["qat_scheme"]],
        }
    return {"jobs": rows, "per_seed": per_seed}


if __name__ == "__main__":
    run_parts("clustering", {"chain": part_chain, "seeds": part_seeds}, 1)
