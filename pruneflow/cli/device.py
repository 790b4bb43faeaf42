"""``pruneflow device check|setup``: what a device has, and what it needs installed there (for
an SSH device, a venv with the runner's packages)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from hydra.errors import HydraException

from pruneflow.config import check, register
from pruneflow.devices import readiness
from pruneflow.devices.base import open_device
from pruneflow.errors import DeviceError, PruneflowError


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
        dev = open_device(config.device)  # does not connect
        if args.action == "setup":
            facts = dev.setup(Path(args.wheels) if args.wheels else None)
            if facts is None:  # nothing to set up: the device said why
                return 0
            python = dev.resolved_python
        else:
            with dev:
                facts, python = dev.probe(delegate), dev.resolved_python
        print(f"device {dev.description}\n{readiness.describe(facts)}")
        ready = dev.judge(facts, python, delegate, config.benchmark.keras)
    except (PruneflowError, HydraException) as exc:  # one line for what the user can fix
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, DeviceError) else 2
    for note in ready.notes:
        print(f"  note: {note}")
    # what measures energy per image, or why nothing does
    said = ready.energy_note or "none" + (
        " (device.energy.source=auto: no PMIC here; a meter of yours: "
        "device.energy.source=command)" * (config.device.energy.source == "auto")
    )
    print(f"  energy: {ready.energy.label if ready.energy else said}")
    where = {"device": "on the device", "host": "on this machine", "off": "nowhere (off)"}
    used = facts.get("executable") or python
    print(f"ready: runs will use {used}; the Keras model is timed {where[ready.keras_on]}")
    return 0
