"""Issue #29: what a short `pruneflow compare` at the end of every sweep costs, and how close its
ratios come to a longer compare's: the figures that decide `tracking.compare_rounds`'s default.

Each round runs the README's sweep (`pruneflow -m prune.sparsity=0.5,0.9`, the default budget,
device=local) twice, each from a cold start in an empty folder (no baseline cache): once as it is
and once ending with a short compare (`tracking.compare_rounds=SHORT`), alternating which goes
first, and reports their wall times and the ratio (with / without) pair by pair. Then, on the
last sweep that ended with its compare, `pruneflow compare --rounds LONG` re-times the same
models, and each run variant's short ratio to dense is set against the long one: the relative
difference of the points, whether the long point lies in the short 95% interval, and the short
interval's width. Writes bench/results/compare_cost.json.

    python bench/compare_cost.py [ROUNDS] [SIZE] [SHORT] [LONG]

ROUNDS: pairs of sweeps (default 3). SIZE: `readme` (default) or `tiny` (+debug=tiny: a check
that the script works, its numbers mean little). SHORT, LONG: compare rounds (default 3, 20).
Run it alone: the timings are only worth anything on a machine doing nothing else.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sweeps import run_pruneflow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.cli import TINY  # noqa: E402

HERE = Path(__file__).resolve().parent
SWEEP = ("-m", "prune.sparsity=0.5,0.9")  # the README's first sweep
COMPARE_ROUNDS_KEY = "tracking.compare_rounds"


def sweep(work: Path, size: str, short: int | None) -> tuple[float, Path]:
    """The sweep in the empty folder ``work``, ending with a compare of ``short`` rounds (None:
    without); (its wall seconds, its folder)."""
    args = [*SWEEP, *(TINY if size == "tiny" else [])]
    args.append(f"{COMPARE_ROUNDS_KEY}={short or 0}")  # without: 0, whatever the default
    t0 = time.perf_counter()
    run_pruneflow(work, *args)
    wall = time.perf_counter() - t0
    (folder,) = (work / "multirun").glob("*/*")
    return wall, folder


def closeness(short_csv: Path, long_csv: Path) -> dict:
    """Each run variant's ratio to dense from the short compare against the long one's."""
    short, long = (pd.read_csv(p) for p in (short_csv, long_csv))
    keys = ["run_id", "variant"]
    both = short[short["dense"] == 0].merge(
        long[long["dense"] == 0], on=keys, suffixes=("_short", "_long")
    )
    rel = (both["ratio_to_dense_short"] / both["ratio_to_dense_long"] - 1).abs()
    inside = (both["ratio_ci_low_short"] <= both["ratio_to_dense_long"]) & (
        both["ratio_to_dense_long"] <= both["ratio_ci_high_short"]
    )
    width = both["ratio_ci_high_short"] / both["ratio_ci_low_short"]
    rows = [
        {
            "run_id": r["run_id"],
            "variant": r["variant"],
            "short": r["ratio_to_dense_short"],
            "short_ci": [r["ratio_ci_low_short"], r["ratio_ci_high_short"]],
            "long": r["ratio_to_dense_long"],
            "long_ci": [r["ratio_ci_low_long"], r["ratio_ci_high_long"]],
        }
        for _, r in both.iterrows()
    ]
    return {
        "models": len(both),
        "relative_difference_median": float(rel.median()),
        "relative_difference_max": float(rel.max()),
        "long_point_in_short_interval": int(inside.sum()),
        "short_interval_high_over_low_median": float(width.median()),
        "rows": rows,
    }


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    size = sys.argv[2] if len(sys.argv) > 2 else "readme"
    short = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    long = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    assert size in ("readme", "tiny"), f"SIZE {size!r}: readme or tiny"
    pairs = []
    with tempfile.TemporaryDirectory(prefix="compare-cost.") as tmp:
        last = None
        for r in range(rounds):
            walls = {}
            for arm in ("without", "with") if r % 2 == 0 else ("with", "without"):
                work = Path(tmp) / f"r{r}-{arm}"
                work.mkdir()
                walls[arm], folder = sweep(work, size, short if arm == "with" else None)
                if arm == "with":
                    last = (work, folder)
            pair = {**walls, "ratio": walls["with"] / walls["without"]}
            pairs.append(pair)
            print(
                f"round {r + 1}/{rounds}: without {walls['without']:.1f} s, with a "
                f"{short}-round compare {walls['with']:.1f} s, ratio {pair['ratio']:.3f}",
                flush=True,
            )
        work, folder = last
        out = Path(tmp) / "long"
        t0 = time.perf_counter()
        run_pruneflow(work, "compare", "--rounds", str(long), "--out", str(out))
        long_s = time.perf_counter() - t0
        near = closeness(folder / "report" / "compare.csv", out / "compare.csv")
    ratios = [p["ratio"] for p in pairs]
    result = {
        "size": size,
        "sweep": " ".join(SWEEP),
        "short_rounds": short,
        "long_rounds": long,
        "pairs": pairs,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "extra_s_median": statistics.median(p["with"] - p["without"] for p in pairs),
        "long_compare_s": long_s,
        "closeness": near,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "compare_cost.json").write_text(json.dumps(result, indent=2))
    print(
        f"sweep {' '.join(SWEEP)} ({size}), {rounds} pairs: with a {short}-round compare / "
        f"without = {result['ratio_median']:.3f} ({min(ratios):.3f}-{max(ratios):.3f}), "
        f"+{result['extra_s_median']:.1f} s; a {long}-round compare alone {long_s:.1f} s"
    )
    print(
        f"{short} rounds against {long}, {near['models']} run variants: ratio to dense differs by "
        f"{near['relative_difference_median']:.1%} (median), {near['relative_difference_max']:.1%}"
        f" (max); the {long}-round point inside the {short}-round interval for "
        f"{near['long_point_in_short_interval']} of {near['models']}; the {short}-round interval's"
        f" high/low {near['short_interval_high_over_low_median']:.3f} (median)"
    )
    assert not math.isnan(result["ratio_median"])


if __name__ == "__main__":
    main()
