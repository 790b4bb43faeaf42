"""Compose configs and run pruneflow's command line as a user would, every output in a folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"

# The smallest budget that still exercises every stage.
TINY = [
    "train.epochs=1",
    "prune.epochs=1",
    "benchmark.images=5",
    "stage.representative_samples=8",
]


def compose(overrides: list[str] | None = None):
    """Compose the root config like the ``pruneflow`` command would, without running it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from pruneflow.config import register

    register()
    GlobalHydra.instance().clear()  # no leftover global state between tests
    with initialize_config_module(config_module="pruneflow.conf", version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides or [])


def options(group: str) -> list[str]:
    """The YAML options of a config group."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def outputs_to(tmp: Path, hydra: bool = True) -> list[str]:
    """Overrides that send every output of a run (Hydra, MLflow, cache) under ``tmp``."""
    keys = [
        f"paths.cache_dir={tmp / 'cache'}",
        f"tracking.dir={tmp / 'mlruns'}",
    ]
    if hydra:
        keys += [f"hydra.sweep.dir={tmp / 'multirun'}", f"hydra.run.dir={tmp / 'outputs'}"]
    else:
        keys.append(f"paths.output_dir={tmp / 'out'}")
    return keys


def clean_env() -> dict[str, str]:
    """This environment without MLflow variables, so runs go to the folder's own store."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def pruneflow_command() -> list[str]:
    """The ``pruneflow`` console script installed beside this Python (what a user types)."""
    script = Path(sys.executable).parent / "pruneflow"
    found = str(script) if script.exists() else shutil.which("pruneflow")
    assert found, "the pruneflow console script is not installed (pip install -e .)"
    return [found]


def run_cli(
    args: list[str],
    cwd: Path,
    timeout: float = 600,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m pruneflow ARGS`` (or ``command ARGS``) in ``cwd`` as a user would, in
    ``env`` (default: this environment without MLflow variables)."""
    return subprocess.run(
        [*(command or [sys.executable, "-m", "pruneflow"]), *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sweep_cli(tmp: Path, *args: str, env=None, timeout: float = 600):
    """``pruneflow -m ARGS`` with the tiny budget, every output under ``tmp``: the console
    script itself, as a user types it."""
    return run_cli(
        ["-m", *args, *TINY, *outputs_to(tmp)],
        cwd=tmp,
        timeout=timeout,
        command=pruneflow_command(),
        env=env,
    )


def store_uri(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}"


def read_runs(tmp: Path, experiment: str = "pruneflow", parents: bool = False):
    """(client, runs oldest first) of the store that ``outputs_to(tmp)`` sends runs to: the
    jobs' runs, or with ``parents`` the sweeps' parent runs."""
    from mlflow.tracking import MlflowClient

    from pruneflow.results import SWEEP_TAG

    client = MlflowClient(tracking_uri=store_uri(tmp))
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    return client, [r for r in runs if (SWEEP_TAG in r.data.tags) == parents]
