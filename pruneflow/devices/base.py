"""What every device is: a place where the self-contained runner (:mod:`.runner`) times
models, reached by a :class:`Device` that its config option names (``_target_``).

Both kinds run the same file with the same command line, so local and remote numbers come from
one code path: :class:`pruneflow.devices.local.LocalDevice` runs it in a subprocess here,
:class:`pruneflow.devices.ssh.SSHDevice` ships it with the models and images over SSH. Every
failure is a :class:`DeviceError` naming the device and the step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pruneflow.errors import PruneflowError

if TYPE_CHECKING:
    from pruneflow.devices.config import DeviceConfig

RUNNER = Path(__file__).with_name("runner.py")
RUNNER_NAME = "device_runner.py"  # the runner's file name on a device


class DeviceError(PruneflowError, RuntimeError):
    """A device step failed; the message names the device and the step."""


@dataclass
class Protocol:
    """How the runner times (``benchmark`` and ``device`` config keys): warm-up images before
    the timed ones, passes over the images, waiting for the CPU to cool before each model."""

    warmup: int = 0
    repeats: int = 1
    cooldown_c: float | None = None
    cooldown_max_s: float = 300.0

    def args(self) -> list[str]:
        extra = ["--warmup", str(self.warmup), "--repeats", str(self.repeats)]
        if self.cooldown_c is not None:
            extra += [
                "--cooldown-c",
                str(self.cooldown_c),
                "--cooldown-max-s",
                str(self.cooldown_max_s),
            ]
        return extra


def runner_args(
    images: str,
    out: str,
    delegate: dict,
    models: list[str],
    protocol: Protocol,
    keras: str | None = None,
) -> list[str]:
    return [
        "--images",
        images,
        "--out",
        out,
        "--delegate",
        json.dumps(delegate),
        *protocol.args(),
        *(["--keras", keras] if keras else []),
        *models,
    ]


# What a device lacks, and the command that installs it there (Debian / Raspberry Pi OS)


class Device:
    """A device built from its config option. Building one does not connect: ``with`` opens
    and closes it. :attr:`timings` holds the seconds of each step (connect_s, run_s ...)."""

    address = "this machine"

    def __init__(self, config: DeviceConfig):
        self.config = config
        self.name = config.name
        self.timeout_s = config.timeout_s
        self.timings: dict[str, float] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    @property
    def resolved_python(self) -> str:
        """The runner's interpreter on the device, as shell words."""
        raise NotImplementedError

    def probe(self, delegate: dict) -> dict:
        """The runner's ``--probe`` on the device (what it has: python, packages, CPU ...)."""
        raise NotImplementedError

    def benchmark(
        self,
        models: list[Path],
        images_dir: Path,
        out_json: Path,
        delegate: dict,
        protocol: Protocol | None = None,
        keras: Path | None = None,
    ) -> dict:
        """Time ``models`` (and the Keras model ``keras``, where the device has TensorFlow)
        on the device; writes the runner's JSON result to ``out_json`` and returns it."""
        raise NotImplementedError

    def _fail(self, step: str, why: str) -> DeviceError:
        where = "" if self.address == Device.address else f" ({self.address})"
        return DeviceError(f"device {self.name}{where}: {step} failed: {why}")


def open_device(config: DeviceConfig) -> Device:
    """The :class:`Device` that ``config._target_`` names, built from ``config``; building it
    does not connect."""
    from pruneflow.config import instantiate

    return instantiate(config)
