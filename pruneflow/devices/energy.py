"""What measures a device's energy, decided at the device check before any work
(:meth:`pruneflow.devices.base.Device.judge`): ``device.energy`` (:class:`~.config.EnergyConfig`)
against what the device's probe found (``vcgencmd pmic_read_adc``'s output, the meter command's
when it runs there) or what the meter command prints here (``device.energy.on=host``).

A source asked for by name that cannot measure is refused in one line naming the key, the
command and what it printed; ``auto`` without a PMIC measures nothing: on a Raspberry Pi
without one (a Pi 4) it says so once, elsewhere (no ``vcgencmd``) it says nothing to the run,
only to ``pruneflow device check``."""

from __future__ import annotations

from dataclasses import dataclass

from pruneflow.devices import power_sampler
from pruneflow.devices.config import EnergyConfig
from pruneflow.devices.runner import try_command
from pruneflow.errors import DeviceError

PMIC_READ = " ".join(power_sampler.PMIC_COMMAND)


@dataclass
class EnergyPlan:
    """A source that measured once at the check: ``pmic`` or ``command`` (run ``on`` the device
    or the host), and the pass's windows."""

    source: str
    on: str
    command: str | None
    window_s: float
    idle_s: float
    period_s: float

    @property
    def label(self) -> str:
        """The ``energy.source`` tag: ``pmic``, or ``command: <command> (on device|host)``."""
        if self.source == "pmic":
            return "pmic"
        return f"command: {self.command} (on {self.on})"

    def runner_arg(self) -> dict:
        """The runner's ``--energy`` JSON (``source=host``: the device runs the windows and
        samples nothing; the meter runs here)."""
        source = "host" if self.source == "command" and self.on == "host" else self.source
        return {
            "source": source,
            "command": self.command if source == "command" else None,
            "window_s": self.window_s,
            "idle_s": self.idle_s,
            "period_s": self.period_s,
        }


def probe_arg(config: EnergyConfig) -> dict | None:
    """The probe's ``--energy`` JSON: the meter command where it runs on the device (tried
    there once), else None."""
    on_device = config.source == "command" and config.on == "device"
    return {"command": config.command} if on_device else None


def plan_energy(config: EnergyConfig, facts: dict, device: str) -> tuple[EnergyPlan | None, str]:
    """(the plan, or None; a note where ``auto`` found nothing to measure with). Raises
    :class:`DeviceError` naming ``device`` for a source asked for by name that cannot measure.
    ``facts``: the device's probe (its ``energy`` key: :func:`pruneflow.devices.runner.
    energy_facts`)."""
    if config.source == "none":
        return None, ""
    tried = facts.get("energy", {})
    windows = (config.window_s, config.idle_s, config.period_s)
    if config.source in ("auto", "pmic"):
        why = _fails(tried.get("pmic"), power_sampler.pmic_watts, "vcgencmd is not installed")
        if why is None:
            return EnergyPlan("pmic", "device", None, *windows), ""
        if config.source == "pmic":
            raise DeviceError(
                f"device {device}: check failed: device.energy.source=pmic, but `{PMIC_READ}` "
                f"gives no power there ({why}); a Raspberry Pi 5 has a PMIC it reads; elsewhere "
                "device.energy.source=command with your meter's command, or none"
            )
        if tried.get("pmic") is None:  # no vcgencmd: not a Raspberry Pi, nothing to say
            return None, ""
        return None, (  # a Pi without a PMIC (a Pi 4): its runs say why they have no energy
            f"device.energy.source=auto: no PMIC on {device} (`{PMIC_READ}`: {why}): no energy "
            "numbers; a meter of yours: device.energy.source=command"
        )
    if config.on == "host":
        result = try_command(config.command)  # as the probe tries it on a device
        where = "this machine"
    else:
        result, where = tried.get("command"), device
    why = _fails(result, power_sampler.command_watts, "not tried")
    if why is not None:
        raise DeviceError(
            f"device {device}: check failed: device.energy.command={config.command!r} "
            f"(device.energy.on={config.on}) gives no watts on {where}: {why}; it must print "
            "watts, a number on its last line"
        )
    return EnergyPlan("command", config.on, config.command, *windows), ""


def _fails(result: dict | None, parse, absent: str) -> str | None:
    """Why a tried command (``{rc, out}``) gave no watts; None where it did."""
    if result is None:
        return absent
    out = (result.get("out") or "").strip()
    if result.get("rc") != 0:
        return f"exit status {result.get('rc')}: {out[-300:]!r}"
    try:
        parse(out)
    except power_sampler.SampleError as exc:
        return str(exc)
    return None
