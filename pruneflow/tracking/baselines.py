"""Trained baselines kept in the tracking store (beside the local cache, paths.cache_dir), so
that machines sharing only a tracking server reuse a baseline trained on another one."""

from __future__ import annotations

import os
from pathlib import Path

from pruneflow.results import BASELINE_EXPERIMENT, BASELINE_KEY_TAG, HOST_TAG, PID_TAG
from pruneflow.tracking.runs import error_tags, newest_run, prepare_store, store_client


class BaselineStore:
    """Cached baselines in the tracking store: one FINISHED run per baseline key (experiment
    :data:`BASELINE_EXPERIMENT`) holding the cache entry's files as artifacts, so that workers
    that share only the tracking server reuse a baseline trained elsewhere."""

    def __init__(self, uri: str, store_dir: str | os.PathLike):
        self.uri, self.store_dir = uri, store_dir

    def _client(self):
        return store_client(self.uri)

    def find(self, key: str) -> str | None:
        """The id of the run holding baseline ``key`` (the newest FINISHED one), or None."""
        client = self._client()
        experiment = client.get_experiment_by_name(BASELINE_EXPERIMENT)
        if experiment is None:
            return None
        run = newest_run(client, experiment.experiment_id, BASELINE_KEY_TAG, key, "FINISHED")
        return run.info.run_id if run is not None else None

    def fetch(self, key: str, dest: Path) -> str | None:
        """Download the files of baseline ``key`` into the empty folder ``dest``; the id of
        the run they came from, or None if the store has none."""
        run_id = self.find(key)
        if run_id is not None:
            self._client().download_artifacts(run_id, "baseline", str(dest))
        return run_id

    def discard(self, run_id: str, why: str) -> None:
        """Mark the baseline run ``run_id`` FAILED, saying ``why``: :meth:`fetch` no longer
        reads it (its files are kept)."""
        client = self._client()
        for k, v in error_tags(why, "CorruptBaseline").items():
            client.set_tag(run_id, k, v)
        client.set_terminated(run_id, "FAILED")

    def publish(self, key: str, entry: Path) -> str:
        """Store the files of cache entry ``entry`` as baseline ``key``; returns the run id."""
        import socket

        experiment_id = prepare_store(self.uri, BASELINE_EXPERIMENT, self.store_dir)
        client = self._client()
        run = client.create_run(
            experiment_id,
            run_name=f"baseline-{key}",
            # host and pid: a run this process cannot end (a full disk) is ended by the next
            tags={BASELINE_KEY_TAG: key, HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())},
        )
        status = "FAILED"
        try:
            client.log_artifacts(run.info.run_id, str(entry), "baseline")
            status = "FINISHED"
        finally:
            client.set_terminated(run.info.run_id, status)
        return run.info.run_id
