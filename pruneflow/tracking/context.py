"""What a sweep's job knows of its sweep: its parent run, its place, the overrides that tell it
apart (:class:`JobContext`, made by :func:`pruneflow.study.jobs.job_context`), and a job as a
sweep lists it (:class:`Job`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from pruneflow import results
from pruneflow.tracking.runs import store_client

SKIPPED_DIR = "skipped"  # on a search's parent: the trials resumed from FINISHED runs


@dataclass
class Job:
    """One job of a sweep as listed before it runs."""

    num: int
    overrides: list[str]
    key: str  # its config's job key (results.JOB_KEY_TAG)
    uri: str
    experiment: str


@dataclass
class JobContext:
    """What a sweep's job knows of its sweep: its parent run, its place, its overrides."""

    parent_run_id: str | None
    num: int
    total: int | None
    overrides: list[str]

    @property
    def label(self) -> str:
        """``[2/9] prune.sparsity=0.5``: the job in progress lines."""
        total = self.total if self.total is not None else "?"
        return f"[{self.num + 1}/{total}] {' '.join(self.overrides) or '(no overrides)'}"

    def tags(self) -> dict[str, Any]:
        return {
            results.JOB_NUM_TAG: self.num,
            results.JOB_OVERRIDES_TAG: " ".join(self.overrides),
        }

    def note_skipped(self, uri: str, experiment: str, key: str) -> None:
        """Tell the parent that this job was skipped for a FINISHED run of its config (job
        key ``key``), when the sweep did not list its jobs ahead (a sweeper chooses them: a
        search): ``skipped/<num>.json`` on the parent, which the summary and the report read
        (:func:`skipped_jobs`)."""
        if self.total is not None or self.parent_run_id is None:
            return  # listed ahead: the parent knows its jobs already
        job = Job(self.num, self.overrides, key, uri, experiment)
        client = store_client(uri)
        client.log_text(
            self.parent_run_id, json.dumps(asdict(job)), f"{SKIPPED_DIR}/{self.num}.json"
        )
