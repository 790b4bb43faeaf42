"""A multirun as one study: checked whole, one parent run, progress lines, a summary.

Hydra runs the jobs (any launcher: basic, joblib, submitit, ray); this module is what
pruneflow adds around them, in Hydra's callback (:class:`SweepCallback`, named in
``conf/config.yaml``) and in each job (:func:`job_context`, used by the command line):

- before the first job: every job's config is composed and checked, each MLflow store and
  experiment is created once (parallel jobs race on them otherwise), runs of this host whose
  process is gone are marked KILLED, and a parent run is created, named after the sweep and
  tagged with its folder, overrides and number of jobs. ``<sweep dir>/sweep.json`` tells the
  jobs their parent (where workers share no folder, they find it in the store by the sweep's
  folder tag);
- each job nests its run under the parent, skips itself when its config already has a
  FINISHED run (resume, :mod:`pruneflow.pipeline`) and logs one line as it starts and ends;
- when the sweep ends, however it ends (:func:`end_open_sweeps` from the command line): the
  summary table (job, overrides, status, baseline accuracy, key metrics or the error), printed,
  written to ``<sweep dir>/sweep_summary.txt`` and logged to the parent, which ends FINISHED
  when every job finished or was skipped, FAILED when any failed, KILLED when interrupted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pruneflow import __version__, results, tracking
from pruneflow.config import check, exit_on_config_error, sweep_jobs

log = logging.getLogger(__name__)

SWEEP_FILE = "sweep.json"  # in the sweep folder: the parent runs and the jobs
_OPEN: list[Sweep] = []  # sweeps of this process whose parent run has not ended
_GRACE_S = 15.0  # an interrupted sweep waits this long for its jobs to end their runs


@dataclass
class Job:
    """One job of a sweep as listed before it runs."""

    num: int
    overrides: list[str]
    key: str  # its config's job key (results.JOB_KEY_TAG)
    uri: str
    experiment: str


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

    def write(self) -> None:
        path = Path(self.folder) / SWEEP_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))


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
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None, None
    run = tracking.newest_run(
        client, found.experiment_id, results.SWEEP_DIR_TAG, sweep_dir, "RUNNING"
    )
    if run is None:
        return None, None
    jobs = run.data.tags.get(results.SWEEP_JOBS_TAG, "")
    return run.info.run_id, int(jobs) if jobs.isdigit() and int(jobs) else None


class SweepCallback(Callback):
    """Hydra callback of every multirun (conf/config.yaml): checks every job's whole config
    before any job starts (so ``prune.sparsity=0.5,1.5`` fails before the first training),
    prepares each store once, ends stale runs, opens the parent run; and closes it at the end.
    Works with any sweeper or launcher."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.global_hydra import GlobalHydra

        loader = GlobalHydra.instance().config_loader()
        overrides = list(config.hydra.overrides.task)
        # what the sweeper sweeps: its `params` (e.g. from a preset), then the command line
        params = OmegaConf.select(config, "hydra.sweeper.params") or {}
        swept_keys = [f"{k}={v}" for k, v in params.items()] + overrides
        name, started = time.strftime("sweep-%Y-%m-%d-%H-%M-%S"), time.time()
        stores: dict[tuple[str, str], str] = {}
        jobs = []
        for num, job in enumerate(sweep_jobs(swept_keys, loader)):
            try:
                cfg = check(loader.load_sweep_config(config, job))
            except Exception as exc:  # noqa: BLE001 - any job that cannot compose stops all
                # Hydra turns a callback's exceptions into warnings; only an exit stops it.
                cause = f"{exc}\n{exc.__cause__}" if exc.__cause__ else str(exc)
                exit_on_config_error(f"in sweep job [{' '.join(job)}]: {cause}")
            t = cfg.tracking
            uri = tracking.resolve_uri(t.uri, t.dir)
            stores[(uri, t.experiment)] = t.dir
            jobs.append(Job(num, job, cfg.job_key, uri, t.experiment))
        # its folder only now: naming it makes it (conf/config.yaml), for a sweep that runs
        sweep = Sweep(name, str(config.hydra.sweep.dir), started, overrides)
        if _listed_ahead(swept_keys):  # else a sweeper chooses the jobs as it goes
            sweep.jobs = jobs
        try:
            for (uri, experiment), store_dir in sorted(stores.items()):
                experiment_id = tracking.prepare_store(uri, experiment, store_dir)
                for run_id in tracking.end_stale_runs(uri, experiment_id):
                    log.warning("run %s was left RUNNING by a process that is gone: KILLED", run_id)
                sweep.parents.append(_open_parent(sweep, uri, experiment, experiment_id))
        except tracking.TrackingError as exc:
            print(f"pruneflow: error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        sweep.write()
        _OPEN.append(sweep)
        log.info(
            "%s: %d jobs, parent run %s",
            sweep.name,
            len(sweep.jobs),
            ", ".join(p.run_id for p in sweep.parents),
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        end_open_sweeps(interrupted=False)


def _listed_ahead(overrides: list[str]) -> bool:
    """Whether every job of the sweep is known before it starts (no ``interval(...)``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return all(o.is_discrete_sweep() or not o.is_sweep_override() for o in parsed)


def _open_parent(sweep: Sweep, uri: str, experiment: str, experiment_id: str) -> Parent:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    tags = {
        results.SWEEP_TAG: sweep.name,
        results.SWEEP_DIR_TAG: sweep.folder,
        results.SWEEP_OVERRIDES_TAG: " ".join(sweep.overrides),
        results.SWEEP_JOBS_TAG: len(sweep.jobs) or "chosen by the sweeper",
        results.VERSION_TAG: __version__,
        results.HOST_TAG: socket.gethostname(),
        results.PID_TAG: os.getpid(),
        "mlflow.source.git.commit": tracking.git_commit(__file__),
    }
    run = client.create_run(
        experiment_id,
        run_name=sweep.name,
        tags={k: str(v) for k, v in tags.items() if v is not None},
    )
    jobs = [asdict(j) for j in sweep.jobs if (j.uri, j.experiment) == (uri, experiment)]
    client.log_text(run.info.run_id, json.dumps(jobs, indent=2), results.JOBS_FILE)
    return Parent(uri, experiment, experiment_id, run.info.run_id)


def end_open_sweeps(interrupted: bool) -> None:
    """End the parent runs of this process's sweeps: summary, artifacts, final status."""
    while _OPEN:
        sweep = _OPEN.pop()
        for parent in sweep.parents:
            try:
                _end_parent(sweep, parent, interrupted)
            except Exception as exc:  # noqa: BLE001 - the store may be what failed
                print(f"pruneflow: cannot end parent run {parent.run_id}: {exc}", file=sys.stderr)


@dataclass
class Row:
    num: int | str
    overrides: str
    status: str
    run_id: str
    metrics: dict[str, float]
    error: str = ""


def _end_parent(sweep: Sweep, parent: Parent, interrupted: bool) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=parent.uri)
    children = _children(client, parent)
    if interrupted:
        children = _end_interrupted(client, parent, children)
    rows = _rows(client, sweep, parent, children)
    failed = [r for r in rows if r.status not in ("FINISHED", "SKIPPED")]
    status = "KILLED" if interrupted else ("FAILED" if failed else "FINISHED")
    text = _summary(sweep, parent, rows, status)
    print(text, flush=True)
    path = Path(sweep.folder) / results.SUMMARY_FILE
    with contextlib.suppress(OSError):
        path.write_text(text + "\n")
    client.log_text(parent.run_id, text + "\n", results.SUMMARY_FILE)
    if any(r.status in ("FINISHED", "SKIPPED") for r in rows):
        from pruneflow.report import REPORT_MD, report_sweep

        out = Path(sweep.folder) / "report"
        try:
            best = report_sweep(parent.uri, parent.experiment, parent.run_id, out)
            print(
                f"report: {out / REPORT_MD} (also the parent run's report/)\nbest sparsity "
                f"(within 1 accuracy point of the baseline): {best}",
                flush=True,
            )
        except Exception as exc:  # noqa: BLE001 - the sweep's results stand without it
            print(f"pruneflow: no report for {sweep.name}: {exc}", file=sys.stderr)
    client.set_terminated(parent.run_id, status)


def _children(client, parent: Parent) -> list:
    return client.search_runs(
        [parent.experiment_id],
        filter_string=f"tags.`{results.PARENT_TAG}` = '{parent.run_id}'",
        order_by=["attributes.start_time DESC"],
        max_results=10000,
    )


def _end_interrupted(client, parent: Parent, children: list) -> list:
    """Give running jobs a moment to end their own runs KILLED; end the rest here."""
    deadline = time.monotonic() + _GRACE_S
    while True:
        running = [r for r in children if r.info.status == "RUNNING"]
        alive = [
            r
            for r in running
            if r.data.tags.get(results.PID_TAG, "").isdigit()
            and r.data.tags.get(results.HOST_TAG) == socket.gethostname()
            and int(r.data.tags[results.PID_TAG]) != os.getpid()
            and tracking.process_alive(int(r.data.tags[results.PID_TAG]), r.info.start_time)
        ]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.5)
        children = _children(client, parent)
    for r in running:
        for k, v in tracking.error_tags("the sweep was interrupted", "Interrupted").items():
            client.set_tag(r.info.run_id, k, v)
        client.set_terminated(r.info.run_id, "KILLED")
    return _children(client, parent) if running else children


def _rows(client, sweep: Sweep, parent: Parent, children: list) -> list[Row]:
    newest: dict[str, Any] = {}
    for run in children:  # newest first
        newest.setdefault(run.data.tags.get(results.JOB_KEY_TAG, run.info.run_id), run)
    rows = []
    for job in sweep.jobs:
        if (job.uri, job.experiment) != (parent.uri, parent.experiment):
            continue
        run = newest.pop(job.key, None)
        overrides = " ".join(swept(job.overrides, sweep.overrides))
        if run is not None:
            rows.append(_row(job.num, overrides, run))
            continue
        done = tracking.finished_run(parent.uri, parent.experiment_id, job.key)
        if done is not None:
            row = _row(job.num, overrides, done)
            row.status = "SKIPPED"
            rows.append(row)
        else:
            rows.append(Row(job.num, overrides, "NOT RUN", "", {}))
    for run in newest.values():  # jobs a sweeper chose as it went (not listed ahead)
        tags = run.data.tags
        rows.append(
            _row(tags.get(results.JOB_NUM_TAG, "?"), tags.get(results.JOB_OVERRIDES_TAG, ""), run)
        )
    return rows


def _row(num, overrides: str, run) -> Row:
    tags = run.data.tags
    return Row(
        num,
        overrides,
        run.info.status,
        run.info.run_id,
        dict(run.data.metrics),
        tags.get(results.ERROR_MESSAGE_TAG, ""),
    )


def _headline_variant(metrics: dict[str, float]) -> str:
    """The variant a summary shows: the last .tflite variant timed (int8 in the defaults)."""
    timed = [
        k.split("/")[0]
        for k in metrics
        if k.endswith("/" + results.latency("p50")) and not k.startswith(results.KERAS)
    ]
    order = ["tflite_int8", "tflite_int8_qat", "tflite_fp16", "tflite_dynamic", "tflite_fp32"]
    for v in order:
        if v in timed:
            return v
    return sorted(timed)[0] if timed else ""


def headline(metrics: dict[str, float]) -> str:
    """``tflite_int8 acc 0.983, p50 0.07 ms, gzip 12.3 KB``: the key numbers of a run."""
    variant = _headline_variant(metrics)
    if not variant:
        return "no variant timed"
    gz = metrics.get(results.metric(variant, results.GZIP), math.nan) / 1024
    acc = metrics.get(results.metric(variant, results.ACCURACY), math.nan)
    p50 = metrics.get(results.metric(variant, results.latency("p50")), math.nan)
    return f"{variant} acc {acc:.3f}, p50 {p50:.3g} ms, gzip {gz:.1f} KB"


def _summary(sweep: Sweep, parent: Parent, rows: list[Row], status: str) -> str:
    width = max([len("overrides"), *(len(r.overrides) for r in rows)])
    width = min(width, 60)
    lines = [
        f"{'job':>4}  {'overrides':<{width}}  {'status':<9}{'baseline':>9}  result",
    ]
    for r in rows:
        base = r.metrics.get(results.BASELINE_ACCURACY, math.nan)
        if r.status in ("FINISHED", "SKIPPED"):
            what = headline(r.metrics)
        else:
            what = r.error[:120] or ("" if r.status != "NOT RUN" else "never started")
        if r.run_id:
            what += f"  (run {r.run_id[:12]})" if what else f"(run {r.run_id[:12]})"
        ov = r.overrides if len(r.overrides) <= width else r.overrides[: width - 1] + "~"
        lines.append(f"{r.num!s:>4}  {ov:<{width}}  {r.status:<9}{base:>9.4f}  {what}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status.lower()] = counts.get(r.status.lower(), 0) + 1
    elapsed = time.time() - sweep.started
    said = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no jobs"
    lines += [
        "",
        f"{sweep.name} {status}: {said} in {_duration(elapsed)} (folder {sweep.folder})",
        f"results: parent run {parent.run_id}, experiment {parent.experiment!r} in "
        f"{parent.uri}; see them with: {tracking.show_command(parent.uri)}",
    ]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(round(seconds)), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m{s:02d}s" if hours else f"{m}m{s:02d}s"
