"""A sweep's jobs: listed and checked before the first one runs, and what each job knows of
its sweep (its parent run, its place, the overrides that tell it apart)."""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pruneflow import results
from pruneflow.tracking.context import SKIPPED_DIR, Job, JobContext
from pruneflow.tracking.runs import newest_run, store_client

log = logging.getLogger(__name__)

SWEEP_FILE = "sweep.json"  # in the sweep folder: the parent runs and the jobs


@dataclass
class Parent:
    """A sweep's parent run in one store and experiment."""

    uri: str
    experiment: str
    experiment_id: str
    run_id: str


@dataclass
class Sweep:
    name: str
    folder: str
    started: float
    overrides: list[str]
    jobs: list[Job] = field(default_factory=list)
    parents: list[Parent] = field(default_factory=list)
    compare_rounds: int = 0  # tracking.compare_rounds: `pruneflow compare` at the end; 0: off
    # a search (hydra/sweeper=optuna): its objectives, their directions, the searched keys
    objectives: list[str] = field(default_factory=list)
    directions: list[str] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)

    def write(self) -> None:
        path = Path(self.folder) / SWEEP_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))


def skipped_jobs(client, parent_run_id: str) -> list[Job]:
    """The jobs of a sweep not listed ahead that were skipped (:meth:`JobContext.note_skipped`)."""
    import tempfile

    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for item in client.list_artifacts(parent_run_id, SKIPPED_DIR):
            path = client.download_artifacts(parent_run_id, item.path, tmp)
            found.append(Job(**json.loads(Path(path).read_text())))
    return sorted(found, key=lambda j: j.num)


def job_context(
    sweep_dir: str, num: int, overrides: list[str], uri: str, experiment: str
) -> JobContext:
    """The context of job ``num`` of the sweep in ``sweep_dir``: its parent from
    ``sweep.json``, else from the store (a worker that does not share the folder)."""
    path = Path(sweep_dir) / SWEEP_FILE
    parent_id, total, common = None, None, []
    if path.exists():
        doc = json.loads(path.read_text())
        total, common = len(doc["jobs"]) or None, doc["overrides"]
        for p in doc["parents"]:
            if p["uri"] == uri and p["experiment"] == experiment:
                parent_id = p["run_id"]
    else:
        parent_id, total = _parent_in_store(sweep_dir, uri, experiment)
    return JobContext(parent_id, num, total, swept(overrides, common))


def swept(overrides: list[str], sweep_overrides: list[str]) -> list[str]:
    """A job's overrides less those every job of the sweep has (``train.epochs=1`` given once
    on the command line): what tells the jobs apart."""
    return [o for o in overrides if o not in sweep_overrides] or list(overrides)


def _parent_in_store(sweep_dir: str, uri: str, experiment: str) -> tuple[str | None, int | None]:
    client = store_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None, None
    run = newest_run(client, found.experiment_id, results.SWEEP_DIR_TAG, sweep_dir, "RUNNING")
    if run is None:
        return None, None
    jobs = run.data.tags.get(results.SWEEP_JOBS_TAG, "")
    return run.info.run_id, int(jobs) if jobs.isdigit() and int(jobs) else None


def sweep_jobs(task_overrides: list[str], config_loader=None) -> list[list[str]]:
    """The override list of every job of a sweep, through Hydra's public override parser.

    Sweeps that cannot be listed ahead (a sweeper's ``interval(...)``) are left out of the
    lists; every other key, group choices included, is expanded.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    axes: list[list[str]] = []
    for override in OverridesParser.create().parse_overrides(task_overrides):
        if not override.is_sweep_override():
            axes.append([override.input_line])
        elif override.is_discrete_sweep():
            override.config_loader = config_loader  # glob(...) lists the group's options
            key = override.get_key_element()
            axes.append([f"{key}={v}" for v in override.sweep_string_iterator()])
        else:
            log.info("sweep check: %s is chosen by the sweeper; not checked ahead", override)
    return [list(job) for job in itertools.product(*axes)]


def listed_ahead(overrides: list[str]) -> bool:
    """Whether every job of the sweep is known before it starts (no ``interval(...)``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return all(o.is_discrete_sweep() or not o.is_sweep_override() for o in parsed)
