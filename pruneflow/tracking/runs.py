"""Tracking stage: one MLflow run per job, written through an explicit client (no global state).

Default store: ``sqlite:///<tracking.dir>/mlflow.db`` with artifacts in ``<tracking.dir>/artifacts``
(mlflow 3 refuses the old file store). ``tracking.uri`` or ``$MLFLOW_TRACKING_URI`` override it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pruneflow.process import process_alive
from pruneflow.results import (
    BASELINE_EXPERIMENT,
    CODE_TAG,
    ERROR_MESSAGE_TAG,
    ERROR_TYPE_TAG,
    HOST_TAG,
    JOB_KEY_TAG,
    PARENT_TAG,
    PID_TAG,
)
from pruneflow.tracking.store import (
    HTTP_LIMITS,
    DiskFull,
    StoreGone,
    TrackingError,
    check_server,
    is_server,
    lost,
    no_space,
    sqlite_file,
    without_password,
)

# MLflow's limits for one log_batch call, for one param value and for one tag value.
_MAX_PARAMS, _MAX_METRICS, _MAX_PARAM_LEN, _MAX_TAG_LEN = 100, 1000, 6000, 8000


def store_client(uri: str):
    """An MLflow client of store ``uri`` (the one way pruneflow opens a store): MLflow's
    retries of a server bounded (:data:`HTTP_LIMITS`); its artifact
    downloads draw no progress bar on the console, and MLflow's and alembic's INFO lines
    (``Creating initial MLflow database tables...`` as a new store is made, its migrations) stay
    off it.

    The job's logging config (conf/config.yaml, ``hydra.job_logging``) sets those loggers to
    WARNING too, but a sweep's callback opens its stores before any job and ``pruneflow
    report`` has no Hydra logging, and importing MLflow sets its loggers to INFO with their
    own console handler: so here, after the import.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name, value in HTTP_LIMITS.items():  # a value the user set is theirs
        os.environ.setdefault(name, value)
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):
        library = logging.getLogger(name)
        library.setLevel(max(library.level, logging.WARNING))
    return MlflowClient(tracking_uri=uri)


def resolve_uri(uri: str | None, store_dir: str | os.PathLike) -> str:
    """The tracking URI: explicit ``uri``, else ``$MLFLOW_TRACKING_URI``, else local sqlite."""
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(store_dir).resolve() / 'mlflow.db'}"


@contextlib.contextmanager
def _creating(uri: str) -> Iterator[None]:
    """Hold an exclusive lock beside a sqlite database (``<db>.lock``) while it is opened
    the first time: processes started together would otherwise both create (migrate) a new
    database, and one fails (``duplicate column name``). Other stores need none."""
    db = sqlite_file(uri)
    if db is None:
        yield
        return
    from pruneflow.files import locked

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked(f"{db}.lock"))
        except OSError:
            pass  # a read-only folder: the store says what is wrong itself
        yield


def prepare_store(
    uri: str,
    experiment: str,
    store_dir: str | os.PathLike,
    meanwhile: Callable[[], object] | None = None,
) -> str:
    """Create the store and the experiment if needed; returns the experiment id.

    A new sqlite store is created under a file lock (:func:`_creating`), so processes may
    call this together; the experiment's creation tolerates a race too. With ``meanwhile``
    (work this process needs next, such as a job's imports), a new sqlite store is made by a
    child process on another core while this one runs ``meanwhile``: MLflow's import and
    schema migrations are 2-2.5 s of CPU. ``meanwhile`` runs only then (not for a store that
    exists). Should the child fail, this process makes the store itself below and says what
    is wrong.
    """
    fresh = sqlite_file(uri) is not None and not sqlite_file(uri).exists()  # to be made here
    child = _create_elsewhere(uri, experiment, store_dir) if meanwhile is not None else None
    if child is not None:
        try:
            meanwhile()
        finally:
            child.wait()  # never killed: that could leave a half-migrated database

    from mlflow.exceptions import MlflowException

    artifacts = None
    where = uri
    try:
        db = sqlite_file(uri)
        if db is not None:
            where = str(db)
            db.parent.mkdir(parents=True, exist_ok=True)
            if db.parent == Path(store_dir).resolve():
                artifacts = (Path(store_dir).resolve() / "artifacts").as_uri()
        elif "://" in uri and not is_server(uri):
            # a database (postgresql+psycopg2://...): artifacts in tracking.dir, not in
            # whatever folder the first run happens to start in; a server keeps its own
            artifacts = (Path(store_dir).resolve() / "artifacts").as_uri()
            where = uri.split("@")[-1]  # no password in messages
        with _creating(uri):
            client = store_client(uri)
            found = client.get_experiment_by_name(experiment)  # opens (creates) the store
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(experiment, artifact_location=artifacts)
        except MlflowException:  # another job created it between our two calls
            found = client.get_experiment_by_name(experiment)
            if found is None:
                raise
            return found.experiment_id
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy, HTTP and OS errors alike
        check_server(uri)  # a server that went away: said as such, not as MLflow's retry error
        full = no_space(exc, uri, new=fresh)
        if fresh:  # made here and half made (a full disk): every later run would fail on it
            with contextlib.suppress(OSError):
                sqlite_file(uri).unlink()
        if full:
            raise DiskFull(full) from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise TrackingError(
            f"the MLflow store {where} cannot be used for experiment {experiment!r}: {first} "
            "(check that it exists and is writable, or set tracking.dir / tracking.uri)"
        ) from None


def _create_elsewhere(uri: str, experiment: str, store_dir: str | os.PathLike):
    """A child process making the new sqlite store ``uri`` and its experiment (its output
    discarded: this process makes it again and reports, should it fail); None when the store
    is not a new sqlite file or no other core is free to make it on."""
    db = sqlite_file(uri)
    if db is None or db.exists():
        return None
    if len(os.sched_getaffinity(0)) < 2:
        return None
    import subprocess
    import sys

    code = "import sys; from pruneflow.tracking import runs; runs.prepare_store(*sys.argv[1:])"
    return subprocess.Popen(
        [sys.executable, "-c", code, uri, experiment, str(store_dir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts/lists to ``{"a.b.0": "value"}`` strings, as MLflow params."""
    if isinstance(node, Mapping):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return {prefix: str(node)}
    out: dict[str, str] = {}
    for k, v in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, (Mapping, list, tuple)) and len(v) > 0:
            out.update(flatten(v, key))
        else:
            out[key] = str(v)
    return out


class Tracker:
    """Logs to one MLflow run through an explicit client."""

    def __init__(self, uri: str, experiment_id: str, run_id: str):

        self.client = store_client(uri)
        self.experiment_id = experiment_id
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:_MAX_PARAM_LEN]) for k, v in params.items()]
        for i in range(0, len(items), _MAX_PARAMS):
            self.client.log_batch(self.run_id, params=items[i : i + _MAX_PARAMS])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self.log_steps({step: metrics})

    def log_steps(self, steps: Mapping[int, Mapping[str, float]]) -> None:
        """Log ``{step: {name: value}}`` (e.g. training curves) in as few calls as possible."""

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, step) for step, ms in steps.items() for k, v in ms.items()
        ]
        for i in range(0, len(items), _MAX_METRICS):
            self.client.log_batch(self.run_id, metrics=items[i : i + _MAX_METRICS])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items() if v is not None]
        if items:
            self.client.log_batch(self.run_id, tags=items)

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log(self, record) -> None:
        """Log a :class:`pruneflow.results.Record`: its metrics, curves, tags and artifacts."""
        if record.metrics:
            self.log_metrics(record.metrics)
        if record.steps:
            self.log_steps(record.steps)
        if record.tags:
            self.set_tags(record.tags)
        for path, folder in record.artifacts:
            self.log_artifact(path, folder)
        for model in record.models:
            self.log_model(model)

    def log_model(self, model) -> str:
        """Log a :class:`pruneflow.results.LoggedModel` linked to this run; returns its id.

        MLflow records a model's metrics on its run too: the run shows them under their bare
        names (``accuracy``: the last variant logged) beside its own ``<variant>/<measure>``."""
        import time

        from mlflow.entities import Metric

        logged = self.client.create_logged_model(
            self.experiment_id,
            name=model.name,
            source_run_id=self.run_id,
            params={k: str(v) for k, v in model.params.items()},
            model_type=model.model_type,
        )
        try:
            self.client.log_model_artifact(logged.model_id, str(model.path))
            now = int(time.time() * 1000)
            metrics = [
                Metric(k, float(v), now, 0, model_id=logged.model_id)
                for k, v in model.metrics.items()
            ]
            if metrics:
                self.client.log_batch(self.run_id, metrics=metrics)
        except BaseException:
            self.client.finalize_logged_model(logged.model_id, "FAILED")
            raise
        self.client.finalize_logged_model(logged.model_id, "READY")
        return logged.model_id


@contextlib.contextmanager
def start_run(
    uri: str,
    experiment: str,
    store_dir: str | os.PathLike,
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
) -> Iterator[Tracker]:
    """Create a run (nested under ``parent_run_id`` if given), yield its :class:`Tracker`, and
    end it FINISHED, FAILED or KILLED.

    A failing job leaves its run FAILED (KILLED for a KeyboardInterrupt) with everything logged
    so far and its error's type and message as tags; the error is re-raised.
    """

    experiment_id = prepare_store(uri, experiment, store_dir)
    client = store_client(uri)
    tags = {**(tags or {}), PARENT_TAG: parent_run_id}
    # An explicit create_run with the parent as a tag ignores an inherited MLFLOW_RUN_ID and
    # any active fluent run.
    run = client.create_run(
        experiment_id,
        run_name=run_name,
        tags={k: str(v) for k, v in tags.items() if v is not None},
    )
    tracker = Tracker(uri, experiment_id, run.info.run_id)
    status = "FAILED"
    try:
        yield tracker
        status = "FINISHED"
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        gone = lost(uri, f" during run {run.info.run_id}")  # the store may be what failed
        if gone is not None:  # then nothing more to write there: say so, at once
            status = None
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise StoreGone(gone) from None
        with contextlib.suppress(Exception):
            tracker.set_tags(
                {
                    ERROR_TYPE_TAG: type(exc).__name__,
                    ERROR_MESSAGE_TAG: (str(exc) or type(exc).__name__)[:_MAX_TAG_LEN],
                }
            )
        raise
    finally:
        if status is not None:
            client.set_terminated(run.info.run_id, status)


def error_tags(message: str, kind: str) -> dict[str, str]:
    """The tags saying why a run did not finish."""
    return {ERROR_TYPE_TAG: kind, ERROR_MESSAGE_TAG: message[:_MAX_TAG_LEN]}


def newest_run(client, experiment_id: str, tag: str, value: str, status: str):
    """The newest run of ``experiment_id`` with tag ``tag`` = ``value`` and ``status``, or
    None."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{tag}` = '{value}' and attributes.status = '{status}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


def finished_run(uri: str, experiment_id: str, job_key: str, code: str | None = None):
    """The newest FINISHED run of ``experiment_id`` tagged with ``job_key`` (and made by the
    code ``code``, :func:`pruneflow.tracking.provenance.code_version`, when given), or None."""
    client = store_client(uri)
    if code is None:
        return newest_run(client, experiment_id, JOB_KEY_TAG, job_key, "FINISHED")
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{JOB_KEY_TAG}` = '{job_key}' and tags.`{CODE_TAG}` = '{code}' "
        "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


def end_stale_runs(uri: str, experiment_id: str, host: str | None = None) -> list[str]:
    """Mark KILLED the RUNNING runs of ``experiment_id`` (and of the stored baselines',
    :data:`~pruneflow.results.BASELINE_EXPERIMENT`) that executed on this host (their ``host``
    tag) in a process that is gone (SIGKILL, a crash, a reboot, a store it could no longer
    reach or write); returns their ids."""
    import socket

    client = store_client(uri)
    host = host or socket.gethostname()
    ids = [experiment_id]
    baselines = client.get_experiment_by_name(BASELINE_EXPERIMENT)
    if baselines is not None and baselines.experiment_id != experiment_id:
        ids.append(baselines.experiment_id)
    ended = []
    for run in client.search_runs(
        ids,
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
        max_results=1000,
    ):
        pid = run.data.tags.get(PID_TAG, "")
        if not pid.isdigit() or process_alive(int(pid), run.info.start_time):
            continue
        for k, v in error_tags(
            f"its process {pid} on {host} is gone without ending the run (killed?)", "ProcessGone"
        ).items():
            client.set_tag(run.info.run_id, k, v)
        client.set_terminated(run.info.run_id, "KILLED")
        ended.append(run.info.run_id)
    return ended


def show_command(uri: str) -> str:
    """The command that shows the runs of store ``uri`` in MLflow's UI."""
    uri = without_password(uri)
    if is_server(uri):
        return f"open {uri} in a browser"
    return f"pruneflow ui --tracking-uri {uri}"
