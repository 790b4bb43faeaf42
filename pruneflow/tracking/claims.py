"""One run of a config at a time: concurrent sweeps (or runs) of the same jobs share the work.

A job that would run (``tracking.resume``, no FINISHED run of its job key and code) first
waits while another run of the same job key and code is RUNNING and being worked on
(:func:`wait_for_others`), then skips itself when that run FINISHED or runs the job when it
failed or was killed. Two jobs that both found nothing and started their runs together are
told apart in the store itself, which works alike for a sqlite file and a tracking server
shared by several machines: right after creating its run, each job lists the RUNNING runs of
its key and code, and once more at least a second later (:class:`Claim`); the oldest (start
time, then run id: every process sees the same order) goes on, the others withdraw theirs
(:class:`Behind`: ended FAILED saying why, then deleted) and wait for it.

A RUNNING run is worked on when its process is alive (this host: its ``pruneflow.pid``,
:func:`~pruneflow.process.process_alive`), or, on another host, whose processes this
one cannot see, until it is :data:`OTHER_HOST_WAIT_S` old: a run left RUNNING by a machine
that died is not waited on for ever.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from pruneflow.process import process_alive
from pruneflow.results import CODE_TAG, HOST_TAG, JOB_KEY_TAG, PID_TAG
from pruneflow.tracking.runs import finished_run, store_client

log = logging.getLogger(__name__)

OTHER_HOST_WAIT_S = 6 * 3600.0  # a run of another host is waited on until it is this old
POLL_S = 2.0  # how often a waiting job asks the store again
SETTLE_S = 1.0  # a new run's second look for an older one (:meth:`Claim.settled`)


class Behind(Exception):
    """This job's new run (``run_id``) is not the oldest RUNNING run of its config: ``ahead``
    is; the job deletes its run (:func:`pruneflow.pipeline.run`) and waits for that one."""

    def __init__(self, run_id: str, ahead) -> None:
        super().__init__(f"run {ahead.info.run_id} of the same config started first")
        self.run_id, self.ahead = run_id, ahead


def _running(client, experiment_id: str, job_key: str, code: str) -> list:
    """The RUNNING runs of ``job_key`` made by ``code``, oldest first."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{JOB_KEY_TAG}` = '{job_key}' and tags.`{CODE_TAG}` = '{code}' "
        "and attributes.status = 'RUNNING'",
        max_results=1000,
    )
    return sorted(found, key=lambda r: (r.info.start_time, r.info.run_id))


def worked_on(run, now: float | None = None) -> bool:
    """Whether ``run`` (RUNNING) is being worked on by another process: on this host, its
    process is alive; on another, it is younger than :data:`OTHER_HOST_WAIT_S`."""
    tags = run.data.tags
    pid = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) == socket.gethostname():
        return (
            pid.isdigit()
            and int(pid) != os.getpid()
            and process_alive(int(pid), run.info.start_time)
        )
    now = time.time() if now is None else now
    return now - run.info.start_time / 1000 < OTHER_HOST_WAIT_S


def first_ahead(client, experiment_id: str, job_key: str, code: str, mine: str | None = None):
    """The oldest RUNNING run of ``job_key`` and ``code`` that is worked on (or is ``mine``,
    this job's own run), when it is not ``mine``; else None."""
    for run in _running(client, experiment_id, job_key, code):
        if run.info.run_id == mine:
            return None
        if worked_on(run):
            return run
    return None


class Claim:
    """This job's new run ``run_id`` of ``job_key`` and ``code``, told apart from runs started
    together with it: :meth:`first` looks right after the run is made, :meth:`settled` once
    more no sooner than :data:`SETTLE_S` later, as a run's start time is taken by its client
    before the store has it (an older run may still be on its way). The job calls
    :meth:`settled` once pruning's fine-tuning is done, which takes that second or more: so a
    job rarely waits at all, and two runs of one config started in the same instant repeat at
    most that fine-tuning (the baseline they share through its cache)."""

    def __init__(self, client, experiment_id: str, job_key: str, code: str, run_id: str):
        self.client, self.experiment_id = client, experiment_id
        self.job_key, self.code, self.run_id = job_key, code, run_id
        self.looked = 0.0

    def first(self) -> None:
        """Raise :class:`Behind` unless this job's run goes first, as far as the store knows."""
        self.looked = time.monotonic()
        ahead = first_ahead(self.client, self.experiment_id, self.job_key, self.code, self.run_id)
        if ahead is not None:
            raise Behind(self.run_id, ahead)

    def settled(self) -> None:
        """:meth:`first` again, at least :data:`SETTLE_S` after it (waiting the rest)."""
        time.sleep(max(0.0, SETTLE_S - (time.monotonic() - self.looked)))
        self.first()


def wait_for_others(uri: str, experiment_id: str, job_key: str, code: str, label: str):
    """The FINISHED run of ``job_key`` and ``code``, after waiting while another run of them
    is worked on (a line as it starts waiting on each); None when the job is to run here."""
    client = store_client(uri)
    said = None
    while True:
        done = finished_run(uri, experiment_id, job_key, code)
        if done is not None:
            return done
        ahead = first_ahead(client, experiment_id, job_key, code)
        if ahead is None:
            return None
        if said != ahead.info.run_id:
            said = ahead.info.run_id
            log.info("%s: %s", label, _waiting(ahead))
        time.sleep(POLL_S)


def _waiting(run) -> str:
    tags = run.data.tags
    host, pid = tags.get(HOST_TAG, "?"), tags.get(PID_TAG, "?")
    if host == socket.gethostname():
        where = f"process {pid} of this host"
        until = "until it ends"
    else:
        where = f"process {pid} on host {host}"
        hours = OTHER_HOST_WAIT_S / 3600
        until = f"until it ends, or at most until it is {hours:g} h old"
    return (
        f"run {run.info.run_id} of this config is running in {where}: waiting for it {until} "
        "(then skipped if it finished, run here if not)"
    )
