#!/usr/bin/env python3
"""pruneflow device runner: timed per-image TFLite inference, self-contained.

This one file is what runs on the device (a Raspberry Pi, or this machine for ``device=local``).
It needs python3, numpy, Pillow and LiteRT (``ai_edge_litert``, or ``tflite_runtime`` where that
is what the device has) and nothing from pruneflow or TensorFlow.

Protocol (the paper's, with its flaws fixed by the host's statistics): every image is loaded from
disk, decoded, preprocessed and classified one at a time; each image's time covers all of that.
The first image's time is kept apart by the host (it pays for lazy initialisation).

Usage::

    python3 device_runner.py --images DIR --out result.json \
        [--delegate '{"name": "xnnpack", "threads": 1, "fallback": "builtin"}'] MODEL.tflite...

``DIR`` holds ``<class>/<image>.png|jpg`` files, optionally with a ``manifest.json``
(``{"classes": [...], "images": [[relative path, label index], ...]}``) fixing order and labels.
Writes one JSON document to ``--out`` (see ``main``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np
from PIL import Image

RUNNER_VERSION = 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DELEGATES = ("none", "xnnpack", "armnn", "external")
FALLBACKS = ("builtin", "error")  # when a delegate cannot run a model: builtin kernels, or fail
NEEDS_LIBRARY = ("armnn", "external")  # delegates loaded from a shared library on the device


class ArgumentError(ValueError):
    """A bad argument, named with its valid values (``threads=0 is invalid: valid values ...``).

    pruneflow re-exports it as ``pruneflow.errors.ArgumentError`` and prefixes config keys to
    ``name``; it lives here because this file must not import pruneflow.
    """

    def __init__(self, name: str, value, valid: str, required: bool = False):
        self.name, self.value, self.valid, self.required = name, value, valid, required
        super().__init__(self.describe())

    def describe(self, prefix: str = "") -> str:
        """The message, with ``prefix`` (e.g. ``"delegate."``) before the argument's name."""
        if self.required:
            return f"{prefix}{self.name} is required: {self.valid}"
        return f"{prefix}{self.name}={self.value!r} is invalid: valid values are {self.valid}"


def check_delegate(
    name: str, threads: int | None = 1, fallback: str = "builtin", library: str | None = None
) -> None:
    """Raise :class:`ArgumentError` for a delegate this runner cannot be asked for."""
    if name not in DELEGATES:
        raise ArgumentError("name", name, str(list(DELEGATES)))
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise ArgumentError("threads", threads, "null (the runtime's default) or integers >= 1")
    if threads is not None and threads < 1:
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


def _runtime():
    """(module with Interpreter/load_delegate, runtime name, version)."""
    try:
        import ai_edge_litert
        from ai_edge_litert import interpreter as lite

        return lite, "ai_edge_litert", getattr(ai_edge_litert, "__version__", "unknown")
    except ImportError:
        import tflite_runtime
        from tflite_runtime import interpreter as lite  # older images of Raspberry Pi OS

        return lite, "tflite_runtime", getattr(tflite_runtime, "__version__", "unknown")


def make_interpreter(model_path: str, delegate: dict):
    """Build and allocate an interpreter for ``delegate``; returns (interpreter, kernels, note).

    ``kernels`` names what actually runs: ``xnnpack``, ``builtin`` or the external delegate.
    A delegate that cannot be loaded, or that rejects the model in ``allocate_tensors`` (XNNPACK
    does so for some sparse int8 models), falls back to builtin kernels when
    ``delegate["fallback"] == "builtin"``; ``note`` then says why.
    """
    lite, _, _ = _runtime()
    name = delegate.get("name", "xnnpack")
    threads = delegate.get("threads")
    fallback = delegate.get("fallback", "builtin")
    lib = delegate.get("library")
    check_delegate(name, threads, fallback, lib)
    builtin = lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES

    def build(**kwargs):
        interp = lite.Interpreter(model_path=model_path, num_threads=threads, **kwargs)
        interp.allocate_tensors()
        return interp

    if name == "none":
        return build(experimental_op_resolver_type=builtin), "builtin", ""
    try:
        if name == "xnnpack":
            return build(), "xnnpack", ""
        options = {k: str(v) for k, v in (delegate.get("options") or {}).items()}
        interp = build(
            experimental_delegates=[lite.load_delegate(lib, options)],
            experimental_op_resolver_type=builtin,
        )
        return interp, name, ""
    except Exception as exc:  # noqa: BLE001 - any delegate failure may fall back
        if fallback != "builtin":
            raise
        note = f"{name} failed ({type(exc).__name__}: {exc}); fell back to builtin kernels"
        return build(experimental_op_resolver_type=builtin), "builtin", note


def to_input(pixels: np.ndarray, detail: dict) -> np.ndarray:
    """Cast raw pixel values (0..255, NHWC) to the model input's dtype, quantizing if needed."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer):
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        q = np.round(pixels.astype(np.float32) / scale + zero)
        return np.clip(q, info.min, info.max).astype(dtype)
    return pixels.astype(dtype)


def load_image(path: str, height: int, width: int, channels: int) -> np.ndarray:
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


def time_model(model_path: str, images: list[tuple[str, int]], delegate: dict) -> dict:
    """Run the protocol for one model; times are milliseconds, first image included."""
    t0 = time.perf_counter()
    interp, kernels, note = make_interpreter(model_path, delegate)
    load_ms = (time.perf_counter() - t0) * 1e3
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    _, height, width, channels = (int(d) for d in inp["shape"])
    times, preds = [], []
    for path, _ in images:
        start = time.perf_counter()
        x = to_input(load_image(path, height, width, channels), inp)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        pred = int(np.argmax(interp.get_tensor(out["index"])[0]))
        times.append((time.perf_counter() - start) * 1e3)
        preds.append(pred)
    return {
        "model": os.path.basename(model_path),
        "kernels": kernels,
        "note": note,
        "load_ms": load_ms,
        "times_ms": times,
        "predictions": preds,
        "labels": [lbl for _, lbl in images],
    }


def device_facts() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
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
    _, runtime, runtime_version = _runtime()
    import PIL

    return {
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": os_name,
        "hostname": platform.node(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "runtime": runtime,
        "runtime_version": runtime_version,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help=".tflite files; each result is keyed by stem")
    parser.add_argument("--images", required=True, help="folder of <class>/<image> files")
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    parser.add_argument("--delegate", default='{"name": "xnnpack"}', help="delegate as JSON")
    args = parser.parse_args(argv)

    delegate = json.loads(args.delegate)
    classes, images = read_images(args.images)
    if not images:
        print(f"device_runner: no images under {args.images}", file=sys.stderr)
        return 2
    results = {}
    for model in args.models:
        stem = os.path.splitext(os.path.basename(model))[0]
        results[stem] = time_model(model, images, delegate)
    doc = {
        "runner_version": RUNNER_VERSION,
        "device": device_facts(),
        "delegate": delegate,
        "classes": classes,
        "images": [os.path.relpath(p, args.images) for p, _ in images],
        "results": results,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    tmp = args.out + ".part"
    with open(tmp, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
