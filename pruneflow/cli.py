"""Command line: the ``pruneflow`` console script and ``python -m pruneflow``.

The only module that knows Hydra's runtime: it composes the packaged configs
(``pkg://pruneflow.conf``, so every kind of install finds them from any folder), hands the
job its output folder, and turns errors a user can act on into one line on standard error.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from pruneflow.config import exit_on_config_error, register
from pruneflow.errors import ConfigError, PruneflowError
from pruneflow.process import Interrupted
from pruneflow.sweep import end_open_sweeps

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

INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C


class JobFailed(CompactHydraException):
    """A sweep job failed: Hydra prints this one line after the sweep (no traceback)."""


@hydra.main(version_base="1.3", config_path="pkg://pruneflow.conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    from pruneflow.config import check
    from pruneflow.pipeline import run
    from pruneflow.sweep import job_context
    from pruneflow.tracking import resolve_uri

    hydra_cfg = HydraConfig.get()
    try:
        config, job = check(cfg, hydra_cfg.runtime.choices), None
        if hydra_cfg.mode == RunMode.MULTIRUN:
            t = config.tracking
            job = job_context(
                hydra_cfg.sweep.dir,
                hydra_cfg.job.num,
                list(hydra_cfg.overrides.task),
                resolve_uri(t.uri, t.dir),
                t.experiment,
            )
        return run(config, output_dir=hydra_cfg.runtime.output_dir, job=job)
    except Exception as exc:  # noqa: BLE001 - one line for the user; the job log has the rest
        message = _describe(exc, hydra_cfg.runtime.output_dir)
        if hydra_cfg.mode == RunMode.MULTIRUN:  # the other jobs still run; Hydra reports after
            raise JobFailed(f"job {hydra_cfg.job.num}: {message}") from None
        if isinstance(exc, ConfigError):  # a bad value: status 2, like a bad argument
            exit_on_config_error(message)
        print(f"pruneflow: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None


def _describe(exc: Exception, output_dir: str) -> str:
    from pruneflow.errors import PruneflowError

    if isinstance(exc, PruneflowError):
        return str(exc)
    # Not a mistake the user made: say what and where the traceback is.
    return f"{type(exc).__name__}: {exc} (traceback in {output_dir}/pruneflow.log)"


def _terminate(signum, frame) -> None:
    raise Interrupted(f"terminated by {signal.Signals(signum).name}")


def ui(argv: list[str]) -> int:
    """``pruneflow ui``: MLflow's UI on the store runs write here (or ``--tracking-uri``)."""
    import argparse
    import os
    from pathlib import Path

    from pruneflow.tracking import resolve_uri

    parser = argparse.ArgumentParser(
        prog="pruneflow ui", description="MLflow's UI on this folder's runs."
    )
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tracking-uri", help="default: ./mlruns, or $MLFLOW_TRACKING_URI")
    args = parser.parse_args(argv)
    uri = resolve_uri(args.tracking_uri, "mlruns")
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
        print(
            f"pruneflow ui: error: no MLflow store at {uri[len('sqlite:///') :]}: run pruneflow "
            "in this folder first, or pass --tracking-uri",
            file=sys.stderr,
        )
        return 1
    print(f"MLflow UI for {uri} at http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    # the UI needs no job runner (MLflow's GenAI evaluation jobs: seven worker processes)
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    os.execve(sys.executable, [*command, "--host", args.host, "--port", str(args.port)], env)
    return 0  # not reached


def device(argv: list[str]) -> int:
    """``pruneflow device check|setup [overrides] [--wheels DIR]``: what a device has, and a
    venv on it with the runner's packages. Overrides are the run's own (``device=rpi4
    device.host=...``): the same config a run composes, so a check speaks for the run."""
    import argparse

    from hydra import compose, initialize_config_module

    from pruneflow import device as dev
    from pruneflow.config import check, device_command
    from pruneflow.pipeline import fields

    parser = argparse.ArgumentParser(
        prog="pruneflow device",
        description="check: probe the device (python, packages, delegates, disk, CPU state); "
        "setup: make device.venv on it and install the runner's packages there, from the "
        "device's own package index or from --wheels.",
    )
    parser.add_argument("action", choices=["check", "setup"])
    parser.add_argument("overrides", nargs="*", help="the run's overrides, e.g. device=rpi4")
    parser.add_argument("--wheels", help="setup: install from the .whl files in this folder")
    if not argv:  # argparse would also call the optional overrides required
        parser.error("an action is required: check or setup")
    args = parser.parse_intermixed_args(argv)
    prog = f"pruneflow device {args.action}"
    try:
        with initialize_config_module("pruneflow.conf", version_base="1.3"):
            # with Hydra's node, whose choices name the options in messages
            config = check(compose("config", overrides=args.overrides, return_hydra_config=True))
        options, delegate = fields(config.device), fields(config.delegate)
        if args.action == "setup":
            if config.device.kind != "ssh":
                print(
                    f"{prog}: device={config.device.name} runs pruneflow's own Python here: "
                    "nothing to set up"
                )
                return 0
            if not config.device.venv:
                raise ConfigError(
                    "device.venv=null: setup makes a venv on the device; give its folder, "
                    f"e.g. device.venv={dev.DEFAULT_VENV}"
                )
            if args.wheels and not Path(args.wheels).is_dir():
                raise ConfigError(f"--wheels {args.wheels} is not a folder")
            with dev.open_device(**options) as ssh:
                facts = ssh.setup(Path(args.wheels) if args.wheels else None)
                python, who = ssh.resolved_python, f"{ssh.name} ({ssh.address})"
        else:
            facts, python, who = dev.probe(options, delegate)
        print(f"device {who}\n{dev.describe(facts)}")
        ready = dev.readiness(
            facts,
            python,
            who,
            config.device.kind,
            delegate,
            config.benchmark.keras,
            device_command(config, "setup"),
        )
    except (PruneflowError, HydraException) as exc:  # one line for what the user can fix
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, dev.DeviceError) else 2
    for note in ready.notes:
        print(f"  note: {note}")
    where = {"device": "on the device", "host": "on this machine", "off": "nowhere (off)"}
    used = facts.get("executable") or python
    print(f"ready: runs will use {used}; the Keras model is timed {where[ready.keras_on]}")
    return 0


def cli() -> None:
    """The console script and ``python -m pruneflow``: Ctrl-C or SIGTERM prints one line and
    exits 130, with the interrupted run (and a sweep's parent run) marked KILLED; a sweep ends
    with its summary however it ends. ``pruneflow report ...``, ``pruneflow ui ...`` and
    ``pruneflow device check|setup ...`` are subcommands; everything else is Hydra's command
    line."""
    command = sys.argv[1:2]
    if command == ["report"]:
        from pruneflow.report import main as report

        raise SystemExit(report(sys.argv[2:]))
    if command == ["ui"]:
        raise SystemExit(ui(sys.argv[2:]))
    if command == ["device"]:
        raise SystemExit(device(sys.argv[2:]))
    signal.signal(signal.SIGTERM, _terminate)  # jobs install their own while they run
    try:
        main()
    except KeyboardInterrupt:
        end_open_sweeps(interrupted=True)
        print("pruneflow: interrupted", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    finally:
        end_open_sweeps(interrupted=False)  # a failed sweep (Hydra exits); no-op otherwise
