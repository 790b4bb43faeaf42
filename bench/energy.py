"""Issue #29's figure: what the energy pass costs a study, and whether it moves latency.

Runs the same small study (`pruneflow -m prune.sparsity=0,0.5` on device=local) with energy off
(`device.energy.source=none`) and on (`source=command`, a stand-in meter printing watts, run on
the device: the sampler's processes compete with inference as a real meter's would), ROUNDS
times in turn (off, on, on, off, ...: drift cancels), each study in its own MLflow store and all
sharing one cache (a warm-up study trains the baselines first, not counted). Reports each
study's wall time and the ratio on / off, and, per job and .tflite variant, whether the latency
p50 with energy on lies within the 95% interval of the p50 with it off (distribution-free: the
binomial order statistics of the off run's per-image times, first image left out).

    python bench/energy.py [--rounds N] [--tiny]

--tiny: `+debug=tiny` and a 0.5 s window after 0.3 s idle (to see that it works); default: the
default budget with benchmark.images=100 and energy's default windows (10 s after 3 s idle).
Writes bench/results/energy.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from helpers.cli import TINY, pruneflow_command, run_cli  # noqa: E402

SWEEP = ["prune.sparsity=0,0.5"]
Z = 1.959963984540054  # the normal 0.975 quantile


def median_interval(times: list[float]) -> tuple[float, float]:
    """A 95% distribution-free interval of the median: order statistics j and k of the sorted
    times with the binomial(n, 1/2) normal approximation (n >= ~20)."""
    t, n = sorted(times), len(times)
    j = max(0, math.floor(n / 2 - Z * math.sqrt(n) / 2) - 1)
    k = min(n - 1, math.ceil(n / 2 + Z * math.sqrt(n) / 2))
    return t[j], t[k]


def study(tmp: Path, name: str, cache: Path, extra: list[str], budget: list[str]) -> float:
    """One study in its own store (so no job is skipped as already done); its wall time."""
    out = tmp / name
    args = ["-m", *SWEEP, *budget, *extra, f"paths.cache_dir={cache}"]
    args += [f"tracking.dir={out / 'mlruns'}", f"hydra.sweep.dir={out / 'multirun'}"]
    t0 = time.perf_counter()
    proc = run_cli(args, cwd=tmp, command=pruneflow_command(), timeout=7200)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return wall


def per_image(tmp: Path, name: str) -> dict[str, dict[str, list[float]]]:
    """{job's sparsity: {variant: per-image times of the first pass, first image left out}}
    and the energy metrics, from a study's store."""
    from mlflow.tracking import MlflowClient

    from pruneflow.results import BENCHMARK_DIR, KERAS, RUNNER_FILE, SWEEP_TAG

    uri = f"sqlite:///{tmp / name / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("pruneflow")
    found = {}
    for run in client.search_runs([exp.experiment_id]):
        if SWEEP_TAG in run.data.tags:
            continue
        path = client.download_artifacts(
            run.info.run_id, f"{BENCHMARK_DIR}/{RUNNER_FILE}", str(tmp / name / run.info.run_id)
        )
        doc = json.loads(Path(path).read_text())
        times = {
            v: r["times_ms"][1 : len(r["labels"])] for v, r in doc["results"].items() if v != KERAS
        }
        energy = {k: v for k, v in run.data.metrics.items() if k.endswith("/energy_mj")}
        found[run.data.params["prune.sparsity"]] = {"times": times, "energy": energy}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="studies of each kind")
    parser.add_argument("--tiny", action="store_true", help="+debug=tiny, short windows")
    args = parser.parse_args()
    if args.tiny:
        budget = TINY
        windows = ["device.energy.window_s=0.5", "device.energy.idle_s=0.3"]
    else:
        budget, windows = ["benchmark.images=100"], []
    with tempfile.TemporaryDirectory(prefix="pruneflow-bench-energy.") as tmp:
        tmp = Path(tmp)
        meter = tmp / "meter"
        meter.write_text("#!/bin/sh\necho 'power: 2.5 W'\n")
        meter.chmod(0o755)
        off = ["device.energy.source=none"]
        on = ["device.energy.source=command", f"device.energy.command={meter}", *windows]
        cache = tmp / "cache"
        study(tmp, "warmup", cache, off, budget)  # trains the baselines into the cache
        walls: dict[str, list[float]] = {"off": [], "on": []}
        order = [k for i in range(args.rounds) for k in (("off", "on"), ("on", "off"))[i % 2]]
        names = []
        for i, kind in enumerate(order):
            name = f"{kind}{i}"
            walls[kind].append(study(tmp, name, cache, off if kind == "off" else on, budget))
            names.append((kind, name))
            print(f"{name}: {walls[kind][-1]:.1f} s", flush=True)
        checks, inside, total = [], 0, 0
        offs = [per_image(tmp, n) for k, n in names if k == "off"]
        ons = [per_image(tmp, n) for k, n in names if k == "on"]
        for off_run, on_run in zip(offs, ons, strict=True):
            for job, found in off_run.items():
                for variant, times in found["times"].items():
                    low, high = median_interval(times)
                    p50 = _median(on_run[job]["times"][variant])
                    ok = low <= p50 <= high
                    inside, total = inside + ok, total + 1
                    checks.append(
                        {
                            "sparsity": job,
                            "variant": variant,
                            "off_p50_ms": _median(times),
                            "off_interval_ms": [low, high],
                            "on_p50_ms": p50,
                            "inside": ok,
                            "energy_mj": on_run[job]["energy"].get(f"{variant}/energy_mj"),
                        }
                    )
        # The control: the same check between two studies of one setting (off against off,
        # on against on). Per-image intervals hold one study's noise, not the drift between
        # studies timed minutes apart (issue #29's own point): energy moves latency only if
        # on-against-off fails more often than a setting against itself.
        control, ctotal = 0, 0
        for runs in (offs, ons):
            for first, later in zip(runs, runs[1:], strict=False):
                for job, found in first.items():
                    for variant, times in found["times"].items():
                        low, high = median_interval(times)
                        p50 = _median(later[job]["times"][variant])
                        control, ctotal = control + (low <= p50 <= high), ctotal + 1
        shift = sorted(abs(math.log(c["on_p50_ms"] / c["off_p50_ms"])) for c in checks)
    mean = {k: sum(v) / len(v) for k, v in walls.items()}
    result = {
        "size": "tiny" if args.tiny else "default budget, benchmark.images=100, windows 10 s/3 s",
        "study": SWEEP,
        "walls_s": walls,
        "wall_ratio_on_off": mean["on"] / mean["off"],
        "p50_inside_off_interval": f"{inside} of {total}",
        "control_same_setting_inside": f"{control} of {ctotal}",
        "median_abs_log_ratio_on_off": shift[len(shift) // 2] if shift else None,
        "checks": checks,
    }
    out = HERE / "results" / "energy.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(
        f"wall on/off {result['wall_ratio_on_off']:.3f} (off {mean['off']:.1f} s, on "
        f"{mean['on']:.1f} s); p50 with energy on inside the off interval: {inside} of {total}; "
        f"control, a setting against itself: {control} of {ctotal}"
    )
    print(f"wrote {out}")


def _median(times: list[float]) -> float:
    t, n = sorted(times), len(times)
    return t[n // 2] if n % 2 else (t[n // 2 - 1] + t[n // 2]) / 2


if __name__ == "__main__":
    main()
