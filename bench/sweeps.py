"""Helpers shared by the benchmarks: run pruneflow as a user would and read its runs back.

They are the tests' own helpers (tests/helpers/), so both run pruneflow the same way."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.cli import clean_env, run_cli  # noqa: E402
from helpers.cli import read_runs as _read_runs  # noqa: E402

__all__ = ["PAPER_METHOD", "clean_env", "read_runs", "run_pruneflow", "spread"]

# The paper's pruning recipe (and pruneflow's default before issue #11): the prune=paper option
# (conf/prune/paper.yaml).
PAPER_METHOD = ("prune=paper",)


def run_pruneflow(cwd: str | Path, *args: str) -> None:
    """`python -m pruneflow ARGS` in ``cwd``; raises with its stderr if it fails."""
    proc = run_cli(list(args), cwd=Path(cwd), timeout=None)
    if proc.returncode != 0:
        raise RuntimeError(f"pruneflow {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def read_runs(cwd: str | Path) -> list:
    """Every MLflow run in ``cwd``'s default store, oldest first."""
    return _read_runs(Path(cwd))[1]


def spread(values: list[float]) -> dict:
    """Min, median and max of ``values`` (ratios measured pair by pair, as BENCHMARKS.md gives
    them)."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}
