"""How long `pruneflow report` takes on 100 runs (issue #9's target: < 10 s).

Fills a real MLflow sqlite store with one sweep: a parent run and 100 job runs of 4 models x 25
sparsities, each with what a real job logs for the report (params, tags, 5 variants x every
measure, the run-level metrics); the values are synthetic (drawn, not measured), the store,
MLflow and the report code are the real ones. Then times the command as a user runs it,
`python -m pruneflow report --sweep <id>` and `--all`, ROUNDS times each; medians.

    python bench/report_speed.py [ROUNDS]
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweeps import clean_env

from pruneflow import results
from pruneflow.study import tracking

VARIANTS = ["keras", "tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]
MODELS = [("digits", "cnn"), ("mnist", "cnn"), ("svhn", "cnn"), ("tf_flowers", "mobilenetv2")]


def fill(folder: Path, runs: int = 100) -> str:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    uri = tracking.resolve_uri(None, folder / "mlruns")
    experiment_id = tracking.prepare_store(uri, "pruneflow", folder / "mlruns")
    client = MlflowClient(tracking_uri=uri)
    parent = client.create_run(
        experiment_id, run_name="sweep-bench", tags={results.SWEEP_TAG: "sweep-bench"}
    ).info.run_id
    rng = random.Random(0)
    now = int(time.time() * 1000)
    per_model = runs // len(MODELS)
    for dataset, backbone in MODELS:
        for i in range(per_model):
            sparsity = round(0.25 + 0.74 * i / max(1, per_model - 1), 3)
            run_id = client.create_run(
                experiment_id,
                run_name=f"{dataset}-{backbone}-s{sparsity:g}",
                tags={
                    results.PARENT_TAG: parent,
                    results.JOB_KEY_TAG: f"{dataset}{backbone}{i}",
                    results.DATASET_TAG: dataset,
                    results.BACKBONE_TAG: backbone,
                    "device": "local",
                },
            ).info.run_id
            metrics = {
                results.BASELINE_ACCURACY: 0.97,
                results.SPARSITY: sparsity,
                results.VAL_IMAGES: 540.0,
                "val/loss": rng.uniform(0.05, 0.5),
            }
            for v in VARIANTS:
                for m in results.VARIANT_MEASURES:
                    metrics[results.metric(v, m)] = rng.uniform(0.1, 1.0) * (
                        1e5 if "bytes" in m else 1
                    )
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param("prune.sparsity", str(sparsity))],
                tags=[RunTag(results.kernels_tag(v), "xnnpack") for v in VARIANTS],
            )
            client.set_terminated(run_id, "FINISHED")
    client.set_terminated(parent, "FINISHED")
    return parent


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        parent = fill(folder)
        walls: dict[str, list[float]] = {"--sweep": [], "--all": []}
        for i in range(rounds):
            for which, args in (("--sweep", ["--sweep", parent]), ("--all", ["--all"])):
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "pruneflow", "report", *args, "--out", f"r{i}{which}"],
                    cwd=folder,
                    env=clean_env(),
                    capture_output=True,
                    text=True,
                )
                walls[which].append(time.perf_counter() - t0)
                assert proc.returncode == 0, proc.stderr
                rows = sum(1 for _ in open(folder / f"r{i}{which}" / "runs.csv")) - 1
                assert rows == 100 * len(VARIANTS), rows
                print(f"round {i + 1} report {which:<8} {walls[which][-1]:5.1f} s", flush=True)
    result = {k: statistics.median(v) for k, v in walls.items()}
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "report_speed.json").write_text(json.dumps({"median_s": result, "all": walls}, indent=2))
    print(f"pruneflow report on 100 runs (500 rows), medians of {rounds}: {result}")


if __name__ == "__main__":
    main()
