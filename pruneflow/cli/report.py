"""``pruneflow report``: tables, a CSV and plots of a sweep's (or an experiment's) runs, and
the report's pick in the Model Registry (:mod:`pruneflow.study.report`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pruneflow.errors import ConfigError
from pruneflow.results import REPORT_MD, RUNS_CSV, SUMMARY_CSV
from pruneflow.study.report import (
    DEFAULT_TOLERANCE,
    ReportError,
    report_table,
    select,
    write_report,
)
from pruneflow.study.report import columns as col
from pruneflow.study.report.budget import BadBudget, parse_budget, pick_within, within_line
from pruneflow.study.report.plots import plot_names
from pruneflow.study.report.registry import register
from pruneflow.study.report.selection import skipped_line
from pruneflow.study.report.tables import (
    best_line,
    best_variant,
    has_channels,
    has_clusters,
    pick_text,
)
from pruneflow.tracking.runs import resolve_uri
from pruneflow.tracking.store import TrackingError, check_folder, check_store


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="pruneflow report",
        description="Tables, a CSV and plots of a sweep's (or an experiment's) runs.",
    )
    parser.add_argument(
        "--tracking-uri", help="the MLflow store (default: ./mlruns, or $MLFLOW_TRACKING_URI)"
    )
    parser.add_argument("--experiment", default="pruneflow")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sweep", help="a sweep's parent run id (default: the latest sweep)")
    which.add_argument("--all", action="store_true", help="every run of the experiment")
    which.add_argument(
        "--filter", help="an MLflow filter, e.g. \"params.`prune.sparsity` > '0.5'\""
    )
    parser.add_argument("--out", type=Path, help="default: reports/<sweep name or experiment>/")
    parser.add_argument(
        "--register",
        metavar="NAME",
        help="register the report's pick (the smallest gzip file among the variants at their "
        "best sparsity, or (sparsity, channels) where runs removed channels; with --budget, the "
        "pick within it) in the Model Registry as NAME",
    )
    parser.add_argument(
        "--budget",
        metavar="CONSTRAINTS",
        help="name the most accurate run variant whose metrics meet every constraint, e.g. "
        '"tflite_int8/invoke_p50_ms<=2, tflite_int8/gzip_bytes<=60000" (METRIC<=NUMBER or '
        "METRIC>=NUMBER, comma-separated; a bare measure, invoke_p50_ms, is each variant's own)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="accuracy points below the baseline a best sparsity may lose",
    )
    args = parser.parse_args(argv)
    if not args.tolerance >= 0:
        parser.error(f"--tolerance={args.tolerance} is invalid: valid values are points >= 0")
    if args.out is not None:  # before the store is read: a file there would stop mkdir
        taken = next((p for p in (args.out, *args.out.parents) if p.exists()), None)
        if taken is not None and not taken.is_dir():
            what = "is a file" if taken == args.out else f"is inside a file ({taken})"
            return _bad_argument(
                f"--out {args.out} {what}: valid values are a folder, existing or new"
            )
        try:  # a folder it cannot make or write in (permission, a read-only file system)
            check_folder("--out", args.out)
        except ConfigError as exc:
            return _bad_argument(str(exc))
    try:  # before the store is read, and its metric names before anything is written
        budget = parse_budget(args.budget) if args.budget is not None else None
    except BadBudget as exc:
        return _bad_argument(f"--budget {args.budget!r}: {exc}")
    uri = resolve_uri(args.tracking_uri, "mlruns")
    try:
        check_store(uri, fix="pass --tracking-uri")
        selection = select(uri, args.experiment, args.sweep, args.all, args.filter)
        if selection.foreign:
            print(skipped_line(selection.foreign), flush=True)
        name = selection.title.split(" ")[1] if selection.parent_id else args.experiment
        out = args.out or Path("reports") / name
        table = report_table(selection)
        within = pick_within(table, selection.runs, budget) if budget else None
        table, best = write_report(selection, out, args.tolerance, table, within)
        registered = None
        if args.register:
            pick = within if within is not None else best_variant(table, best)
            if pick is None:
                raise ReportError(
                    f"nothing to register as {args.register!r}: no sparsity holds within "
                    f"{args.tolerance:g} points of the baseline"
                )
            version = register(uri, args.experiment, pick, args.register)
            registered = (
                f"registered {args.register} version {version}: {pick[col.VARIANT]} of run "
                f"{pick[col.RUN_ID]} ({pick[col.MODEL]}, {pick_text(pick)})"
            )
    except BadBudget as exc:  # a metric no selected run logs
        return _bad_argument(f"--budget {args.budget!r}: {exc}")
    except (ReportError, TrackingError) as exc:
        print(f"pruneflow report: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"report of {selection.title}: {out}/{REPORT_MD}, {RUNS_CSV}, {SUMMARY_CSV}, "
        f"{', '.join(plot_names(table))}"
    )
    dims = ["channels"] * has_channels(table) + ["clusters"] * has_clusters(table)
    what = "/".join(["best sparsity", *dims])
    print(f"{what} (non-inferior within {args.tolerance:g} accuracy points): {best_line(best)}")
    for (model, variant), b in best.items():  # picks the validation split cannot resolve
        if b.get("unresolved"):
            print(f"unresolved: {model} {variant}: {'; '.join(b['unresolved'])}")
    if within is not None:
        print(within_line(within))
    if registered:
        print(registered)
    return 0


def _bad_argument(message: str) -> int:
    """A bad argument, in one line (argparse's form without its usage): exit status 2."""
    print(f"pruneflow report: error: {message}", file=sys.stderr)
    return 2
