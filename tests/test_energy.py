"""Energy per image (device.energy): the arithmetic to the last digit on synthetic traces, the
PMIC's and a meter's output read, the runner's energy pass in script mode as a device runs it,
the whole path through the console script on this machine and over the test sshd (a stand-in
`vcgencmd` on the device's PATH printing a Raspberry Pi 5's format, a stand-in meter command),
and bad input refused in one line before any work.

No Pi is at hand: the stand-ins print the real formats (`vcgencmd pmic_read_adc` of a Pi 5, a
Pi 4's `error_msg="Command not registered"`), with known values, so every power is known."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import TINY, outputs_to, pruneflow_command, read_runs, run_cli
from helpers.power import METER_WATTS, PMIC_TEXT, PMIC_WATTS, stand_ins
from pruneflow.devices import power_sampler as ps
from pruneflow.steps.benchmark.energy import NoEnergy, energy_numbers


def pi4_vcgencmd(folder: Path) -> Path:
    """A bin folder whose `vcgencmd` is a Pi 4's: no PMIC command."""
    bin_ = folder / "pi4"
    bin_.mkdir(parents=True)
    (bin_ / "vcgencmd").write_text(
        "#!/bin/sh\n"
        '[ "$1" = get_throttled ] && { echo throttled=0x0; exit 0; }\n'
        "echo 'error_msg=\"Command not registered\"'; exit 255\n"
    )
    (bin_ / "vcgencmd").chmod(0o755)
    return bin_


def env_with(bin_: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "PATH": f"{bin_}:{env['PATH']}"}


# -- the arithmetic ---------------------------------------------------------------------------
# Student t's 0.975 quantile, 9 degrees of freedom: its CDF in closed form (odd degrees,
# theta = atan(t/3): 1/2 + (theta + sin cos (1 + 2/3 c + 8/15 c^2 + 16/35 c^3)) / pi, c = cos^2)
# is 0.975 there to the last digit
T975_9 = 2.262157162798205


def test_energy_per_image_to_the_last_digit():
    """Idle at 2 W for 3 s, then 200 images in 10 s at 4 W and 6 W in turn (mean 5 W): 250 mJ
    an image, 150 above idle; ten samples, ten batches of one: the interval is the batch means'
    Student t interval, scaled by 10 s / 200 images. Samples outside both windows count for
    nothing."""
    idle_t = [0.5, 1.5, 2.5]
    run_t = [3.25 + i for i in range(10)]
    times = [-1.0, *idle_t, *run_t, 13.5]
    watts = [99.0, 2.0, 2.0, 2.0, *[4.0, 6.0] * 5, 99.0]
    e = energy_numbers(times, watts, idle=(0.0, 3.0), run=(3.0, 13.0), images=200)
    assert (e.power_w, e.idle_power_w) == (5.0, 2.0)
    assert (e.power_samples, e.idle_samples, e.window_s, e.images) == (10, 3, 10.0, 200)
    assert e.energy_mj == 250.0 and e.above_idle_mj == 150.0
    half = T975_9 * math.sqrt(10 / 9) / math.sqrt(10)  # sd of ±1 about 5 W, over sqrt(10)
    assert e.ci_low == pytest.approx((5.0 - half) * 50, abs=1e-12)
    assert e.ci_high == pytest.approx((5.0 + half) * 50, abs=1e-12)
    assert e.ci_low == pytest.approx(212.2974, abs=1e-4)  # 250 - 37.7026 mJ


def test_batches_absorb_alternation_and_a_guard_drops_edge_samples():
    """Twenty samples alternating 4 W / 6 W make ten batches of (4, 6): every batch mean is
    5 W, so the interval closes on 250 mJ. A guard of 0.5 s drops the samples within half a
    second of each window's ends (a meter on another machine)."""
    run_t = [3.25 + 0.5 * i for i in range(20)]
    times, watts = [1.0, 2.9, *run_t], [2.0, 7.0, *[4.0, 6.0] * 10]
    e = energy_numbers(times, watts, idle=(0.0, 3.0), run=(3.0, 13.0), images=200)
    assert (e.energy_mj, e.ci_low, e.ci_high) == (250.0, 250.0, 250.0)
    assert e.idle_power_w == 4.5  # 2 W and 7 W
    g = energy_numbers(times, watts, idle=(0.0, 3.0), run=(3.0, 13.0), images=200, guard_s=0.5)
    assert g.idle_samples == 1 and g.idle_power_w == 2.0  # 2.9 s lies within the guard
    assert g.power_samples == 18  # 3.25 and 12.75 lie within it
    assert g.window_s == 10.0  # the window itself is the device's


def test_a_meter_here_is_set_in_the_device_clock_by_its_offset():
    """A meter on this machine samples in this machine's clock; the windows are the device's,
    whose clock runs 100 s ahead (offset +100 s, known to 0.01 s): a sample at 1.5 s here lies
    at 101.5 s there. The guard band is the uncertainty and one period."""
    from types import SimpleNamespace

    from pruneflow.devices.energy import EnergyPlan
    from pruneflow.devices.result import EnergyTrace
    from pruneflow.steps.benchmark.benchmark import _energy

    trace = EnergyTrace("host", 100.0, 103.0, 103.0, 113.0, images=200)
    here_t = [0.05, 1.5, 2.5, 2.99, *(3.25 + i for i in range(10))]  # 0.05, 2.99: in the guard
    here = SimpleNamespace(times=here_t, watts=[9.0, 2.0, 2.0, 9.0, *[5.0] * 10], failures=[])
    plan = EnergyPlan("command", "host", "meter", window_s=10.0, idle_s=3.0, period_s=0.1)
    found, notes = _energy({"m": SimpleNamespace(energy=trace)}, plan, here, (100.0, 0.01))
    assert notes == [] and found["m"].idle_power_w == 2.0 and found["m"].idle_samples == 2
    assert found["m"].power_samples == 10 and found["m"].energy_mj == 250.0


@pytest.mark.parametrize(
    "times, why",
    [([1.0, 5.0], "1 power sample(s) in the 10 s running window, two needed"),
     ([5.0, 6.0], "no power sample in the 3 s idle window")],
)  # fmt: skip
def test_a_trace_too_thin_gives_no_number_and_says_why(times, why):
    with pytest.raises(NoEnergy, match=re.escape(why)):
        energy_numbers(times, [1.0] * len(times), (0.0, 3.0), (3.0, 13.0), images=50)


def test_the_pmic_sums_the_rails_that_have_both():
    assert ps.pmic_watts(PMIC_TEXT) == pytest.approx(PMIC_WATTS, rel=1e-15)
    assert PMIC_WATTS == pytest.approx(1.4412, abs=1e-4)  # 0.1841 + 0.3068 + ... + 0.4321 W
    for text in ('error_msg="Command not registered"', "EXT5V_V volt(24)=5.14794000V", ""):
        with pytest.raises(ps.SampleError, match="no rail with both"):
            ps.pmic_watts(text)


@pytest.mark.parametrize(
    "text, watts",
    [("2.31\n", 2.31), ("INA219\npower: 2.31 W\n\n", 2.31), ("5.1V 0.4A 2.04W", 5.1),
     ("1e-1", 0.1)],
)  # fmt: skip
def test_a_meter_prints_watts_first_on_its_last_line(text, watts):
    assert ps.command_watts(text) == watts


def test_a_sample_that_fails_to_parse_is_kept_apart():
    """A Sampler over reads that print the PMIC's lines, once garbage: the failed read is kept
    with what it printed, the others are the rails' sum."""
    outputs = iter([PMIC_TEXT, "garbage", *[PMIC_TEXT] * 100])
    sampler = ps.Sampler(lambda: ps.pmic_watts(next(outputs)), period_s=0.01).start()
    while len(sampler.watts) < 3:
        pass
    sampler.stop()
    assert sampler.failures[0][1] == "no rail with both a current and a voltage in 'garbage'"
    assert set(sampler.watts) == {ps.pmic_watts(PMIC_TEXT)}
    assert sampler.times == sorted(sampler.times) and len(sampler.failures) == 1


# -- the runner's energy pass, as a device runs it ---------------------------------------------
def test_the_runner_script_runs_the_energy_pass_from_its_own_folder(tflite_bench, tmp_path):
    """`python3 device_runner.py --energy ...` in a folder holding the runner and the power
    sampler under their shipped names (as the bundle lays them out on a device): the timing,
    then idle and a window of back-to-back inferences with the PMIC read throughout."""
    from pruneflow.devices.base import RUNNER, RUNNER_NAME, SAMPLER

    paths, images = tflite_bench
    shutil.copy(RUNNER, tmp_path / RUNNER_NAME)
    shutil.copy(SAMPLER, tmp_path / SAMPLER.name)
    energy = {"source": "pmic", "command": None, "window_s": 0.5, "idle_s": 0.3, "period_s": 0.05}
    out = tmp_path / "r.json"
    cmd = [sys.executable, str(tmp_path / RUNNER_NAME), "--images", str(images), "--out", str(out)]
    cmd += ["--energy", json.dumps(energy), str(paths["tflite_int8"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env_with(stand_ins(tmp_path)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    from pruneflow.devices.result import RunnerResult

    r = RunnerResult.read(out).results["tflite_int8"]
    e = r.energy
    assert len(r.times_ms) == 12 and e.source == "pmic" and e.failures == []
    assert e.run_end - e.run_start >= 0.5 and e.idle_end - e.idle_start >= 0.3
    assert e.images > 12  # cycling over the 12 decoded images
    assert len(e.watts) >= 2 and set(e.watts) == {ps.pmic_watts(PMIC_TEXT)}
    # a last read in flight as the run ends: stamped at its middle, at most its timeout after
    assert e.idle_start <= e.times[0] and e.times[-1] <= e.run_end + ps.READ_TIMEOUT_S


# -- end to end through the console script, on this machine ------------------------------------
# short, and still several reads of a stand-in meter (a shell script) each on a loaded machine
SMALL = ["device.energy.window_s=0.8", "device.energy.idle_s=0.5", "device.energy.period_s=0.05"]
TFLITE = ("tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8")


def assert_energy(m: dict, watts: float) -> None:
    """A constant power: every variant's numbers follow from its window and images."""
    for v in TFLITE:
        window, images = m[f"{v}/energy_window_s"], m[f"{v}/energy_images"]
        assert window >= 0.5 and images >= 1 and m[f"{v}/power_samples"] >= 2
        assert m[f"{v}/power_w"] == pytest.approx(watts, rel=1e-12)
        assert m[f"{v}/idle_power_w"] == pytest.approx(watts, rel=1e-12)
        per_image = watts * window / images * 1e3
        assert m[f"{v}/energy_mj"] == pytest.approx(per_image, rel=1e-9)
        assert m[f"{v}/energy_mj_ci_low"] == pytest.approx(per_image, rel=1e-9)
        assert m[f"{v}/energy_above_idle_mj"] == pytest.approx(0.0, abs=1e-9)
    assert "keras/energy_mj" not in m  # the .tflite variants only


def test_a_study_on_this_machine_measures_energy_from_the_pmic_and_a_meter(tmp_path):
    """`pruneflow -m device.energy.source=pmic,command device.energy.on=device,host`: a Pi 5's
    PMIC (the stand-in vcgencmd on this machine's PATH) and a meter run by the device and by
    this machine; device=local is both, so the clocks agree (no offset)."""
    bin_ = stand_ins(tmp_path)
    sweep = ["device.energy.source=pmic,command", "device.energy.on=device,host"]
    args = ["-m", *TINY, *outputs_to(tmp_path), *SMALL, f"device.energy.command={bin_}/meter"]
    proc = run_cli([*args, *sweep], cwd=tmp_path, command=pruneflow_command(), env=env_with(bin_))
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, runs = read_runs(tmp_path)
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        params, tags = run.data.params, run.data.tags
        if params["device.energy.source"] == "pmic":
            assert tags["energy.source"] == "pmic"
            assert_energy(run.data.metrics, PMIC_WATTS)
        else:
            on = params["device.energy.on"]
            assert tags["energy.source"] == f"command: {bin_}/meter (on {on})"
            assert_energy(run.data.metrics, METER_WATTS)
        assert "energy.note" not in tags


def test_without_a_pmic_auto_measures_nothing_and_says_so_once(tmp_path):
    """The default (auto) on a machine whose vcgencmd is a Pi 4's: no energy number, one note;
    `pruneflow device check` says the same."""
    env = env_with(pi4_vcgencmd(tmp_path))
    check = run_cli(["device", "check"], cwd=tmp_path, command=pruneflow_command(), env=env)
    assert check.returncode == 0, check.stderr
    assert "energy: device.energy.source=auto: no PMIC on local" in check.stdout
    assert "Command not registered" in check.stdout
    proc = run_cli([*TINY, *outputs_to(tmp_path)], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, (run,) = read_runs(tmp_path)
    assert "vcgencmd pmic_read_adc" in run.data.tags["energy.note"]
    assert "energy.source" not in run.data.tags
    assert not [k for k in run.data.metrics if "energy" in k or "power" in k]


def test_without_vcgencmd_auto_says_nothing_to_the_run(tmp_path):
    """The default (auto) on a machine that is no Raspberry Pi (no vcgencmd at all, as here):
    no energy number and no note on the run, so a report of such runs says nothing of energy;
    `pruneflow device check` says none, and how to measure."""
    bare = tmp_path / "bare"
    bare.mkdir()
    env = env_with(bare)
    assert shutil.which("vcgencmd", path=env["PATH"]) is None
    check = run_cli(["device", "check"], cwd=tmp_path, command=pruneflow_command(), env=env)
    assert check.returncode == 0, check.stderr
    assert "energy: none (device.energy.source=auto: no PMIC here" in check.stdout
    proc = run_cli([*TINY, *outputs_to(tmp_path)], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, (run,) = read_runs(tmp_path)
    assert not [k for k in run.data.tags if k.startswith("energy.")]
    assert not [k for k in run.data.metrics if "energy" in k or "power" in k]


# -- bad input, one line, before any work -------------------------------------------------------
def _one_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[0]


def test_a_window_too_short_for_two_samples_is_refused(tmp_path):
    proc = run_cli(
        [*TINY, *outputs_to(tmp_path), "device.energy.window_s=0.1"],
        cwd=tmp_path,
        command=pruneflow_command(),
    )
    assert proc.returncode == 2
    line = _one_line(proc)
    assert "device.energy.window_s=0.1 is invalid" in line
    assert "seconds >= 2 x device.energy.period_s = 0.2 (two power samples)" in line


@pytest.mark.parametrize(
    "overrides, said",
    [
        (["device.energy.source=pmic"], "device.energy.source=pmic, but `vcgencmd pmic_read_adc`"
         " gives no power there (vcgencmd is not installed)"),
        (["device.energy.source=command", "device.energy.command=ls /no/meter"],
         "device.energy.command='ls /no/meter' (device.energy.on=device) gives no watts on "
         "local (this machine): exit status 2: \"ls: cannot access '/no/meter'"),
        (["device.energy.source=command", "device.energy.command=echo no watts here",
          "device.energy.on=host"],
         "device.energy.command='echo no watts here' (device.energy.on=host) gives no watts on "
         "this machine: no number on the last line of 'no watts here'"),
    ],
)  # fmt: skip
def test_a_source_that_cannot_measure_is_refused_at_the_check(tmp_path, overrides, said):
    """`pruneflow device check` and a run: one line naming the key, the command and what it
    printed; the run stops at its device check (before the data) and is not left RUNNING."""
    check = run_cli(["device", "check", *overrides], cwd=tmp_path, command=pruneflow_command())
    assert check.returncode == 1 and said in _one_line(check)
    proc = run_cli([*TINY, *outputs_to(tmp_path), *overrides], cwd=tmp_path)
    assert proc.returncode != 0 and said in proc.stderr
    assert "Traceback" not in proc.stderr
    _, runs = read_runs(tmp_path)
    assert all(r.info.status == "FAILED" for r in runs)
    assert not [r for r in runs if "train_s" in str(r.data.metrics)]


def test_a_pi4_asked_for_its_pmic_is_refused_naming_its_answer(tmp_path):
    env = env_with(pi4_vcgencmd(tmp_path))
    proc = run_cli(
        ["device", "check", "device.energy.source=pmic"],
        cwd=tmp_path,
        command=pruneflow_command(),
        env=env,
    )
    assert proc.returncode == 1
    assert "exit status 255: 'error_msg=\"Command not registered\"'" in _one_line(proc)


# -- over SSH (the test sshd: this machine as the device) ---------------------------------------
@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    from helpers.sshd import PrivateSSHD

    with PrivateSSHD(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.mark.needs("sshd")
@pytest.mark.parametrize(
    "energy, watts, label",
    [
        ({"source": "pmic"}, PMIC_WATTS, "pmic"),
        ({"source": "command", "on": "device"}, METER_WATTS, "command: {meter} (on device)"),
        ({"source": "command", "on": "host"}, METER_WATTS, "command: {meter} (on host)"),
    ],
)
def test_an_ssh_device_measures_energy(sshd, tflite_bench, tmp_path, energy, watts, label):
    """The device check decides the source from the device's probe (the stand-in vcgencmd on
    the device's PATH: the runner's python is `env PATH=... python`), the power sampler travels
    in the bundle beside the runner, and the numbers reach the run's metrics. With on=host the
    meter runs here while the device runs the windows, set in this machine's clock by the
    offset measured over the connection."""
    from pruneflow.devices.base import open_device
    from pruneflow.devices.config import EnergyConfig
    from pruneflow.steps.benchmark.benchmark import run_benchmark
    from pruneflow.steps.benchmark.config import BenchmarkConfig
    from pruneflow.steps.benchmark.record import for_timing

    paths, images = tflite_bench
    bin_ = stand_ins(tmp_path)
    meter = str(bin_ / "meter")
    windows = {"window_s": 0.5, "idle_s": 0.3, "period_s": 0.05}
    if energy.get("on") == "host":  # each window less a guard band at each end (the clocks)
        windows.update(window_s=1.0, idle_s=0.8)
    options = {"energy": EnergyConfig(**energy, **windows, command=meter)}
    python = f"env PATH={bin_}:/usr/bin:/bin {sys.executable}"
    config = sshd.device_config(python=python, **options)
    ready = open_device(config).check({"name": "xnnpack", "threads": 1}, "off")
    assert ready.energy.label == label.format(meter=meter) and ready.energy_note == ""
    models = {v: paths[v] for v in ("tflite_fp32", "tflite_int8")}
    timing = run_benchmark(
        None, models, images, BenchmarkConfig(images=12), config, {}, tmp_path, "off", ready.energy
    )
    m, tags = for_timing(timing).metrics, for_timing(timing).tags
    assert tags["energy.source"] == label.format(meter=meter)
    assert "energy.note" not in tags, tags["energy.note"]
    for v in models:
        assert m[f"{v}/power_w"] == pytest.approx(watts, rel=1e-12)
        assert m[f"{v}/idle_power_w"] == pytest.approx(watts, rel=1e-12)
        per_image = watts * m[f"{v}/energy_window_s"] / m[f"{v}/energy_images"] * 1e3
        assert m[f"{v}/energy_mj"] == pytest.approx(per_image, rel=1e-9)
        assert m[f"{v}/power_samples"] >= 2 and m[f"{v}/idle_samples"] >= 1


@pytest.mark.needs("sshd")
def test_an_ssh_device_without_a_pmic_is_refused_before_any_work(sshd, tmp_path):
    """device.energy.source=pmic on a device whose vcgencmd is a Pi 4's: the check's one line
    names the device, the command and its answer."""
    from pruneflow.devices.base import open_device
    from pruneflow.devices.config import EnergyConfig
    from pruneflow.errors import DeviceError

    python = f"env PATH={pi4_vcgencmd(tmp_path)}:/usr/bin:/bin {sys.executable}"
    config = sshd.device_config(python=python, energy=EnergyConfig(source="pmic"))
    with pytest.raises(DeviceError, match=r"ssh \(.*:\d+\): check failed: device.energy.source"):
        open_device(config).check({}, "off")
