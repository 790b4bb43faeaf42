"""Is a device ready? Its runner's ``--probe`` says what it has (python, numpy, Pillow,
LiteRT, TensorFlow, the delegate's library, disk, CPU state); :func:`readiness` judges it before
any work (:meth:`pruneflow.devices.base.Device.check`), naming everything missing at once and the
commands that fix it, and decides where the Keras model is timed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pruneflow.devices import runner as _runner
from pruneflow.errors import DeviceError
from pruneflow.results import BOARD, CORES, CPU_FEATURES, HWCAP_FEATURES

APT_FIX = {"numpy": "python3-numpy", "pillow": "python3-pil"}
PIP_NAMES = {label: pip for label, pip in _runner.REQUIREMENTS.values()}


@dataclass
class Ready:
    """A checked device: the python that runs the runner there, what the probe found, where the
    Keras model is timed (``device`` | ``host`` | ``off``) and anything worth a warning."""

    python: str | None
    facts: dict
    keras_on: str
    notes: list[str]
    energy: Any = None  # what measures its energy (devices.energy.EnergyPlan), None: nothing
    energy_note: str = ""  # why nothing does, where energy was asked for


class Judged(Protocol):
    """What the judge asks of a device (a :class:`pruneflow.devices.base.Device`)."""

    description: str  # the device in messages
    setup_command: str | None  # the `pruneflow device setup ...` that fixes it, if any
    venv_use: str  # how a venv made by hand there is then used

    def keras_on(self, keras: str, facts: dict) -> str: ...


def has_keras(packages: dict) -> bool:
    """TensorFlow that can load pruneflow's Keras 2 models: tf_keras, or TensorFlow < 2.16."""
    tf = packages.get("tensorflow")
    if not tf:
        return False
    major_minor = tuple(int(p) for p in tf.split(".")[:2] if p.isdigit())
    return "tf_keras" in packages or major_minor < (2, 16)


def readiness(dev: Judged, facts: dict, python: str, delegate: dict, keras: str) -> Ready:
    """Judge the probe ``facts`` of ``dev``: raise :class:`DeviceError` naming the device,
    everything missing at once and the commands that fix it (the device's ``pruneflow device
    setup ...`` first, where it has one); else the :class:`Ready` device."""
    who = facts.get("executable") or python or "python3"
    problems, notes = [], []
    version = tuple(int(p) for p in str(facts.get("python", "0")).split(".")[:2] if p.isdigit())
    if version < _runner.MIN_PYTHON:
        need = ".".join(map(str, _runner.MIN_PYTHON))
        problems.append(
            f"Python {facts.get('python')} ({who}) is too old: the runner needs >= {need}; "
            "point device.python at a newer one"
        )
    missing = list(facts.get("missing", {}))
    if missing:
        apt = [APT_FIX[m] for m in missing if m in APT_FIX]
        pip = [PIP_NAMES[m] for m in missing if m not in APT_FIX]
        setup = dev.setup_command
        fixes = [f"`{setup}`"] if setup else []
        manual = []
        if apt:
            manual.append(f"sudo apt install {' '.join(apt)}")
        after = ""
        if pip and facts.get("venv"):
            manual.append(f"{who} -m pip install {' '.join(pip)}")
        elif pip:  # Debian's and Raspberry Pi OS's own python refuse pip installs (PEP 668)
            manual += [
                f"{who} -m venv --system-site-packages VENV",
                f"VENV/bin/pip install {' '.join(pip)}",
            ]
            after = dev.venv_use
        fixes.append("on the device: `" + " && ".join(manual) + "`" + after)
        problems.append(f"{who} lacks {', '.join(missing)}; fix: " + ", or ".join(fixes))
    lib = facts.get("delegate_library")
    if lib and not lib.get("loads"):
        why = (
            f"delegate.library={lib['path']} does not load on the device ({lib.get('error')}): "
            "install the delegate there and give its full path"
        )
        if delegate.get("fallback") == "error":
            problems.append(why + " (or delegate.fallback=builtin)")
        else:
            notes.append(why + "; the variants will run on builtin kernels (delegate.fallback)")
    keras_on = dev.keras_on(keras, facts)
    if keras == "device" and keras_on != "device":
        problems.append(
            f"benchmark.keras=device, but {who} has no TensorFlow that loads Keras 2 models "
            "(tensorflow with tf_keras): install them on the device, or benchmark.keras=auto "
            "(times the Keras model on this machine, tagged timed_on/keras=host) or off"
        )
    elif keras == "auto" and keras_on == "host":
        notes.append(
            f"{who} has no TensorFlow: the Keras model is timed on this machine "
            "(tagged timed_on/keras=host)"
        )
    if problems:
        raise DeviceError(f"device {dev.description}: check failed: " + "; ".join(problems))
    return Ready(python, facts, keras_on, notes)


# FP16 arithmetic as XNNPACK needs it, in a probe's CPU features: ARMv8.2's half precision,
# scalar and vector (a Pi 5's Cortex-A76 has both, a Pi 4's A72 neither); on x86 AVX512-FP16
FP16_FEATURES = (("fphp", "asimdhp"), ("avx512_fp16",))


def fp16_arithmetic(facts: dict) -> bool:
    """Whether a probe's CPU has FP16 arithmetic: on arm64 its features as the kernel hands
    them to the runner (AT_HWCAP: what XNNPACK reads) or, where not read, /proc/cpuinfo's."""
    features = (facts.get(HWCAP_FEATURES) or facts.get(CPU_FEATURES) or "").split()
    return any(all(f in features for f in needs) for needs in FP16_FEATURES)


def float16_note(description: str, facts: dict, asked: list[str]) -> str | None:
    """One line where the variants ``asked`` (of those that ask for FP16 arithmetic) would run
    on a device without it; None where none is asked or the device has it."""
    if not asked or fp16_arithmetic(facts):
        return None
    return (
        f"device {description} has no FP16 arithmetic (its CPU features have neither fphp "
        f"asimdhp nor avx512_fp16): {', '.join(asked)} is computed in float32 there, as "
        "tflite_float16 is, and cannot be faster (tagged arithmetic/<variant>)"
    )


def describe(facts: dict) -> str:
    """A probe as the lines ``pruneflow device check`` prints."""
    pk = facts.get("packages", {})
    missing = facts.get("missing", {})

    def package(label: str) -> str:
        return pk.get(label) or f"MISSING ({missing.get(label, 'not installed')})"

    h = facts.get("hygiene", {})
    state = [
        f"{h['temp_c']:.1f} C" if "temp_c" in h else "temperature: no thermal zone",
        f"{h['freq_mhz']:.0f} MHz" if "freq_mhz" in h else "clock: not exposed",
        f"governor {h.get('governor', 'not exposed')}",
        f"throttled {h.get('throttled', '(no vcgencmd)')}",
        f"load {h['load1']:.2f}" if "load1" in h else "",
    ]
    lib = facts.get("delegate_library")
    delegates = "xnnpack (built into LiteRT), none (builtin kernels)"
    if lib:
        delegates += f"; {lib['path']}: " + (
            "loads" if lib.get("loads") else f"does not load ({lib.get('error')})"
        )
    venv = " (venv)" if facts.get("venv") else ""
    features = facts.get(CPU_FEATURES) or "none of note"
    if HWCAP_FEATURES in facts:  # arm64: what the kernel hands the process (XNNPACK reads it)
        features += f"; AT_HWCAP: {facts[HWCAP_FEATURES] or 'none of note'}"
    features += f" (FP16 arithmetic: {'yes' if fp16_arithmetic(facts) else 'no'})"
    tf = pk.get("tensorflow", "-") + (f", tf_keras {pk['tf_keras']}" if "tf_keras" in pk else "")
    free = f"{facts.get('free_disk_mb', 0) / 1024:.1f} GiB in {facts.get('temp_folder')}"
    rows = [
        ("python", f"{facts.get('executable')} {facts.get('python')}{venv}"),
        ("cpu", f"{facts.get('cpu', '?')} ({facts.get('machine')}, {facts.get(CORES)} cores)"),
        (BOARD, facts.get(BOARD, "not named (no /proc/device-tree/model)")),
        ("features", features),
        ("os", facts.get("os", "?")),
        ("numpy", package("numpy")),
        ("pillow", package("pillow")),
        ("litert", package("litert")),
        ("tensorflow", tf),
        ("delegates", delegates),
        ("disk free", free),
        ("cpu state", ", ".join(x for x in state if x)),
    ]
    return "\n".join(f"  {k:<11}{v}" for k, v in rows)
