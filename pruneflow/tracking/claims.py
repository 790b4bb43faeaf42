"""One run of a config at a time: concurrent sweeps (or runs) of the same jobs share the work.

A job that would run (``tracking.resume``, no FINISHED run of its job key and code) first
waits while another run of the same job key and code is RUNNING and being worked on
(:func:`wait_for_others`), then skips itself when that run FINISHED or runs the job when it
failed or was killed. Two jobs that both found nothing and started their runs together are
told apart in the store itself, which works alike for a sqlite file and a tracking server
shared by several machines: right after creating its run, each job lists the RUNNING runs of
its key and code, and once more at least a second later (:class:`Claim`); the oldest (start
time, then run id: every process sees the same order) goes on, the others withdraw theirs
(:class:`Behind`: ended FAILED saying why, then deleted) and wait for it. A run that passed its
second look is tagged ``CLAIMED_TAG``, and every later look yields to such a run whatever its
start time: an older run whose creation waited on the store (a busy sqlite file) may become
visible only after a younger one passed its second look without seeing it. Such an older run
waits at its own second look for each younger run that may not have seen it, until that run
withdrew or claimed.

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
from pruneflow.results import CLAIMED_TAG, CODE_TAG, HOST_TAG, JOB_KEY_TAG, PID_TAG
from pruneflow.tracking.runs import finished_run, store_client

log = logging.getLogger(__name__)

OTHER_HOST_WAIT_S = 6 * 3600.0  # a run of another host is waited on until it is this old
POLL_S = 2.0  # how often a waiting job asks the store again
SETTLE_S = 1.0  # a new run's second look for an older one (:meth:`Claim.settled`)
_GRAIN_MS = 50  # a margin on the clock's reading (ms)


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
    before the store has it (an older run may still be on its way), then tags the run
    ``CLAIMED_TAG``. The job calls :meth:`settled` once pruning's fine-tuning is done, which
    takes that second or more: so a job rarely waits at all, and two runs of one config started
    in the same instant repeat at most that fine-tuning (the baseline they share through its
    cache)."""

    def __init__(self, client, experiment_id: str, job_key: str, code: str, run_id: str):
        self.client, self.experiment_id = client, experiment_id
        self.job_key, self.code, self.run_id = job_key, code, run_id
        self.looked = 0.0
        self.visible_ms = 0.0  # when this run was surely in the store (its first look)
        self.start_ms: int | None = None  # its start time, as the store has it

    def first(self) -> None:
        """Raise :class:`Behind` unless this job's run goes first, as far as the store knows."""
        self.looked = time.monotonic()
        self.visible_ms = time.time() * 1000
        self._look()

    def settled(self) -> None:
        """:meth:`first` again, at least :data:`SETTLE_S` after it (waiting the rest), then
        until no younger run may have missed this one; then claim the config."""
        time.sleep(max(0.0, SETTLE_S - (time.monotonic() - self.looked)))
        said = set()
        while undecided := self._look():
            for run in undecided:
                if run.info.run_id not in said:
                    said.add(run.info.run_id)
                    log.info(
                        "run %s of this config started after this one but may not have seen "
                        "it (the store was slow to take this run): waiting for it to go on or "
                        "withdraw",
                        run.info.run_id,
                    )
            time.sleep(POLL_S)
        self.client.set_tag(self.run_id, CLAIMED_TAG, "true")

    def _look(self) -> list:
        """Raise :class:`Behind` for a run ahead of this one (older, or claimed); return the
        younger runs whose second look may have come before this run was in the store."""
        runs = _running(self.client, self.experiment_id, self.job_key, self.code)
        for run in runs:
            if run.info.run_id == self.run_id:
                self.start_ms = run.info.start_time
        undecided = []
        for run in runs:
            if run.info.run_id == self.run_id or not worked_on(run):
                continue
            mine = (self.start_ms, self.run_id) if self.start_ms is not None else None
            if (
                run.data.tags.get(CLAIMED_TAG)
                or mine is None
                or ((run.info.start_time, run.info.run_id) < mine)
            ):
                raise Behind(self.run_id, run)
            # a younger run looks again SETTLE_S after its start at the soonest: one whose
            # start is that close to this run's arrival in the store surely saw it
            if run.info.start_time + SETTLE_S * 1000 < self.visible_ms + _GRAIN_MS:
                undecided.append(run)
        return undecided


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
