"""``pruneflow [overrides]`` and ``pruneflow -m ...``: Hydra's command line around one job.

The only module that knows Hydra's runtime: it composes the packaged configs
(``pkg://pruneflow.conf``, so every kind of install finds them from any folder), hands the
job its output folder and, in a sweep, its place in the study, and turns errors a user can act
on into one line on standard error.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from pruneflow.config import register
from pruneflow.errors import ConfigError, exit_on_user_error, one_line

_FOLDERS: dict[str, str] = {}  # this process's job folders, by the folder they are named after


def new_folder(base: str) -> str:
    """``${new_folder:outputs/<date>/<time>}`` (conf/config.yaml): ``base``, or ``base_2``,
    ``base_3``, ... where that is taken, made here with ``os.mkdir``, which only one process
    can do; so runs (and sweeps) started in the same second never share a folder. One answer
    per process (OmegaConf also caches it in the config, which a launcher's jobs receive)."""
    key = os.path.abspath(base)
    if key not in _FOLDERS:
        Path(base).parent.mkdir(parents=True, exist_ok=True)
        for n in itertools.count(1):
            folder = base if n == 1 else f"{base}_{n}"
            try:
                os.mkdir(folder)
            except FileExistsError:
                continue
            _FOLDERS[key] = folder
            break
    return _FOLDERS[key]


register()
OmegaConf.register_new_resolver("new_folder", new_folder, use_cache=True, replace=True)


class JobFailed(CompactHydraException):
    """A sweep job failed: Hydra prints this one line after the sweep (no traceback)."""


@hydra.main(version_base="1.3", config_path="pkg://pruneflow.conf", config_name="config")
def main(cfg: DictConfig) -> dict | list[float] | None:
    """One job. Under Hydra's Optuna sweeper (a search) it returns the values of
    ``search.objectives`` (None for a failed trial: Optuna records it failed and goes on), else
    the run's metrics."""
    from pruneflow.config import check
    from pruneflow.pipeline import run
    from pruneflow.study import search
    from pruneflow.study.jobs import job_context
    from pruneflow.study.sweep import runs_jobs_here
    from pruneflow.tracking.runs import resolve_uri
    from pruneflow.tracking.store import DiskFull, StoreGone, TrackingError, lost, no_space

    hydra_cfg = HydraConfig.get()
    objectives, uri = None, None
    _live_progress(hydra_cfg)
    try:
        config, job = check(cfg, hydra_cfg.runtime.choices), None
        uri = resolve_uri(config.tracking.uri, config.tracking.dir)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            if search.is_search(hydra_cfg.sweeper):
                objectives = config.search.objectives
            t = config.tracking
            job = job_context(
                hydra_cfg.sweep.dir,
                hydra_cfg.job.num,
                list(hydra_cfg.overrides.task),
                uri,
                t.experiment,
            )
        metrics = run(config, output_dir=hydra_cfg.runtime.output_dir, job=job)
        if objectives is None:
            return metrics
        values = search.trial_result(metrics, objectives)
        if values is None:
            print(
                f"pruneflow: job {hydra_cfg.job.num} logged no {', '.join(objectives)}: Optuna "
                "counts it as a failed trial",
                file=sys.stderr,
            )
        return values
    except Exception as exc:  # noqa: BLE001 - one line for the user; the job log has the rest
        if not isinstance(exc, TrackingError):  # not MLflow's error: the store or disk it names
            gone = lost(uri) if uri else None
            full = no_space(exc, uri) if not gone else None
            exc = StoreGone(gone) if gone else DiskFull(full) if full else exc
        message = _describe(exc, hydra_cfg.runtime.output_dir)
        if objectives is not None:  # a failed trial: Optuna marks it failed, the search goes on
            print(f"pruneflow: job {hydra_cfg.job.num} failed: {message}", file=sys.stderr)
            return search.trial_result(None, objectives)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            if isinstance(exc, TrackingError) and runs_jobs_here(hydra_cfg):
                # the store (or disk) every later job needs: stop here (Hydra's basic launcher
                # would run them all, each failing on it) and say it once
                print(f"pruneflow: error: {message}", file=sys.stderr)
                raise SystemExit(1) from None
            # the other jobs still run; Hydra reports after
            raise JobFailed(f"job {hydra_cfg.job.num}: {message}") from None
        if isinstance(exc, ConfigError):  # a bad value: status 2, like a bad argument
            exit_on_user_error(message)
        print(f"pruneflow: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None


@contextlib.contextmanager
def config_errors_exit_2():
    """A composition error Hydra reports itself (a value of the wrong type, an unknown key or
    option, a bad override) as one line and status 2, like every other config mistake: Hydra
    prints several lines and exits 1 where it composes (a single run, a sweep's first config),
    while a sweep's own check of every job exits 2. Hydra's own writes on a full disk (a job's
    folder): one line naming it, status 1. HYDRA_FULL_ERROR=1 keeps Hydra's trace."""
    from hydra._internal import utils as hydra_utils
    from hydra.errors import ConfigCompositionException, OverrideParseException, SearchPathException

    from pruneflow.tracking.store import no_space

    mistakes = (ConfigCompositionException, OverrideParseException, SearchPathException)
    report = hydra_utils.run_and_report  # what Hydra calls around composing and running

    def run_and_report(func):
        def composed():
            try:
                return func()
            except mistakes as exc:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                exit_on_user_error(one_line(exc))
            except OSError as exc:  # Hydra's own writes (a job's folder) on a full disk
                full = no_space(exc)
                if full is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"pruneflow: error: {full}", file=sys.stderr)
                raise SystemExit(1) from None

        return report(composed)

    hydra_utils.run_and_report = run_and_report
    try:
        yield
    finally:
        hydra_utils.run_and_report = report


def check_swept_group_keys(argv: list[str]) -> None:
    """A multirun over a group's options with a key of that group
    (``-m backbone=resnet50,vgg16 backbone.weights=null``): Hydra composes the default option
    first, and refuses a key that option lacks with a multi-line error. Say in one line that
    ``++backbone.weights=null`` sets it in every job (it works), and exit 2."""
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException

    args, _ = get_args_parser().parse_known_args(argv)
    if not args.multirun or args.config_dir or args.config_path or args.config_name:
        return
    try:
        parsed = OverridesParser.create().parse_overrides(args.overrides)
    except HydraException:
        return  # Hydra says what is wrong with the overrides itself
    swept = {
        o.key_or_group: o for o in parsed if o.is_sweep_override() and "." not in o.key_or_group
    }
    keys = [
        o
        for o in parsed
        if not o.is_sweep_override()
        and o.key_or_group.split(".")[0] in swept
        and "." in o.key_or_group
        and not (o.is_add() or o.is_force_add())
    ]
    if not keys:
        return
    from hydra import compose, initialize_config_module

    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    try:
        with initialize_config_module("pruneflow.conf", version_base="1.3"):
            compose("config", overrides=fixed)
    except ConfigCompositionException as exc:
        for o in keys:
            if f"Could not override '{o.key_or_group}'" in str(exc):
                group = o.key_or_group.split(".")[0]
                value = o.input_line.split("=", 1)[1]
                exit_on_user_error(
                    f"{o.key_or_group} is not a key of the default {group} option, which Hydra "
                    f"composes before the sweep over {swept[group].input_line}: write "
                    f"++{o.key_or_group}={value} to set it in every job"
                )
    finally:
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()


def _live_progress(hydra_cfg) -> None:
    """A fit also redraws a live line within each epoch (:data:`pruneflow.progress.live`) when
    standard output, where the console's log lines go, is a terminal and this job has it to
    itself: a single run, or a sweep whose jobs Hydra's basic launcher runs one after another
    in this process. A parallel launcher's workers (joblib, submitit, ray) say plain lines."""
    from pruneflow import progress
    from pruneflow.study.sweep import runs_jobs_here

    alone = hydra_cfg.mode == RunMode.RUN or runs_jobs_here(hydra_cfg)
    progress.live = alone and sys.stdout.isatty()


def _describe(exc: Exception, output_dir: str) -> str:
    from pruneflow.errors import PruneflowError
    from pruneflow.results import LOG_FILE

    if isinstance(exc, PruneflowError):
        return str(exc)
    # Not a mistake the user made: say what and where the traceback is.
    return f"{type(exc).__name__}: {exc} (traceback in {output_dir}/{LOG_FILE})"
