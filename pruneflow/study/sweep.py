"""A multirun as one study: checked whole, one parent run, progress lines, a summary.

Hydra runs the jobs (any launcher: basic, joblib, submitit, ray); this module is what
pruneflow adds around them, in Hydra's callback (:class:`SweepCallback`, named in
``conf/config.yaml``) and in each job (:func:`job_context`, used by the command line):

- before the first job: every job's config is composed and checked, so are its folders and
  tracking server (:func:`pruneflow.tracking.runs.check_before_work`), each MLflow store and
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
import os
import re
import socket
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pruneflow import __version__, results
from pruneflow.config import check
from pruneflow.errors import ConfigError, exit_on_user_error, one_line
from pruneflow.process import interrupt_point, process_alive, stderr_held
from pruneflow.steps import import_libraries
from pruneflow.study import search, summary
from pruneflow.study.jobs import Job, Parent, Sweep, listed_ahead, skipped_jobs, sweep_jobs
from pruneflow.tracking import provenance
from pruneflow.tracking.runs import (
    end_stale_runs,
    error_tags,
    finished_run,
    prepare_store,
    resolve_uri,
    store_client,
)
from pruneflow.tracking.store import TrackingError, check_before_work, no_space, server_down

log = logging.getLogger(__name__)

_OPEN: list[Sweep] = []  # sweeps of this process whose parent run has not ended
_GRACE_S = 15.0  # an interrupted sweep waits this long for its jobs to end their runs


class SweepCallback(Callback):
    """Hydra callback of every multirun (conf/config.yaml): checks every job's whole config
    before any job starts (so ``prune.sparsity=0.5,1.5`` fails before the first training),
    prepares each store once, ends stale runs, opens the parent run; and closes it at the end.
    Works with any sweeper or launcher."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.global_hydra import GlobalHydra

        loader = GlobalHydra.instance().config_loader()
        # as typed, as Hydra reads them: an interpolation in one (`x=${oc.env:V}`) is the
        # job's to resolve, and to refuse in one line when it cannot
        overrides = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        # what the sweeper sweeps: its `params` (e.g. from a preset), then the command line
        params = OmegaConf.select(config, "hydra.sweeper.params") or {}
        swept_keys = [f"{k}={v}" for k, v in params.items()] + overrides
        started = time.time()
        sweeper = OmegaConf.select(config, "hydra.sweeper")
        if search.is_search(sweeper):  # a search of no trial: said before its jobs are listed
            try:
                search.check_trials(sweeper)
            except ConfigError as exc:
                exit_on_user_error(str(exc))
        stores: dict[tuple[str, str], str] = {}
        needs: set[tuple[str, str, str]] = set()  # (uri, tracking.dir, paths.cache_dir)
        jobs, rounds = [], 0
        for num, job in enumerate(sweep_jobs(swept_keys, loader)):
            try:
                cfg = check(loader.load_sweep_config(config, job))
            except Exception as exc:  # noqa: BLE001 - any job that cannot compose stops all
                # Hydra turns a callback's exceptions into warnings; only an exit stops it.
                exit_on_user_error(f"in sweep job [{' '.join(job)}]: {one_line(exc)}")
            t = cfg.tracking
            uri = resolve_uri(t.uri, t.dir)
            stores[(uri, t.experiment)] = t.dir
            needs.add((uri, str(t.dir), str(cfg.paths.cache_dir)))
            jobs.append(Job(num, job, cfg.job_key, uri, t.experiment))
            rounds = max(rounds, t.compare_rounds)
        if not jobs and listed_ahead(swept_keys):  # no work, yet it would end FINISHED
            empty = [o for o in swept_keys if not sweep_jobs([o], loader)]
            exit_on_user_error(f"the sweep has no job: {' '.join(empty)} sweeps over no value")
        # its folder only now: naming it makes it (conf/config.yaml), for a sweep that runs
        folder = str(config.hydra.sweep.dir)
        sweep = Sweep(sweep_name(folder, started), folder, started, overrides)
        sweep.compare_rounds = rounds
        if search.is_search(sweeper):  # objectives against directions, before any trial
            wanted = search.directions(sweeper)
            try:
                search.check(cfg.search.objectives, wanted, cfg.stage.variants)
            except ConfigError as exc:
                exit_on_user_error(str(exc))
            sweep.objectives, sweep.directions = list(cfg.search.objectives), wanted
            sweep.searched = [str(k) for k in params]
        # else a sweeper chooses the jobs as it goes (a search: some of the listed ones)
        if listed_ahead(swept_keys) and not search.is_search(sweeper):
            sweep.jobs = jobs
        try:
            for uri, store_dir, cache_dir in sorted(needs):  # before job 0 and any run
                try:
                    check_before_work(uri, store_dir, cache_dir)
                except ConfigError as exc:
                    exit_on_user_error(str(exc))
            # jobs in this process (Hydra's basic launcher) import TensorFlow meanwhile, while
            # a new store is made by another process; a launcher's workers import their own
            meanwhile = _quiet_import_libraries if runs_jobs_here(config.hydra) else None
            for (uri, experiment), store_dir in sorted(stores.items()):
                experiment_id = prepare_store(uri, experiment, store_dir, meanwhile)
                for run_id in end_stale_runs(uri, experiment_id):
                    log.warning("run %s was left RUNNING by a process that is gone: KILLED", run_id)
                sweep.parents.append(_open_parent(sweep, uri, experiment, experiment_id))
        except TrackingError as exc:
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


def sweep_name(folder: str, started: float) -> str:
    """The sweep's (and its parent run's) name: ``sweep-<date>-<time>`` of its folder
    (``multirun/<date>/<time>``, or ``<time>_2`` ... where a sweep started in the same second
    took that: conf/config.yaml's ``new_folder``), so the name says the folder's second and
    sweeps started together differ; a folder of another form (``hydra.sweep.dir``): its start
    time."""
    path = Path(folder)
    if re.fullmatch(r"\d{4}-\d\d-\d\d", path.parent.name) and re.fullmatch(
        r"\d\d-\d\d-\d\d(_\d+)?", path.name
    ):
        return f"sweep-{path.parent.name}-{path.name}"
    return time.strftime("sweep-%Y-%m-%d-%H-%M-%S", time.localtime(started))


def _quiet_import_libraries() -> None:
    """The jobs' imports, before any job's log takes TensorFlow's start-up lines in: held off
    the console (said only if the import fails)."""
    with stderr_held():
        import_libraries()


def runs_jobs_here(hydra: DictConfig) -> bool:
    """Whether a sweep's jobs run in this process, one after another (Hydra's basic launcher),
    from ``hydra`` (the config's ``hydra`` node); a parallel launcher's run in its workers."""
    launcher = OmegaConf.select(hydra, "launcher._target_", default="") or ""
    return launcher.endswith(".BasicLauncher")


def _open_parent(sweep: Sweep, uri: str, experiment: str, experiment_id: str) -> Parent:
    client = store_client(uri)
    tags = {
        results.SWEEP_TAG: sweep.name,
        results.SWEEP_DIR_TAG: sweep.folder,
        results.SWEEP_OVERRIDES_TAG: " ".join(sweep.overrides),
        results.SWEEP_JOBS_TAG: len(sweep.jobs) or "chosen by the sweeper",
        results.VERSION_TAG: __version__,
        results.HOST_TAG: socket.gethostname(),
        results.PID_TAG: os.getpid(),
        results.GIT_COMMIT_TAG: provenance.git_commit(__file__),
    }
    if sweep.objectives:
        tags[results.OBJECTIVES_TAG] = ", ".join(
            f"{o}:{d}" for o, d in zip(sweep.objectives, sweep.directions, strict=True)
        )
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
            down = server_down(parent.uri)
            if down is not None:  # said by the job that found it gone, unless interrupted
                if interrupted:
                    print(
                        f"pruneflow: cannot end parent run {parent.run_id}: the MLflow tracking "
                        f"server {down[0]} does not answer ({down[1]}): the next pruneflow run "
                        "that reaches it ends it",
                        file=sys.stderr,
                    )
                continue
            try:
                _end_parent(sweep, parent, interrupted)
            except Exception as exc:  # noqa: BLE001 - the store may be what failed
                why = "no space left on device" if no_space(exc) else one_line(exc)
                print(
                    f"pruneflow: cannot end parent run {parent.run_id} ({why}): the next run "
                    "that can write the store ends it",
                    file=sys.stderr,
                )


def _end_parent(sweep: Sweep, parent: Parent, interrupted: bool) -> None:
    """End ``parent`` with its summary, report and final status; KILLED, saying so, when
    interrupted while it ends (Ctrl-C or SIGTERM in the report)."""
    client = store_client(parent.uri)
    try:
        status = _close_parent(sweep, parent, interrupted, client)
        interrupt_point()  # one swallowed on the way (a report's plots): the parent is KILLED
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):  # the parent still ends
            why = error_tags("interrupted as the sweep ended", "Interrupted")
            for k, v in why.items():
                client.set_tag(parent.run_id, k, v)
            client.set_terminated(parent.run_id, "KILLED")
        raise
    client.set_terminated(parent.run_id, status)


def _close_parent(sweep: Sweep, parent: Parent, interrupted: bool, client) -> str:
    """The summary, report, search front and compare of a sweep as it ends; its status."""
    children = _children(client, parent)
    if not sweep.jobs:  # chosen by the sweeper: those it resumed were noted on the parent
        sweep.jobs = skipped_jobs(client, parent.run_id)
        jobs = [asdict(j) for j in sweep.jobs]
        client.log_text(parent.run_id, json.dumps(jobs, indent=2), results.JOBS_FILE)
    if interrupted:
        children = _end_interrupted(client, parent, children)
    rows = summary.rows(client, sweep, parent, children)
    failed = [r for r in rows if r.status not in ("FINISHED", "SKIPPED")]
    status = "KILLED" if interrupted else ("FAILED" if failed else "FINISHED")
    text = summary.summary(sweep, parent, rows, status)
    print(text, flush=True)
    path = Path(sweep.folder) / results.SUMMARY_FILE
    with contextlib.suppress(OSError):
        path.write_text(text + "\n")
    client.log_text(parent.run_id, text + "\n", results.SUMMARY_FILE)
    done = any(r.status in ("FINISHED", "SKIPPED") for r in rows)
    if sweep.compare_rounds and not interrupted and not done:
        print(f"pruneflow: no compare for {sweep.name}: no job finished", file=sys.stderr)
    if done:
        from pruneflow.study.report import DEFAULT_TOLERANCE, report_sweep

        out = Path(sweep.folder) / results.REPORT_DIR
        try:
            best = report_sweep(parent.uri, parent.experiment, parent.run_id, out)
            dims = ["channels"] * bool(re.search(r"/c\d", best)) + ["clusters"] * ("/cl" in best)
            what = "/".join(["best sparsity", *dims])
            print(
                f"report: {out / results.REPORT_MD} (also the parent run's {results.REPORT_DIR}/)\n"
                f"{what} (non-inferior within {DEFAULT_TOLERANCE:g} accuracy points of the "
                f"baseline): {best}",
                flush=True,
            )
        except Exception as exc:  # noqa: BLE001 - the sweep's results stand without it
            print(f"pruneflow: no report for {sweep.name}: {exc}", file=sys.stderr)
        if sweep.objectives:
            _search_front(sweep, parent, client, children, out)
        if sweep.compare_rounds and not interrupted and _compare(sweep, parent, out):
            # the report again, now with the compare's ratios: written before the compare, a
            # sweep whose compare fails or is interrupted keeps its report
            with contextlib.suppress(Exception):
                report_sweep(parent.uri, parent.experiment, parent.run_id, out)
    return status


def _search_front(sweep: Sweep, parent: Parent, client, children: list, out: Path) -> None:
    """A search's end: its trials' Pareto front (pareto.csv, pareto_search.png) in the report
    folder and the parent's report/, the front's runs tagged on the parent, and printed."""
    trials = {r.info.run_id: r for r in children}
    for job in sweep.jobs:  # the trials it resumed: their FINISHED runs
        done = finished_run(parent.uri, parent.experiment_id, job.key)
        if done is not None:
            trials.setdefault(done.info.run_id, done)
    runs = list(trials.values())
    on = search.write_front(runs, sweep.objectives, sweep.directions, sweep.searched, out)
    for name in (results.FRONT_CSV, results.FRONT_PLOT):
        client.log_artifact(parent.run_id, str(out / name), results.REPORT_DIR)
    client.set_tag(parent.run_id, results.FRONT_TAG, ",".join(r.info.run_id for r in on))
    print(
        f"search: {len(on)} of {len(runs)} trials on the Pareto front of "
        f"{', '.join(sweep.objectives)}: {out / results.FRONT_CSV}",
        flush=True,
    )


def _compare(sweep: Sweep, parent: Parent, out: Path) -> bool:
    """``pruneflow compare --rounds <tracking.compare_rounds>`` on the sweep that just ended,
    into its report folder and its parent run; whether it was made (a failure is one line,
    the sweep stands)."""
    from pruneflow.study.compare import COLUMNS, TAIL, compare_sweep, lines
    from pruneflow.tracking.config import COMPARE_ROUNDS_KEY

    print(
        f"compare ({COMPARE_ROUNDS_KEY}={sweep.compare_rounds}): every .tflite variant and the "
        "dense baseline's, interleaved",
        flush=True,
    )
    try:
        with stderr_held():  # the converter's lines, as `pruneflow compare` holds them
            table, _ = compare_sweep(
                parent.uri,
                parent.experiment,
                parent.run_id,
                out,
                sweep.compare_rounds,
                say=lambda line: print(line, flush=True),
            )
    except Exception as exc:  # noqa: BLE001 - the sweep's results stand without it
        print(f"pruneflow: no compare for {sweep.name}: {one_line(exc)}", file=sys.stderr)
        return False
    settings = [k for k in table[0] if k not in (*COLUMNS, *TAIL)] if table else []
    print(lines(table, settings), flush=True)
    print(
        f"compare: {out / results.COMPARE_CSV} (also the parent run's {results.REPORT_DIR}/; "
        f"{results.REPORT_MD} shows its ratios)",
        flush=True,
    )
    return True


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
            and process_alive(int(r.data.tags[results.PID_TAG]), r.info.start_time)
        ]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.5)
        children = _children(client, parent)
    for r in running:
        for k, v in error_tags("the sweep was interrupted", "Interrupted").items():
            client.set_tag(r.info.run_id, k, v)
        client.set_terminated(r.info.run_id, "KILLED")
    return _children(client, parent) if running else children
