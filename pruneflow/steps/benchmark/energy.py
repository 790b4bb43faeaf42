"""Energy per image from a power trace (pure functions over arrays; docs/energy.md).

The device idles for a window, then runs a variant back to back for a window of ``window_s``
seconds in which ``images`` inferences ran, while power is sampled (watts at known times).
Then:

- ``power_w``: the mean of the samples in the running window; ``idle_power_w`` likewise idle;
- energy per image = ``power_w x window_s / images`` (mJ): everything the device drew while
  running, per image; above idle = ``(power_w - idle_power_w) x window_s / images``: what
  running adds to idling;
- its 95% interval: power samples taken 0.1 s apart are autocorrelated (a burst of load spans
  several), so their plain standard error is too small. The running samples are cut, in time
  order, into ``k = min(10, n)`` contiguous batches (numpy's ``array_split``: sizes differ by
  at most one) and the interval is ``power_w ± t(0.975, k - 1) x sd(batch means) / sqrt(k)``,
  scaled like the energy (batch means, Student t; e.g. Law & Kelton, Simulation Modeling and
  Analysis, ch. 9). The window and the image count are counted, not sampled: they carry no
  error. The interval is the energy's (not above idle's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pruneflow.stats import CONFIDENCE

MAX_BATCHES = 10  # batch means for the interval


class NoEnergy(ValueError):
    """A trace that gives no energy number; the message says why (for the run's note)."""


@dataclass
class EnergyNumbers:
    """One variant's energy per image (mJ), its interval, the powers (W) and what they are of."""

    energy_mj: float
    ci_low: float
    ci_high: float
    above_idle_mj: float
    power_w: float
    idle_power_w: float
    power_samples: int
    idle_samples: int
    window_s: float
    images: int


def energy_numbers(
    times: Sequence[float],
    watts: Sequence[float],
    idle: tuple[float, float],
    run: tuple[float, float],
    images: int,
    guard_s: float = 0.0,
) -> EnergyNumbers:
    """The numbers of one trace: samples ``watts`` taken at ``times``, the idle window
    ``idle = (start, end)`` and the running one ``run``, in which ``images`` inferences ran.
    A sample counts in a window when it lies ``guard_s`` or more inside it (a meter on another
    machine: the clocks' uncertainty). Raises :class:`NoEnergy` where the trace has fewer than
    two running samples or no idle one, or no image ran."""
    t, w = np.asarray(times, dtype=np.float64), np.asarray(watts, dtype=np.float64)
    if t.shape != w.shape or t.ndim != 1:
        raise ValueError(f"times and watts differ: {t.shape} and {w.shape}")
    window = float(run[1] - run[0])
    running = w[(t >= run[0] + guard_s) & (t <= run[1] - guard_s)]
    idling = w[(t >= idle[0] + guard_s) & (t < idle[1] - guard_s)]
    if images < 1 or window <= 0:
        raise NoEnergy(f"no image ran in the {window:.3g} s window")
    guarded = f" ({guard_s:.3g} s left out at each end: the clocks' uncertainty)" if guard_s else ""
    if len(running) < 2:
        raise NoEnergy(
            f"{len(running)} power sample(s) in the {window:.3g} s running window{guarded}, two "
            "needed: raise device.energy.window_s"
        )
    if len(idling) < 1:
        raise NoEnergy(
            f"no power sample in the {idle[1] - idle[0]:.3g} s idle window{guarded}: raise "
            "device.energy.idle_s"
        )
    power, idle_power = float(np.mean(running)), float(np.mean(idling))
    means = [float(np.mean(b)) for b in np.array_split(running, min(MAX_BATCHES, len(running)))]
    half = batch_half_width(means)
    mj = 1e3 * window / images  # W -> mJ per image
    return EnergyNumbers(
        energy_mj=power * mj,
        ci_low=(power - half) * mj,
        ci_high=(power + half) * mj,
        above_idle_mj=(power - idle_power) * mj,
        power_w=power,
        idle_power_w=idle_power,
        power_samples=len(running),
        idle_samples=len(idling),
        window_s=window,
        images=int(images),
    )


def batch_half_width(means: Sequence[float], confidence: float = CONFIDENCE) -> float:
    """Half the Student-t interval of the mean of ``means`` (k >= 2 batch means)."""
    from scipy.stats import t as student

    k = len(means)
    sd = float(np.std(np.asarray(means, dtype=np.float64), ddof=1))
    return float(student.ppf(0.5 + confidence / 2, k - 1)) * sd / math.sqrt(k)
