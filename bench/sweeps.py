"""Helpers shared by the benchmarks: run pruneflow as a user would and read its runs back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def clean_env() -> dict[str, str]:
    """This environment without MLflow variables, so runs go to the folder's own store."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def run_pruneflow(cwd: str | Path, *args: str) -> None:
    """`python -m pruneflow ARGS` in ``cwd``; raises with its stderr if it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", "pruneflow", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pruneflow {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def read_runs(cwd: str | Path) -> list:
    """Every MLflow run in ``cwd``'s default store, oldest first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{Path(cwd) / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("pruneflow")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
