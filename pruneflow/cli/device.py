"""``pruneflow device check|setup``: what a device has, and a venv on it with the runner's
packages; and the ``pruneflow device setup ...`` command a failed check prints."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from hydra.errors import HydraException
from omegaconf import OmegaConf

from pruneflow.config import Config, check, register
from pruneflow.devices import readiness
from pruneflow.devices.base import DeviceError, open_device
from pruneflow.devices.config import DEFAULT_VENV
from pruneflow.devices.setup import setup
from pruneflow.errors import ConfigError, PruneflowError


def device_command(config: Config, action: str) -> str:
    """``pruneflow device <action> device=<option> device.<key>=<value> ...``: the command for
    this config's device, naming only what differs from the device option it starts from."""
    from importlib.resources import files

    dev = config.device
    options = files("pruneflow.conf") / "device"
    option = dev.name if (options / f"{dev.name}.yaml").is_file() else None
    option = option or ("ssh" if dev.remote else "local")
    preset = OmegaConf.load(options / f"{option}.yaml")
    preset.pop("defaults", None)
    base = OmegaConf.merge(OmegaConf.structured(type(dev)), preset)
    words = [f"pruneflow device {action}", f"device={option}"]
    for f in dataclasses.fields(dev):
        value = getattr(dev, f.name)
        if f.name != "_target_" and value != base.get(f.name):
            words.append(f"device.{f.name}={'null' if value is None else value}")
    return " ".join(words)


def main(argv: list[str]) -> int:
    """``pruneflow device check|setup [overrides] [--wheels DIR]``: what a device has, and a
    venv on it with the runner's packages. Overrides are the run's own (``device=rpi4
    device.host=...``): the same config a run composes, so a check speaks for the run."""
    from hydra import compose, initialize_config_module

    register()
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
        delegate = dataclasses.asdict(config.delegate)
        if args.action == "setup":
            if not config.device.remote:
                print(
                    f"{prog}: device={config.device.name} runs pruneflow's own Python here: "
                    "nothing to set up"
                )
                return 0
            if not config.device.venv:
                raise ConfigError(
                    "device.venv=null: setup makes a venv on the device; give its folder, "
                    f"e.g. device.venv={DEFAULT_VENV}"
                )
            if args.wheels and not Path(args.wheels).is_dir():
                raise ConfigError(f"--wheels {args.wheels} is not a folder")
            with open_device(config.device) as ssh:
                facts = setup(ssh, Path(args.wheels) if args.wheels else None)
                python, who = ssh.resolved_python, f"{ssh.name} ({ssh.address})"
        else:
            facts, python, who = readiness.probe(config.device, delegate)
        print(f"device {who}\n{readiness.describe(facts)}")
        ready = readiness.readiness(
            facts,
            python,
            who,
            config.device.remote,
            delegate,
            config.benchmark.keras,
            device_command(config, "setup"),
        )
    except (PruneflowError, HydraException) as exc:  # one line for what the user can fix
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, DeviceError) else 2
    for note in ready.notes:
        print(f"  note: {note}")
    where = {"device": "on the device", "host": "on this machine", "off": "nowhere (off)"}
    used = facts.get("executable") or python
    print(f"ready: runs will use {used}; the Keras model is timed {where[ready.keras_on]}")
    return 0
