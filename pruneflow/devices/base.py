"""What every device is: a place where the self-contained runner (:mod:`.runner`) times
models, reached by a :class:`Device` that its config option names (``_target_``).

:class:`Device` is the whole contract between a device and the rest of pruneflow: what it can
do (check, set up, lock for timing, run the runner) and how it describes itself (its kind, its
address, the command that sets it up, where the Keras model is timed beside it). Nothing outside
:mod:`pruneflow.devices` knows which kind it holds. Every kind runs the same file with the same
command line, so local and remote numbers come from one code path:
:class:`pruneflow.devices.local.LocalDevice` runs it in a subprocess here,
:class:`pruneflow.devices.ssh.SSHDevice` ships it with the models and images over SSH. Every
failure is a :class:`DeviceError` naming the device and the step.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pruneflow.devices.energy import plan_energy
from pruneflow.devices.locks import LockWindow
from pruneflow.devices.readiness import Ready, has_keras, readiness
from pruneflow.devices.result import MalformedResult, RunnerResult
from pruneflow.devices.runner import KERAS_TIMING, POWER_SAMPLER
from pruneflow.errors import DeviceError

if TYPE_CHECKING:
    from pruneflow.devices.config import DeviceConfig

RUNNER = Path(__file__).with_name("runner.py")
RUNNER_NAME = "device_runner.py"  # the runner's file name on a device
SAMPLER = RUNNER.with_name(POWER_SAMPLER)  # shipped beside it, under its own name
KERAS_TIMER = RUNNER.with_name(KERAS_TIMING)  # likewise
BESIDE = (SAMPLER, KERAS_TIMER)  # what the runner loads from its own folder (runner._beside)


@dataclass
class Protocol:
    """How the runner times (``benchmark`` and ``device`` config keys): warm-up images before
    the timed ones, passes over the images, waiting for the CPU to cool before each model."""

    warmup: int = 0
    repeats: int = 1
    cooldown_c: float | None = None
    cooldown_max_s: float = 300.0
    energy: dict | None = None  # the energy pass (EnergyPlan.runner_arg), None: none

    def args(self) -> list[str]:
        extra = ["--warmup", str(self.warmup), "--repeats", str(self.repeats)]
        if self.energy:
            extra += ["--energy", json.dumps(self.energy)]
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


class Device(ABC):
    """A device built from its config option. Building one does not connect: ``with`` opens
    and closes it; :meth:`probe` and :meth:`benchmark` run inside it, :meth:`check` and
    :meth:`setup` open it themselves. :attr:`timings` holds the seconds of each step
    (connect_s, run_s ...)."""

    address = "this machine"  # where it is, in messages
    # how a venv made by hand on it is then used, after the commands a failed check prints
    venv_use = ""

    def __init__(self, config: DeviceConfig):
        self.config = config
        self.name = config.name
        self.timeout_s = config.timeout_s
        self.timings: dict[str, float] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    # -- what it says of itself ------------------------------------------------------------
    @property
    def kind(self) -> str:
        """Its kind, the ``device.kind`` tag (its schema's :attr:`~.config.DeviceConfig.kind`)."""
        return self.config.kind

    @property
    def description(self) -> str:
        """``<name> (<address>)``: the device in messages."""
        return f"{self.name} ({self.address})"

    @property
    def setup_command(self) -> str | None:
        """The ``pruneflow device setup ...`` command a failed check prints (None: a device
        with nothing to set up)."""
        return device_command(self.config, "setup")

    def keras_on(self, keras: str, facts: dict) -> str:
        """Where the Keras model can be timed for ``benchmark.keras=<keras>``, given the
        device's probe: ``device`` (by its runner, where its python has TensorFlow that loads
        Keras 2 models), ``host`` (on this machine, beside it) or ``off``. The check refuses
        ``keras=device`` where this says ``host``."""
        if keras in ("auto", "device"):
            return "device" if has_keras(facts.get("packages", {})) else "host"
        return keras

    # -- what it can do ---------------------------------------------------------------------
    @property
    @abstractmethod
    def resolved_python(self) -> str:
        """The runner's interpreter on the device, as shell words."""

    @abstractmethod
    def probe(self, delegate: dict) -> dict:
        """The runner's ``--probe`` on the device (what it has: python, packages, CPU ...)."""

    def judge(self, facts: dict, python: str, delegate: dict, keras: str) -> Ready:
        """Judge the device's probe (:func:`~.readiness.readiness`): the ready device, or a
        :class:`DeviceError` naming everything missing and the commands that fix it; with
        what measures its energy (:func:`~.energy.plan_energy`)."""
        ready = readiness(self, facts, python, delegate, keras)
        ready.energy, ready.energy_note = plan_energy(self.config.energy, facts, self.description)
        return ready

    def clock_offset(self) -> tuple[float, float]:
        """(the device's clock minus this machine's, its uncertainty), in seconds, for a
        meter that runs here (``device.energy.on=host``); this machine: (0, 0)."""
        return 0.0, 0.0

    def check(self, delegate: dict, keras: str) -> Ready:
        """Open the device, probe it and judge it (:meth:`judge`): before any work."""
        with self:
            facts, python = self.probe(delegate), self.resolved_python
        return self.judge(facts, python, delegate, keras)

    @abstractmethod
    def setup(self, wheels: Path | None = None, log: Callable[[str], None] = print) -> dict | None:
        """Install what the runner needs on the device (``wheels``: a folder of .whl files to
        install from), opening the device itself after checking its arguments; its probe
        after. None, with a line to ``log`` saying why, where there is nothing to set up."""

    @abstractmethod
    def check_timing_lock(self) -> None:
        """Refuse now, before any work, a timing lock that :meth:`timing_lock` could not take."""

    @abstractmethod
    def timing_lock(self) -> AbstractContextManager[LockWindow]:
        """Hold the device's timing lock for the block (:mod:`.locks`): one job times on a
        device at a time. Its :class:`~.locks.LockWindow` says when, and the wait here."""

    @abstractmethod
    def benchmark(
        self,
        models: list[Path],
        images_dir: Path,
        out_json: Path,
        delegate: dict,
        protocol: Protocol | None = None,
        keras: Path | None = None,
    ) -> RunnerResult:
        """Time ``models`` (and the Keras model ``keras``, where :meth:`keras_on` said
        ``device``) on the device, inside :meth:`timing_lock`; writes the runner's JSON result
        to ``out_json`` and returns it."""

    # -- for the kinds ---------------------------------------------------------------------
    def read_result(self, step: str, path: Path) -> RunnerResult:
        """The runner's result at ``path`` (:meth:`RunnerResult.read`); a malformed one is a
        :class:`DeviceError` of ``step``."""
        try:
            return RunnerResult.read(path)
        except MalformedResult as exc:
            raise self.error(step, str(exc)) from exc

    def error(self, step: str, why: str) -> DeviceError:
        """``device <name> (<address>): <step> failed: <why>``, to raise (no address for this
        machine)."""
        where = "" if self.address == Device.address else f" ({self.address})"
        return DeviceError(f"device {self.name}{where}: {step} failed: {why}")


def open_device(config: DeviceConfig) -> Device:
    """The :class:`Device` that ``config._target_`` names, built from ``config``; building it
    does not connect (as :func:`pruneflow.config.instantiate` builds any option)."""
    from hydra.utils import get_object

    return get_object(config._target_)(config)


def device_command(config: DeviceConfig, action: str) -> str:
    """``pruneflow device <action> device=<option> device.<key>=<value> ...``: the command for
    the device of ``config``, naming only what differs from the option it starts from (the
    packaged option of its name, else of its kind)."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    options = files("pruneflow.conf") / "device"
    option = next(
        (o for o in (config.name, config.kind) if (options / f"{o}.yaml").is_file()), config.kind
    )
    base = OmegaConf.structured(type(config))
    if (options / f"{option}.yaml").is_file():
        preset = OmegaConf.load(options / f"{option}.yaml")
        preset.pop("defaults", None)
        base = OmegaConf.merge(base, preset)
    words = [f"pruneflow device {action}", f"device={option}"]
    for key, value in _flat(dataclasses.asdict(config)).items():
        if key != "_target_" and value != OmegaConf.select(base, key):
            words.append(f"device.{key}={'null' if value is None else value}")
    return " ".join(words)


def _flat(node: dict, prefix: str = "") -> dict:
    """``{"energy.source": ...}`` from ``{"energy": {"source": ...}}``."""
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat
