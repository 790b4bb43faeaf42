"""How long `pruneflow inspect` takes on a MobileNetV2-size model (issue #28's target: < 15 s,
no training), and where its time goes.

Times the console script as a user runs it, ROUNDS times each (medians, min-max):

- a model file: tf_keras's MobileNetV2 (``weights=None``, 224x224, 1000 classes: 3.5 M
  parameters, 0.3 G MACs) saved as ``.keras`` in a temporary folder;
- a backbone option: ``backbone=mobilenetv2 backbone.weights=null backbone.input_size=224``
  (the digits' class count read from the data, as a run reads it).

Then, in this process, the phases of one file: importing TensorFlow and tfmot, loading the
file, and the analysis itself (:func:`pruneflow.steps.model.inspect.inspect_model`). The load
average is printed beside: the machines are shared and every figure grows with it.

    python bench/inspect_speed.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sweeps import clean_env  # noqa: F401 - puts tests/ on sys.path for helpers

from helpers.cli import pruneflow_command, run_cli


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = run_cli(args, cwd=cwd, command=pruneflow_command(), timeout=None)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"pruneflow {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return seconds


def line(label: str, seconds: list[float]) -> str:
    return (
        f"{label:<58} {statistics.median(seconds):6.1f} s "
        f"({min(seconds):.1f}-{max(seconds):.1f}, n={len(seconds)})"
    )


def main(rounds: int) -> None:
    import pruneflow  # noqa: F401 - tf_keras for tfmot, before TensorFlow loads

    with tempfile.TemporaryDirectory(prefix="inspect-speed.") as tmp:
        folder = Path(tmp)
        phases = {}
        started = time.perf_counter()
        import tensorflow_model_optimization  # noqa: F401
        import tf_keras as keras

        from pruneflow.steps.model.inspect import inspect_model, load_model_file

        phases["import TensorFlow, tf_keras, tfmot, pruneflow"] = time.perf_counter() - started
        model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
        path = folder / "mobilenetv2.keras"
        model.save(path)
        print(
            f"model: {model.name}, {len(model.layers)} layers, {model.count_params():,} "
            f"parameters, {path.stat().st_size / 1e6:.1f} MB; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
            flush=True,
        )
        started = time.perf_counter()
        loaded = load_model_file(path, [])
        phases["load the .keras file"] = time.perf_counter() - started
        started = time.perf_counter()
        rows = inspect_model(loaded)
        phases[f"inspect_model ({len(rows)} rows)"] = time.perf_counter() - started
        files = [timed(["inspect", str(path)], folder) for _ in range(rounds)]
        print(line("pruneflow inspect mobilenetv2.keras", files), flush=True)
        option = ["backbone=mobilenetv2", "backbone.weights=null", "backbone.input_size=224"]
        built = [timed(["inspect", *option], folder) for _ in range(rounds)]
        print(line(f"pruneflow inspect {' '.join(option)}", built), flush=True)
        print("in one process:")
        for name, seconds in phases.items():
            print(f"  {name:<56} {seconds:6.2f} s")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
