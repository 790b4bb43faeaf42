"""Compose configs and run pruneflow's command line as a user would, every output in a folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def _overrides(node: dict, prefix: str = "") -> list[str]:
    """``key.sub=value`` overrides of a nested mapping, in its order."""
    found = []
    for key, value in node.items():
        if isinstance(value, dict):
            found += _overrides(value, f"{prefix}{key}.")
        else:
            found.append(f"{prefix}{key}={value}")
    return found


# The smallest budget that still exercises every stage: the users' dry run, `+debug=tiny`, as
# overrides (train.epochs=1, prune.epochs=1, benchmark.images=5, stage.representative_samples=8).
TINY = _overrides(yaml.safe_load((CONF / "debug" / "tiny.yaml").read_text()))


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
    script itself, as a user types it (an ARG of a key the tiny budget sets wins over it)."""
    return run_cli(
        ["-m", *TINY, *args, *outputs_to(tmp)],
        cwd=tmp,
        timeout=timeout,
        command=pruneflow_command(),
        env=env,
    )


def started_together(
    argvs: list[list[str]], cwd: Path, logs: Path, give_up=lambda: False
) -> list[subprocess.CompletedProcess] | None:
    """Start the console script once per argument list, all at once, in ``cwd``, and wait for
    them all (their output in files under ``logs``); or kill them all and return None as soon
    as ``give_up()`` is true."""
    logs.mkdir(parents=True, exist_ok=True)
    procs, files = [], []
    for n, argv in enumerate(argvs):
        out, err = open(logs / f"{n}.out", "w+"), open(logs / f"{n}.err", "w+")
        files += [out, err]
        procs.append(
            subprocess.Popen(
                [*pruneflow_command(), *argv], cwd=cwd, env=clean_env(), stdout=out, stderr=err
            )
        )
    try:
        while any(p.poll() is None for p in procs):
            if give_up():
                return None
            time.sleep(0.2)
        done = []
        for p, out, err in zip(procs, files[::2], files[1::2], strict=True):
            out.seek(0), err.seek(0)
            done.append(subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read()))
        return done
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in files:
            f.close()


def started_in_one_second(argvs: list[list[str]], tmp: Path, where: str, attempts: int = 10):
    """(folder, processes): the console script once per argument list, all started at once in
    an empty folder ``tmp/try<n>``, whose Hydra folders (``where/<date>/<time>...``) were named
    in one second; a set whose folders name two seconds shows no race: it is killed and started
    again in a new folder."""
    for attempt in range(attempts):
        cwd = tmp / f"try{attempt}"
        cwd.mkdir()

        def straddled(cwd=cwd) -> bool:
            found = list((cwd / where).glob("*/*"))
            seconds = {(f.parent.name, f.name.split("_")[0]) for f in found}
            return len(found) == len(argvs) and len(seconds) > 1

        procs = started_together(argvs, cwd, tmp / f"console{attempt}", straddled)
        if procs is not None:
            return cwd, procs
    raise AssertionError(f"no {len(argvs)} processes of {attempts} tries started in one second")


def store_uri(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}"


def sweep_store(tmp: Path, sweep: str):
    """A new store at ``tmp``/mlruns (where `pruneflow report` run in ``tmp`` looks) with the
    experiment ``pruneflow`` and one sweep's parent run: (uri, client, experiment id, parent
    run), for tests that log runs under it directly."""
    from mlflow.tracking import MlflowClient

    from pruneflow.results import SWEEP_TAG

    uri = store_uri(tmp)
    (tmp / "mlruns").mkdir(parents=True)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(
        "pruneflow", artifact_location=(tmp / "artifacts").as_uri()
    )
    parent = client.create_run(experiment_id, tags={SWEEP_TAG: sweep})
    return uri, client, experiment_id, parent


def read_runs(tmp: Path, experiment: str = "pruneflow", parents: bool = False):
    """(client, runs oldest first) of the store that ``outputs_to(tmp)`` sends runs to: the
    jobs' runs, or with ``parents`` the sweeps' parent runs."""
    from mlflow.tracking import MlflowClient

    from pruneflow.results import SWEEP_TAG

    client = MlflowClient(tracking_uri=store_uri(tmp))
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    return client, [r for r in runs if (SWEEP_TAG in r.data.tags) == parents]
