"""``pruneflow compare``: a sweep's .tflite variants and its dense baseline's, re-timed in
interleaved rounds on the sweep's device (:mod:`pruneflow.study.compare`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pruneflow import results
from pruneflow.errors import ConfigError, PruneflowError
from pruneflow.process import stderr_held
from pruneflow.tracking.config import MAX_ROUNDS, MIN_ROUNDS, ROUNDS_RANGE
from pruneflow.tracking.runs import resolve_uri, store_client
from pruneflow.tracking.store import TrackingError, check_folder, check_store

PROG = "pruneflow compare"


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str]) -> int:
    from pruneflow.study.compare import DEFAULT_ROUNDS, DEFAULT_SEED
    from pruneflow.study.interleaved import DEFAULT_EXPERIMENT

    parser = _Parser(
        prog=PROG,
        description="Re-time every .tflite variant of a sweep's runs and the same variants of "
        "their dense baseline on the sweep's device, interleaved: each round times every model "
        f"once in a shuffled order; writes {results.COMPARE_CSV} (invoke p50, ratio to dense and "
        f"its 95% paired interval over the rounds) and {results.COMPARE_PLOT} into the sweep's "
        "report folder and its parent run.",
    )
    parser.add_argument(
        "--tracking-uri", help="the MLflow store (default: ./mlruns, or $MLFLOW_TRACKING_URI)"
    )
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT)
    parser.add_argument("--sweep", help="a sweep's parent run id (default: the latest sweep)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"rounds, each timing every model once ({ROUNDS_RANGE}; default {DEFAULT_ROUNDS})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="of the rounds' orders")
    parser.add_argument(
        "--out",
        type=Path,
        help="default: the sweep's folder's report/ (needed when that folder is gone)",
    )
    args = parser.parse_args(argv)
    if not MIN_ROUNDS <= args.rounds <= MAX_ROUNDS:
        return _fail(
            f"--rounds {args.rounds} is invalid: valid values are {ROUNDS_RANGE} "
            f"(a paired interval over the rounds needs {MIN_ROUNDS})",
            2,
        )
    if args.out is not None:  # before the store is read: a file there would stop mkdir
        taken = next((p for p in (args.out, *args.out.parents) if p.exists()), None)
        if taken is not None and not taken.is_dir():
            what = "is a file" if taken == args.out else f"is inside a file ({taken})"
            return _fail(f"--out {args.out} {what}: valid values are a folder, existing or new", 2)
        try:  # a folder it cannot make or write in (permission, a read-only file system)
            check_folder("--out", args.out)
        except ConfigError as exc:
            return _fail(str(exc), 2)
    from pruneflow.errors import DeviceError
    from pruneflow.study.compare import CompareError, compare, lines, plan
    from pruneflow.study.compare.plan import estimate_line
    from pruneflow.study.report import ReportError, select
    from pruneflow.study.report.selection import skipped_line

    uri = resolve_uri(args.tracking_uri, "mlruns")
    try:
        check_store(uri, fix="pass --tracking-uri")
        try:
            selection = select(uri, args.experiment, args.sweep)
        except PruneflowError:
            raise
        except Exception as exc:  # noqa: BLE001 - a database that cannot be read, mostly
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise TrackingError(
                f"the MLflow store {uri.split('@')[-1]} cannot be read: {first} "
                "(pass --tracking-uri)"
            ) from None
        if selection.foreign:
            print(skipped_line(selection.foreign), flush=True)
        out = args.out
        if out is None:
            client = store_client(uri)
            tags = client.get_run(selection.parent_id).data.tags
            folder = tags.get(results.SWEEP_DIR_TAG)
            if not folder or not Path(folder).is_dir():
                return _fail(
                    f"the folder of {selection.title} ({folder or 'unknown'}) is gone: pass "
                    f"--out FOLDER for {results.COMPARE_CSV} and {results.COMPARE_PLOT}",
                    2,
                )
            out = Path(folder) / results.REPORT_DIR
        the_plan = plan(selection)
        print(
            f"compare: {selection.title}: "
            f"{sum(len(g.models) for g in the_plan.groups)} models, {args.rounds} rounds; "
            f"{estimate_line(the_plan, selection.runs, args.rounds)}",
            flush=True,
        )
        with stderr_held():  # TensorFlow's start-up lines, the converter's: off the console
            table, paths = compare(
                the_plan, out, args.rounds, args.seed, lambda line: print(line, flush=True)
            )
    except (ReportError, CompareError, TrackingError, DeviceError, PruneflowError) as exc:
        return _fail(str(exc), 1)
    print(lines(table, the_plan.settings))
    print(
        f"compare of {selection.title}: {', '.join(str(p) for p in paths)} (also the parent "
        f"run's {results.REPORT_DIR}/)"
    )
    return 0
