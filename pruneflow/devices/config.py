"""The ``device`` and ``delegate`` groups' schemas. Light: no TensorFlow, no Fabric.

A device kind is a :class:`DeviceConfig` subclass (its schema, which says its :attr:`~DeviceConfig.
kind`), the :class:`pruneflow.devices.base.Device` subclass its ``_target_`` names (which receives
the option itself: :func:`pruneflow.devices.base.open_device`), and options that extend the
schema. Nothing else lists the kinds: :func:`kinds` finds the schemas, :func:`schema_of` the
schema of a device class. A kind of yours lives in a module of yours, which an entry point of
the group :data:`ENTRY_POINTS` names (:func:`load_kinds`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from pruneflow.devices import runner
from pruneflow.errors import ArgumentError, positive, require

ENTRY_POINTS = "pruneflow.devices"  # the group of the entry points that name kinds of yours
DEFAULT_VENV = "~/.pruneflow/venv"  # on the device: made by `pruneflow device setup`
ENERGY_SOURCES = ("auto", "pmic", "command", "none")
ENERGY_ON = ("device", "host")  # where the meter command runs


@dataclass
class EnergyConfig:
    """Energy per image (``device.energy``; docs/energy.md): after each variant's timed passes,
    power sampled while the device idles for ``idle_s``, then while it runs the variant back to
    back for at least ``window_s``."""

    # auto: the PMIC where the device has a working `vcgencmd pmic_read_adc` (a Raspberry Pi 5),
    # else no energy numbers and one note | pmic | command (your meter's command) | none
    source: str = "auto"
    command: str | None = None  # source=command: prints watts (the first number on its last line)
    on: str = "device"  # where the command runs: device | host (this machine, beside the device)
    window_s: float = 10.0  # the running window, at least this long
    idle_s: float = 3.0  # the idle window before it
    period_s: float = 0.1  # between power samples (a Pi 5's PMIC read takes ~23 ms)

    def __post_init__(self) -> None:
        valid = str(list(ENERGY_SOURCES))
        require(self.source in ENERGY_SOURCES, "energy.source", self.source, valid)
        require(self.on in ENERGY_ON, "energy.on", self.on, str(list(ENERGY_ON)))
        require(
            self.source != "command" or bool(self.command),
            "energy.command",
            self.command,
            "device.energy.source=command runs your meter's command, which prints watts: give it, "
            "e.g. device.energy.command='cat /run/watts'",
            required=True,
        )
        require(positive(self.period_s), "energy.period_s", self.period_s, "finite seconds > 0")
        for key in ("window_s", "idle_s"):
            value = getattr(self, key)
            require(
                positive(value) and value >= 2 * self.period_s,
                f"energy.{key}",
                value,
                f"seconds >= 2 x device.energy.period_s = {2 * self.period_s:g} (two power "
                "samples)",
            )


@dataclass
class DeviceConfig:
    """What every device option has. A subclass with a :attr:`kind` is a device kind's schema
    (registered as ``schema/device/<kind>``, which its options extend)."""

    kind: ClassVar[str] = ""  # the `device.kind` tag of its runs (local, ssh ...)
    _target_: str = MISSING  # the Device class that runs the runner there
    name: str = MISSING  # a label: tags the run's numbers
    timeout_s: float = 600.0  # the runner's time limit
    # Before each model, wait until the CPU is cooler than this (degrees C; null: do not wait),
    # at most cooldown_max_s. Where the device has no thermal zone the run says it skipped.
    cooldown_c: float | None = None
    cooldown_max_s: float = 300.0  # the longest wait for cooldown_c
    energy: EnergyConfig = field(default_factory=EnergyConfig)  # energy per image

    def __post_init__(self) -> None:
        require(bool(self.name), "name", self.name, "a non-empty label")
        require(positive(self.timeout_s), "timeout_s", self.timeout_s, "finite seconds > 0")
        require(
            self.cooldown_c is None or positive(self.cooldown_c),
            "cooldown_c",
            self.cooldown_c,
            "null (do not wait) or finite degrees Celsius > 0",
        )
        max_s = self.cooldown_max_s
        require(positive(max_s), "cooldown_max_s", max_s, "finite seconds > 0")


@dataclass
class LocalDeviceConfig(DeviceConfig):
    """This machine: the runner runs in a subprocess."""

    kind: ClassVar[str] = "local"
    _target_: str = "pruneflow.devices.local.LocalDevice"
    name: str = "local"
    python: str | None = None  # the runner's interpreter; null: pruneflow's own Python


@dataclass
class SSHDeviceConfig(DeviceConfig):
    """A machine reached over SSH (Fabric), e.g. a Raspberry Pi."""

    kind: ClassVar[str] = "ssh"
    _target_: str = "pruneflow.devices.ssh.SSHDevice"
    name: str = "ssh"
    # the runner's interpreter (or command) on the device, and the one `pruneflow device setup`
    # makes the venv with; a venv at `venv` (~: the device user's home) takes its place once it
    # exists; venv=null: always this python
    python: str = "python3"
    venv: str | None = DEFAULT_VENV  # the venv `pruneflow device setup` makes
    host: str | None = None  # required
    port: int = 22  # the SSH port
    user: str | None = None  # null: your local user name (or ~/.ssh/config)
    key_file: str | None = None  # null: your default keys and ssh-agent
    known_hosts: str = "~/.ssh/known_hosts"  # host keys are verified against it
    accept_new_host: bool = False  # true: trust and record a host seen for the first time
    use_ssh_config: bool = False  # true: also read ~/.ssh/config
    workdir: str | None = None  # parent of the remote work folder; null: the device's /tmp
    connect_timeout_s: float = 10.0  # the SSH connection's time limit

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            bool(self.host),
            "host",
            self.host,
            "an SSH device needs a host name or address, e.g. device.host=raspberrypi.local",
            required=True,
        )
        require(1 <= self.port <= 65535, "port", self.port, "integers in [1, 65535]")
        require(
            positive(self.connect_timeout_s),
            "connect_timeout_s",
            self.connect_timeout_s,
            "finite seconds > 0",
        )


@dataclass
class DelegateConfig:
    """Which kernels LiteRT runs the .tflite variants with (group `delegate`); the delegates
    themselves are the runner's (:data:`pruneflow.devices.runner.DELEGATES`)."""

    name: str = "xnnpack"  # none | xnnpack | armnn | external
    threads: int | None = 1  # null: the runtime's default
    fallback: str = "builtin"  # when the delegate cannot run a model: builtin | error
    library: str | None = None  # armnn, external: the delegate's library on the device
    options: dict[str, Any] = field(default_factory=dict)  # the delegate's own options

    def __post_init__(self) -> None:
        with runner_arguments():
            runner.check_delegate(self.name, self.threads, self.fallback, self.library)


@contextlib.contextmanager
def runner_arguments() -> Iterator[None]:
    """The runner's :class:`~pruneflow.devices.runner.ArgumentError` (the runner imports nothing
    of pruneflow) as pruneflow's :class:`~pruneflow.errors.ArgumentError`, for the checks the
    host borrows from the runner (delegate, protocol)."""
    try:
        yield
    except runner.ArgumentError as exc:
        raise ArgumentError(exc.name, exc.value, exc.valid, required=exc.required) from None


def kinds() -> dict[str, type[DeviceConfig]]:
    """{kind: its schema} for every :class:`DeviceConfig` subclass with a kind defined so far
    (pruneflow's own; a kind of yours once its module is imported)."""
    found, todo = {}, list(DeviceConfig.__subclasses__())
    while todo:
        schema = todo.pop(0)
        todo += schema.__subclasses__()
        if vars(schema).get("kind"):  # its own kind, not one it inherits
            found.setdefault(schema.kind, schema)
    return found


def load_kinds() -> dict[str, type[DeviceConfig]]:
    """:func:`kinds`, with those of the modules the installed :data:`ENTRY_POINTS` name
    imported first (a module of yours defines a kind's schema and class, and may store its
    options in Hydra's ConfigStore)."""
    from importlib.metadata import entry_points

    for plugin in entry_points(group=ENTRY_POINTS):
        plugin.load()
    return kinds()


def schema_of(target: str) -> type[DeviceConfig] | None:
    """The schema whose ``_target_`` is the device class ``target`` (imported first, so that a
    kind defined beside its class is found); None where no schema names it."""
    import importlib

    with contextlib.suppress(ImportError, ValueError):  # none: no schema names it
        importlib.import_module(str(target).rpartition(".")[0])
    return next((s for s in kinds().values() if s._target_ == target), None)


SCHEMAS = kinds()  # pruneflow's own kinds
