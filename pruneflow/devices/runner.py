#!/usr/bin/env python3
"""pruneflow device runner: timed per-image inference, self-contained.

This file runs on the device (a Raspberry Pi, or this machine for ``device=local``); its probe
runs alone. It needs python3, numpy, Pillow and LiteRT (``ai_edge_litert``, or
``tflite_runtime``), nothing from pruneflow; a Keras model (``--keras``: TensorFlow) and the
energy pass (``--energy``) load the files shipped beside it (:func:`_beside`).

Protocol (the paper's, with its flaws fixed by the host's statistics): every image is loaded from
disk, decoded, preprocessed and classified one at a time; each image's time covers all of that,
and is split into ``decode`` (read + decode + preprocess) and ``invoke`` (set_tensor + invoke +
get_tensor). The first timed image is kept apart by the host (it pays for lazy initialisation).
``--warmup N`` runs N images before the timed ones (reported apart), ``--repeats R`` makes R
passes over the images (the paper's statistics use the first; the steady state all of them).

Each model is timed in a fresh process (``--one``), so that its peak resident memory is its own;
the device's temperature, clock, governor, throttling and load are read before and after it.

Usage::

    python3 device_runner.py --images DIR --out result.json [--warmup N] [--repeats R] \
        [--delegate '{"name": "xnnpack", "threads": 1, "fallback": "builtin"}'] \
        [--cooldown-c 60] [--keras MODEL.keras] [--energy JSON] MODEL.tflite...
    python3 device_runner.py --probe [--delegate JSON]     # what this device has, as JSON

``DIR`` holds ``<class>/<image>.png|jpg`` files, optionally with a ``manifest.json``
(``{"classes": [...], "images": [[relative path, label index], ...]}``) fixing order and labels.
Writes one JSON document to ``--out`` (``main``; pruneflow reads it as a ``RunnerResult``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

try:  # the probe must run (and say what is missing) where these are not installed
    import numpy as np
    from PIL import Image
except ImportError:
    np = Image = None

RUNNER_VERSION = 2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
KERAS_SUFFIXES = (".keras", ".h5")
KERAS = "keras"  # the Keras model's name among the results
FALLBACKS = ("builtin", "error")  # when a delegate cannot run a model: builtin kernels, or fail
MIN_PYTHON = (3, 9)
# What the runner needs on a device: import name -> (what the probe calls it, pip requirement)
REQUIREMENTS = {"numpy": ("numpy", "numpy"), "PIL": ("pillow", "pillow")}
REQUIREMENTS["ai_edge_litert"] = ("litert", "ai-edge-litert")
ROOT = os.environ.get("PRUNEFLOW_DEVICE_ROOT", "/")  # of /proc, /sys: tests use stand-ins
# Device hygiene: where Linux (and a Raspberry Pi's firmware tool) tell what the CPU is doing
THERMAL = os.path.join(ROOT, "sys/class/thermal/thermal_zone0/temp")  # millidegrees Celsius
CPUFREQ = os.path.join(ROOT, "sys/devices/system/cpu/cpu0/cpufreq")  # cur_freq, governor
# The device described: its board (absent on x86), the CPU features that decide speed: FP16
# arithmetic (fphp asimdhp; avx512_fp16), int8 dot product (asimddp) and matmul (i8mm), bf16, SVE
BOARD = os.path.join(ROOT, "proc/device-tree/model")  # NUL-terminated
CPUINFO = os.path.join(ROOT, "proc/cpuinfo")  # "Features" on arm, "flags" on x86
SPEED_FEATURES = ("fphp", "asimdhp", "asimdfhm", "asimddp", "i8mm", "bf16", "sve", "sve2")
SPEED_FEATURES += ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16")
# The same on arm64 as the kernel hands them to a process (AT_HWCAP = 16, AT_HWCAP2 = 26; bits
# of Linux's asm/hwcap.h): what XNNPACK's cpuinfo reads (under qemu-user: the emulated CPU's)
HWCAP_BITS = {"fphp": (16, 9), "asimdhp": (16, 10), "asimddp": (16, 20), "sve": (16, 22)}
HWCAP_BITS.update(asimdfhm=(16, 23), sve2=(26, 1), i8mm=(26, 13), bf16=(26, 14))
FP16_KEY, FP16_ACC = b"reduced_precision_support", b"fp16accfp16"  # metadata: FP16 arithmetic
POWER_SAMPLER = "power_sampler.py"  # the energy pass, beside this file; loaded only for --energy
KERAS_TIMING = "keras_timing.py"  # a Keras model's timing (TensorFlow), beside it too


class ArgumentError(ValueError):
    """A bad argument, named with its valid values (``threads=0 is invalid: valid values ...``).
    pruneflow turns it into its own error naming the config key (this file imports nothing of
    pruneflow)."""

    def __init__(self, name: str, value, valid: str, required: bool = False):
        self.name, self.value, self.valid, self.required = name, value, valid, required
        why = " is required: " if required else f"={value!r} is invalid: valid values are "
        super().__init__(f"{name}{why}{valid}")


def check_delegate(name: str, threads: int | None, fallback: str, library: str | None) -> None:
    """Raise :class:`ArgumentError` for a delegate this runner cannot be asked for."""
    if name not in DELEGATES:
        raise ArgumentError("name", name, str(list(DELEGATES)))
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ArgumentError("threads", threads, "null (the runtime's default) or integers >= 1")
    if fallback not in FALLBACKS:
        raise ArgumentError("fallback", fallback, str(list(FALLBACKS)))
    if name in NEEDS_LIBRARY and not library:
        raise ArgumentError(
            "library",
            library,
            f"delegate={name} loads a shared library on the device: give its path",
            required=True,
        )


def check_protocol(warmup: int, repeats: int) -> None:
    """Raise :class:`ArgumentError` for warm-up runs < 0 or passes < 1."""
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ArgumentError("warmup", warmup, "integers >= 0 (0: the paper's protocol)")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ArgumentError("repeats", repeats, "integers >= 1 (passes over the images)")


def runtime():
    """(module with Interpreter/load_delegate, runtime name, version)."""
    try:
        import ai_edge_litert
        from ai_edge_litert import interpreter as lite

        return lite, "ai_edge_litert", getattr(ai_edge_litert, "__version__", "unknown")
    except ImportError:
        import tflite_runtime
        from tflite_runtime import interpreter as lite  # older images of Raspberry Pi OS

        return lite, "tflite_runtime", getattr(tflite_runtime, "__version__", "unknown")


def _builtin(lite, delegate: dict) -> tuple[dict, str]:
    """LiteRT's builtin kernels, without its default delegate."""
    builtin = lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return {"experimental_op_resolver_type": builtin}, "builtin"


def _xnnpack(lite, delegate: dict) -> tuple[dict, str]:
    """XNNPACK: LiteRT's default delegate, built in."""
    return {}, "xnnpack"


def _library(lite, delegate: dict) -> tuple[dict, str]:
    """A delegate loaded from a shared library on the device (Arm NN's, or any other)."""
    options = {k: str(v) for k, v in (delegate.get("options") or {}).items()}
    return {
        "experimental_delegates": [lite.load_delegate(delegate.get("library"), options)],
        "experimental_op_resolver_type": lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    }, delegate["name"]


# The delegates: name -> the interpreter's keyword arguments for it, and what its kernels are
# called. Adding a delegate is adding an entry here (and an option in conf/delegate/).
DELEGATES = {"none": _builtin, "xnnpack": _xnnpack, "armnn": _library, "external": _library}
NEEDS_LIBRARY = tuple(n for n, make in DELEGATES.items() if make is _library)


def make_interpreter(model_path: str, delegate: dict):
    """Build and allocate an interpreter for ``delegate``; returns (interpreter, kernels, note).

    ``kernels`` names what actually runs: ``xnnpack``, ``builtin`` or the external delegate.
    A delegate that cannot be loaded, or that rejects the model in ``allocate_tensors`` (XNNPACK
    does so for some sparse int8 models), falls back to builtin kernels when
    ``delegate["fallback"] == "builtin"``; ``note`` then says why.
    """
    lite, _, _ = runtime()
    name = delegate.get("name", "xnnpack")
    threads = delegate.get("threads")
    fallback = delegate.get("fallback", "builtin")
    check_delegate(name, threads, fallback, delegate.get("library"))

    def build(kwargs: dict):
        interp = lite.Interpreter(model_path=model_path, num_threads=threads, **kwargs)
        interp.allocate_tensors()
        return interp

    make = DELEGATES[name]
    if make is _builtin:
        kwargs, kernels = make(lite, delegate)
        return build(kwargs), kernels, ""
    try:
        kwargs, kernels = make(lite, {**delegate, "name": name})
        return build(kwargs), kernels, ""
    except Exception as exc:  # noqa: BLE001 - any delegate failure may fall back
        if fallback != "builtin":
            raise
        note = f"{name} failed ({type(exc).__name__}: {exc}); fell back to builtin kernels"
        kwargs, kernels = _builtin(lite, delegate)
        return build(kwargs), kernels, note


def to_input(pixels, detail: dict):
    """Cast raw pixel values (0..255, NHWC) to the model input's dtype, quantizing if needed."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer):
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        q = np.round(pixels.astype(np.float32) / scale + zero)
        return np.clip(q, info.min, info.max).astype(dtype)
    return pixels.astype(dtype)


def load_image(path: str, height: int, width: int, channels: int):
    """Decode one image file to a (1, H, W, C) uint8 array of the model's input size."""
    with Image.open(path) as img:
        img = img.convert("L" if channels == 1 else "RGB")
        if img.size != (width, height):
            img = img.resize((width, height), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
    if channels == 1:
        arr = arr[..., None]
    return arr[None]


def read_images(images_dir: str) -> tuple[list[str], list[tuple[str, int]]]:
    """(class names, [(image path, label index)]) from a manifest or the class sub-folders."""
    manifest = os.path.join(images_dir, "manifest.json")
    if os.path.exists(manifest):
        with open(manifest) as fh:
            m = json.load(fh)
        return m["classes"], [(os.path.join(images_dir, p), int(lbl)) for p, lbl in m["images"]]
    classes = sorted(
        d for d in os.listdir(images_dir) if os.path.isdir(os.path.join(images_dir, d))
    )
    items = []
    for label, cls in enumerate(classes):
        folder = os.path.join(images_dir, cls)
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(IMAGE_SUFFIXES):
                items.append((os.path.join(folder, name), label))
    return classes, items


def _threads() -> int | None:
    """This process's thread count now (None where /proc does not tell)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def timed_passes(images, shape, decode, predict, warmup: int, repeats: int) -> dict:
    """The per-image protocol around ``decode(path, h, w, c) -> input`` and ``predict(input) ->
    scores``: ``warmup`` images first (apart), then ``repeats`` passes over ``images``.

    Times are milliseconds; ``times_ms``, ``decode_ms``, ``invoke_ms`` and ``predictions`` run
    over every timed image of every pass, first pass first; ``labels`` are one pass's."""
    _, height, width, channels = shape
    out = {"warmup_ms": [], "times_ms": [], "decode_ms": [], "invoke_ms": [], "predictions": []}
    for i in range(warmup):
        start = time.perf_counter()
        predict(decode(images[i % len(images)][0], height, width, channels))
        out["warmup_ms"].append((time.perf_counter() - start) * 1e3)
    for _ in range(repeats):
        for path, _ in images:
            start = time.perf_counter()
            x = decode(path, height, width, channels)
            decoded = time.perf_counter()
            scores = predict(x)
            invoked = time.perf_counter()
            pred = int(np.argmax(scores[0]))
            end = time.perf_counter()
            out["times_ms"].append((end - start) * 1e3)
            out["decode_ms"].append((decoded - start) * 1e3)
            out["invoke_ms"].append((invoked - decoded) * 1e3)
            out["predictions"].append(pred)
    return {**out, "repeats": repeats, "labels": [lbl for _, lbl in images]}


def time_model(
    model_path: str,
    images: list[tuple[str, int]],
    delegate: dict,
    warmup: int,
    repeats: int,
    power: dict | None = None,
) -> dict:
    """Run the protocol for one .tflite model (see :func:`timed_passes`); then, with ``power``
    (``--energy``), the energy pass on the images decoded once (``power_sampler.energy_pass``)."""
    threads_before = _threads()
    t0 = time.perf_counter()
    interp, kernels, note = make_interpreter(model_path, delegate)
    load_ms = (time.perf_counter() - t0) * 1e3
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]

    def decode(path, height, width, channels):
        return to_input(load_image(path, height, width, channels), inp)

    def predict(x):
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        return interp.get_tensor(out["index"])

    shape = tuple(int(d) for d in inp["shape"])
    timed = timed_passes(images, shape, decode, predict, warmup, repeats)
    after = _threads()
    if power:  # after the timed passes: no timing number changes
        inputs = [decode(path, *shape[1:]) for path, _ in images]
        timed["energy"] = _beside(POWER_SAMPLER).energy_pass(power, predict, inputs)
    first = decode(images[0][0], *shape[1:])  # which arithmetic ran (float16 variants)
    output = predict(first)
    interp = None  # freed before arithmetic() builds another: peak_rss_kb stays its own
    return {
        "model": os.path.basename(model_path),
        "kernels": kernels,
        "note": note,
        "load_ms": load_ms,
        "threads": delegate.get("threads"),
        # threads this model added to the process (the runtime's pool) and the calling one
        "threads_used": None if after is None else after - threads_before + 1,
        "arithmetic": arithmetic(model_path, delegate, output, first),
        **timed,
    }


def arithmetic(model_path: str, delegate: dict, output, x) -> str | None:
    """A model whose metadata asks for FP16 arithmetic: ``float16`` where it ran so, else
    ``float32`` (others: None). ``output`` (on ``x``) against the same file's with the metadata
    hidden: float16 rounds every activation (the outputs differ), float32 gives the same bits."""
    with open(model_path, "rb") as fh, tempfile.NamedTemporaryFile(suffix=".tflite") as plain:
        data = fh.read()
        if FP16_ACC not in data or FP16_KEY not in data:
            return None
        plain.write(data.replace(FP16_KEY, b"reduced_precision_ignored"))
        plain.flush()
        interp = make_interpreter(plain.name, delegate)[0]
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        same = np.array_equal(interp.get_tensor(interp.get_output_details()[0]["index"]), output)
    return "float32" if same else "float16"


def time_keras(model_path: str, images: list[tuple[str, int]], warmup: int, repeats: int):
    """Run the protocol for a saved Keras model (:data:`KERAS_TIMING`: TensorFlow there only)."""
    return _beside(KERAS_TIMING).time_keras(
        sys.modules[__name__], model_path, images, warmup, repeats
    )


def _beside(name: str):
    """The module in the file ``name`` beside this one (by path: in the package, and on a
    device, where it is shipped beside the runner): the parts only some runs need."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), path)
    spec.loader.exec_module(module := importlib.util.module_from_spec(spec))
    return module


def energy_facts(energy: dict | None) -> dict:
    """What `vcgencmd pmic_read_adc` and the meter command (tried once) print: {name: {rc, out}}."""
    tries = {"pmic": "vcgencmd pmic_read_adc"} if shutil.which("vcgencmd") else {}
    tries |= {"command": energy["command"]} if (energy or {}).get("command") else {}
    return {name: try_command(cmd) for name, cmd in tries.items()}


def try_command(cmd: str) -> dict:
    """``sh -c cmd`` once: {rc, out} (its output's tail; rc None where it cannot run at all)."""
    try:
        p = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"rc": None, "out": f"{type(exc).__name__}: {exc}"}
    return {"rc": p.returncode, "out": (p.stdout or p.stderr)[-3000:]}


# -- the device's state ------------------------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def temperature_c() -> float | None:
    """The SoC's temperature (thermal zone 0), None where the device has no such file."""
    raw = _read(THERMAL)
    try:
        return int(raw) / 1000.0 if raw is not None else None
    except ValueError:
        return None


def hygiene() -> dict:
    """What the CPU is doing now: temperature, clock, governor, throttling, load. Only what
    the device tells (keys are absent otherwise)."""
    facts: dict = {}
    temp = temperature_c()
    if temp is not None:
        facts["temp_c"] = temp
    freq = _read(os.path.join(CPUFREQ, "scaling_cur_freq"))
    if freq and freq.isdigit():
        facts["freq_mhz"] = int(freq) / 1000.0
    governor = _read(os.path.join(CPUFREQ, "scaling_governor"))
    if governor:
        facts["governor"] = governor
    if shutil.which("vcgencmd"):  # a Raspberry Pi's firmware: under-voltage, throttling bits
        try:
            proc = subprocess.run(
                ["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5
            )
            if proc.returncode == 0 and "=" in proc.stdout:
                facts["throttled"] = proc.stdout.strip().split("=", 1)[1]
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        facts["load1"] = os.getloadavg()[0]
    except OSError:
        pass
    return facts


def cool_down(below_c: float, max_s: float) -> tuple[float, str]:
    """Wait until the temperature is below ``below_c`` (at most ``max_s``); (seconds, note)."""
    start = time.monotonic()
    temp = temperature_c()
    if temp is None:
        return 0.0, f"no {THERMAL} on this device: cooldown skipped"
    while temp is not None and temp >= below_c:
        if time.monotonic() - start >= max_s:
            return time.monotonic() - start, f"still {temp:.1f} C after {max_s:g} s of cooldown"
        time.sleep(1.0)
        temp = temperature_c()
    return time.monotonic() - start, ""


def device_facts() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    info: dict[str, str] = {}
    try:
        with open(CPUINFO) as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep:
                    info.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    # x86 names its CPU in "model name"; a Raspberry Pi names the board in "Model" and has no
    # "model name" on some kernels; "Hardware" names the SoC on older ones.
    for key in ("model name", "hardware", "model", "cpu model"):
        if info.get(key) and not info[key].isdigit():
            cpu = info[key]
            break
    os_name = platform.platform()
    try:
        with open("/etc/os-release") as fh:
            for line in fh:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    board, flags = (_read(BOARD) or "").strip("\x00 \n"), info.get("features", info.get("flags"))
    facts = {
        "machine": platform.machine(),
        "cpu": cpu,
        **({"board": board} if board else {}),
        "cpu_features": " ".join(f for f in SPEED_FEATURES if f in (flags or "").split()),
        **hwcap_features(),
        "cores": os.cpu_count(),
        "os": os_name,
        "hostname": platform.node(),
        "python": platform.python_version(),
    }
    if np is not None:
        import PIL

        facts.update(numpy=np.__version__, pillow=PIL.__version__)
    try:
        _, facts["runtime"], facts["runtime_version"] = runtime()
    except ImportError:
        pass
    return facts


def hwcap_features() -> dict:
    """``{"hwcap_features": ...}``: :data:`HWCAP_BITS` set in AT_HWCAP, AT_HWCAP2 (arm64)."""
    try:
        import ctypes

        aux = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):
        return {}
    aux.restype, arm = ctypes.c_ulong, platform.machine() in ("aarch64", "arm64")
    on = [f for f, (a, b) in HWCAP_BITS.items() if arm and aux(a) >> b & 1]
    return {"hwcap_features": " ".join(on)} if arm else {}


def probe(delegate: dict | None = None, power: dict | None = None) -> dict:
    """Everything a run needs to know about this device before any work: Python, the runner's
    packages (each imported, so a broken one shows), TensorFlow (looked up, not imported: it
    takes seconds on a Pi), the delegate's library, free disk, the CPU's state."""
    import importlib
    import importlib.util

    facts = {
        "runner_version": RUNNER_VERSION,
        "python": platform.python_version(),
        "executable": sys.executable,
        "venv": sys.prefix != sys.base_prefix,
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "packages": {},
        "missing": {},
    }
    for module, (label, _) in REQUIREMENTS.items():
        if module == "ai_edge_litert":
            try:
                _, name, version = runtime()
                facts["packages"][label] = f"{name} {version}"
            except ImportError:
                facts["missing"][label] = "neither ai_edge_litert nor tflite_runtime imports"
            continue
        try:
            mod = importlib.import_module(module)
            facts["packages"][label] = getattr(mod, "__version__", "unknown")
        except ImportError as exc:
            facts["missing"][label] = str(exc)
    for module in ("tensorflow", "tf_keras"):
        if importlib.util.find_spec(module) is not None:
            try:
                from importlib.metadata import version

                facts["packages"][module] = version(module.replace("_", "-"))
            except Exception:  # noqa: BLE001 - found but without metadata
                facts["packages"][module] = "unknown"
    facts.update({k: v for k, v in device_facts().items() if k not in facts})
    lib = (delegate or {}).get("library")
    if lib:
        import ctypes

        try:
            ctypes.CDLL(lib)
            facts["delegate_library"] = {"path": lib, "loads": True}
        except OSError as exc:
            facts["delegate_library"] = {"path": lib, "loads": False, "error": str(exc)}
    folder = tempfile.gettempdir()
    facts["free_disk_mb"] = shutil.disk_usage(folder).free / 2**20
    facts["temp_folder"] = folder
    facts["hygiene"] = hygiene()
    facts["energy"] = energy_facts(power)
    return facts


# -- one model per process ---------------------------------------------------------------------
def _one(args) -> int:
    """``--one MODEL``: time one model in this (fresh) process, write its result to --out."""
    _, images = read_images(args.images)
    if args.models[0].endswith(KERAS_SUFFIXES):
        result = time_keras(args.models[0], images, args.warmup, args.repeats)
    else:
        delegate, energy = json.loads(args.delegate), json.loads(args.energy or "null")
        result = time_model(args.models[0], images, delegate, args.warmup, args.repeats, energy)
    _write_json(result, args.out)
    return 0


def _time_in_child(model: str, args, folder: str) -> dict:
    """Time ``model`` in a fresh process of this script; its result with the process's peak
    resident memory (``peak_rss_kb``, from the kernel's accounting of that process alone)."""
    part = os.path.join(folder, os.path.basename(model) + ".json")
    cmd = [sys.executable, os.path.abspath(__file__), "--one", model, "--images", args.images]
    cmd += ["--out", part, "--delegate", args.delegate]
    cmd += ["--warmup", str(args.warmup), "--repeats", str(args.repeats)]
    cmd += ["--energy", args.energy] if args.energy else []
    with open(part + ".err", "w+") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.stderr.write(err.read())
            raise SystemExit(proc.returncode if proc.returncode > 0 else 1)
    with open(part) as fh:
        result = json.load(fh)
    result["peak_rss_kb"] = usage.ru_maxrss  # kilobytes on Linux
    return result


def _write_json(doc: dict, path: str) -> None:
    tmp = path + ".part"
    with open(tmp, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", help=".tflite files; each result is keyed by stem")
    parser.add_argument("--images", help="folder of <class>/<image> files")
    parser.add_argument("--out", help="where to write the JSON result")
    parser.add_argument("--delegate", default='{"name": "xnnpack"}', help="delegate as JSON")
    parser.add_argument("--warmup", type=int, default=0, help="untimed images before the timed")
    parser.add_argument("--repeats", type=int, default=1, help="passes over the images")
    parser.add_argument("--keras", help="a Keras model to time too (needs TensorFlow)")
    parser.add_argument("--cooldown-c", type=float, help="wait for the CPU to cool below this")
    parser.add_argument("--cooldown-max-s", type=float, default=300.0)
    parser.add_argument("--energy", help="the energy pass after each model's timing, as JSON")
    parser.add_argument("--probe", action="store_true", help="print what this device has")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.probe:
        print(json.dumps(probe(json.loads(args.delegate), json.loads(args.energy or "null"))))
        return 0
    if not args.images or not args.out:
        parser.error("--images and --out are required")
    try:
        check_protocol(args.warmup, args.repeats)
    except ArgumentError as exc:
        parser.error(str(exc))
    if np is None:
        missing = ", ".join(probe()["missing"])
        print(f"device_runner: this python ({sys.executable}) lacks {missing}", file=sys.stderr)
        return 3
    if args.one:
        return _one(args)
    classes, images = read_images(args.images)
    if not images:
        print(f"device_runner: no images under {args.images}", file=sys.stderr)
        return 2
    models = [*args.models, *([args.keras] if args.keras else [])]
    results = {}
    with tempfile.TemporaryDirectory(prefix="pruneflow-runner.") as folder:
        for model in models:
            cooldown = (0.0, "")
            if args.cooldown_c is not None:
                cooldown = cool_down(args.cooldown_c, args.cooldown_max_s)
            before = hygiene()
            result = _time_in_child(model, args, folder)
            result["hygiene"] = {"before": before, "after": hygiene()}
            result["cooldown_s"], result["cooldown_note"] = cooldown
            stem = KERAS if model == args.keras else os.path.splitext(os.path.basename(model))[0]
            results[stem] = result
    doc = {
        "runner_version": RUNNER_VERSION,
        "device": device_facts(),
        "delegate": json.loads(args.delegate),
        "warmup": args.warmup,
        "repeats": args.repeats,
        "classes": classes,
        "images": [os.path.relpath(p, args.images) for p, _ in images],
        "results": results,
    }
    _write_json(doc, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
