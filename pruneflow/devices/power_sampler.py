"""Power samples for the energy pass: standard library only, shipped beside the device runner.

The runner (:mod:`.runner`) loads this file from its own folder only when energy is asked
(``--energy``), on a device or here; pruneflow reads the same parsers on this machine (the
device check, and a meter that runs here: ``device.energy.on=host``). Nothing of pruneflow is
imported: the file runs alone on a Raspberry Pi.

Two sources of watts:

- ``pmic``: a Raspberry Pi 5's ``vcgencmd pmic_read_adc``, which prints each PMIC rail's current
  and voltage (``VDD_CORE_A current(7)=0.56259000A``, ``VDD_CORE_V volt(15)=0.76798460V``);
  power is the sum of V x I over the rails that have both (``EXT5V_V`` and ``BATT_V`` are
  voltages only, and count for nothing).
- ``command``: the user's meter command, run by ``sh -c``; watts are the first number on the
  last non-empty line of what it prints (``2.31``, ``power: 2.31 W``).

:func:`energy_pass` is the pass itself: idle, then inferences back to back for a window, with
a :class:`Sampler` reading power in a thread throughout (or none where the meter runs on this
machine: ``source="host"``).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time

PMIC_COMMAND = ("vcgencmd", "pmic_read_adc")
READ_TIMEOUT_S = 10.0  # one read of the PMIC or the meter; a hung meter is a failed sample
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CURRENT = re.compile(rf"^\s*(\S+)_A\s+current\(\d+\)\s*=\s*({_NUMBER})\s*A\s*$")
_VOLT = re.compile(rf"^\s*(\S+)_V\s+volt\(\d+\)\s*=\s*({_NUMBER})\s*V\s*$")
_ANY_NUMBER = re.compile(_NUMBER)


class SampleError(ValueError):
    """A read that gave no watts; the message holds what it printed."""


def pmic_watts(text: str) -> float:
    """Watts from ``vcgencmd pmic_read_adc``'s output: the sum of V x I over the rails with both
    a current (``<RAIL>_A current(N)=...A``) and a voltage (``<RAIL>_V volt(N)=...V``)."""
    currents, volts = {}, {}
    for line in text.splitlines():
        m = _CURRENT.match(line)
        if m:
            currents[m.group(1)] = float(m.group(2))
        m = _VOLT.match(line)
        if m:
            volts[m.group(1)] = float(m.group(2))
    rails = sorted(set(currents) & set(volts))
    if not rails:
        raise SampleError(f"no rail with both a current and a voltage in {_short(text)!r}")
    return sum(currents[r] * volts[r] for r in rails)


def command_watts(text: str) -> float:
    """Watts from a meter command's output: the first number on its last non-empty line."""
    lines = [line for line in text.splitlines() if line.strip()]
    found = _ANY_NUMBER.search(lines[-1]) if lines else None
    if found is None:
        raise SampleError(f"no number on the last line of {_short(text)!r}")
    return float(found.group(0))


def _short(text: str, n: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


def _run(argv) -> str:
    """``argv``'s standard output; :class:`SampleError` where it fails."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=READ_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SampleError(f"{type(exc).__name__}: {exc}") from None
    if proc.returncode != 0:
        said = _short(proc.stderr or proc.stdout)
        raise SampleError(f"exit status {proc.returncode}: {said!r}")
    return proc.stdout


def reader(source: str, command: str | None = None):
    """A function that reads watts once from ``source`` (``pmic`` or ``command``)."""
    if source == "pmic":
        return lambda: pmic_watts(_run(PMIC_COMMAND))
    if source == "command" and command:
        return lambda: command_watts(_run(["sh", "-c", command]))
    raise ValueError(f"source={source!r} is invalid: valid values are pmic, command (with one)")


class Sampler:
    """Reads watts every ``period_s`` (or as fast as a read goes) in a thread, from :meth:`start`
    to :meth:`stop`. Each sample is stamped with the middle of its read (``time.time()``); a
    read that fails is kept apart with what it printed."""

    def __init__(self, read, period_s: float):
        self.read, self.period_s = read, period_s
        self.times: list[float] = []
        self.watts: list[float] = []
        self.failures: list[list] = []  # [time, what the read printed]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            t0 = time.time()
            try:
                watts = float(self.read())
                self.times.append((t0 + time.time()) / 2)
                self.watts.append(watts)
            except SampleError as exc:
                self.failures.append([(t0 + time.time()) / 2, str(exc)])
            due += self.period_s
            self._stop.wait(max(0.0, due - time.monotonic()))


def energy_pass(energy: dict, predict, inputs: list) -> dict:
    """Idle for ``energy["idle_s"]`` (no inference), then ``predict`` on ``inputs`` (already
    decoded), cycling, back to back for at least ``energy["window_s"]``, while a
    :class:`Sampler` of ``energy["source"]`` reads power every ``energy["period_s"]``
    (``source="host"``: none here, the meter runs on pruneflow's machine). Returns the phases'
    times (``time.time()``), the images run, and the raw samples."""
    sampler = None
    idle_start = time.time()  # before the sampler starts: no sample comes before the idle phase
    if energy["source"] != "host":
        read = reader(energy["source"], energy.get("command"))
        sampler = Sampler(read, float(energy["period_s"])).start()
    try:
        time.sleep(float(energy["idle_s"]))
        idle_end = run_start = time.time()
        images = 0
        while time.time() - run_start < float(energy["window_s"]):
            predict(inputs[images % len(inputs)])
            images += 1
        run_end = time.time()
    finally:
        if sampler is not None:
            sampler.stop()
    return {
        "source": energy["source"],
        "idle_start": idle_start,
        "idle_end": idle_end,
        "run_start": run_start,
        "run_end": run_end,
        "images": images,
        "times": sampler.times if sampler else [],
        "watts": sampler.watts if sampler else [],
        "failures": sampler.failures if sampler else [],
    }
