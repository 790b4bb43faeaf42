"""Report stage: runs read back from the MLflow store as the paper's tables, a CSV, plots and the
best sparsity per model.

``pruneflow report`` (:func:`main`) and the end of every sweep (:func:`write_report`, into the
parent run) use it. It reads runs with MLflow's ``search_runs`` (pandas) and names every column
through :mod:`pruneflow.results`; plots are matplotlib (Agg) PNGs.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from pruneflow import results, tracking
from pruneflow.convert import VARIANTS
from pruneflow.errors import PruneflowError

DEFAULT_TOLERANCE = 1.0  # accuracy points below the baseline that still count as holding
RUNS_CSV, REPORT_MD = "runs.csv", "report.md"
PLOTS = (
    "accuracy_vs_sparsity.png",
    "latency_vs_sparsity.png",
    "size_vs_sparsity.png",
    "pareto.png",
)
BEST_TAG = "pruneflow.best_sparsity"  # on the parent run: the report's choice per model
MEASURES = results.VARIANT_MEASURES
# beside the paper's: the per-image time's parts, the steady state, the model's own memory and
# the threads the runtime really ran (where the runs have them)
EXTRA_MEASURES = (
    results.decode("p50"),
    results.invoke("p50"),
    results.steady("p50"),
    results.PEAK_RSS,
    results.THREADS_USED,
)
Z95 = 1.959964  # two-sided 95% normal quantile: the mean's confidence interval


class ReportError(PruneflowError, ValueError):
    """Nothing to report, or no such store, experiment or sweep; the message says which."""


@dataclass
class Selection:
    """The runs a report covers and where they came from."""

    runs: object  # pandas DataFrame from mlflow.search_runs: one row per job run
    title: str
    uri: str
    experiment: str
    parent_id: str | None = None


def select(
    uri: str,
    experiment: str = "pruneflow",
    sweep: str | None = None,
    all_runs: bool = False,
    filter_string: str | None = None,
) -> Selection:
    """The job runs of one sweep (``sweep``: a parent run id; default the latest sweep), of a
    whole experiment (``all_runs``) or matched by an MLflow filter."""
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
        raise ReportError(
            f"no MLflow store at {uri[len('sqlite:///') :]}: run pruneflow in this folder first, "
            "or pass --tracking-uri"
        )
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ReportError(f"no experiment {experiment!r} in {uri}; experiments there: {names}")
    mlflow.set_tracking_uri(uri)
    parent_id, title = None, f"experiment {experiment}"
    if filter_string or all_runs:
        where = filter_string or ""
        if filter_string:
            title += f", runs matching {filter_string!r}"
    else:
        if sweep is None:
            parents = client.search_runs(
                [exp.experiment_id],
                filter_string=f"tags.`{results.SWEEP_TAG}` LIKE 'sweep-%'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if not parents:
                raise ReportError(
                    f"experiment {experiment!r} has no sweep yet: run one (pruneflow -m ...), or "
                    "report every run with --all or some with --filter"
                )
            parent = parents[0]
        else:
            try:
                parent = client.get_run(sweep)
            except MlflowException:
                raise ReportError(
                    f"no run {sweep!r} in {uri} (--sweep takes a parent run id)"
                ) from None
            if results.SWEEP_TAG not in parent.data.tags:
                raise ReportError(f"run {sweep} is not a sweep's parent run (it has no sweep tag)")
        parent_id = parent.info.run_id
        title = f"sweep {parent.data.tags[results.SWEEP_TAG]} (parent run {parent_id})"
        where = _sweep_filter(client, exp.experiment_id, parent_id)
    try:
        runs = mlflow.search_runs(
            [exp.experiment_id], filter_string=where, output_format="pandas", max_results=50000
        )
    except MlflowException as exc:
        raise ReportError(f"--filter {filter_string!r} is not an MLflow filter: {exc}") from None
    sweep_col = f"tags.{results.SWEEP_TAG}"
    if len(runs) and sweep_col in runs:
        runs = runs[runs[sweep_col].isna()]  # job runs only, not parents
    if not len(runs):
        raise ReportError(f"no runs to report in {title} of {uri}")
    return Selection(runs.reset_index(drop=True), title, uri, experiment, parent_id)


def _sweep_filter(client, experiment_id: str, parent_id: str) -> str:
    """The sweep's own runs and, for jobs it skipped, the finished runs it found (resume)."""
    import json

    ids = {
        r.info.run_id
        for r in client.search_runs(
            [experiment_id], filter_string=f"tags.`{results.PARENT_TAG}` = '{parent_id}'"
        )
    }
    try:
        jobs = json.loads(Path(client.download_artifacts(parent_id, results.JOBS_FILE)).read_text())
    except Exception:  # noqa: BLE001 - a parent without its job list: its own runs only
        jobs = []
    for job in jobs:
        done = tracking.finished_run(client.tracking_uri, experiment_id, job["key"])
        if done is not None:
            ids.add(done.info.run_id)
    if not ids:
        raise ReportError(f"sweep {parent_id} has no runs (it was stopped before any job ran?)")
    return "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in sorted(ids)) + ")"


# -- tables ---------------------------------------------------------------------------------------
def rows(selection: Selection):
    """One row per run and variant: runs.csv, and what every table and plot reads."""
    import pandas as pd

    runs = selection.runs
    known = [results.KERAS, *VARIANTS]
    found = {
        c.split(".", 1)[1].rsplit("/", 1)[0] for c in runs if c.endswith("/" + results.ACCURACY)
    }
    variants = [v for v in known if v in found]
    out = []
    for _, run in runs.iterrows():
        tags = {c[5:]: v for c, v in run.items() if c.startswith("tags.")}
        name = tags.get("mlflow.runName") or ""
        model = _model(tags, name)
        for variant in variants:
            row = {
                "run_id": run["run_id"],
                "run_name": name,
                "status": run["status"],
                "model": model,
                "dataset": tags.get(results.DATASET_TAG) or model.split("-")[0],
                "backbone": tags.get(results.BACKBONE_TAG) or "-".join(model.split("-")[1:]),
                "target_sparsity": _float(run.get("params.prune.sparsity")),
                "measured_sparsity": _float(run.get(f"metrics.{results.SPARSITY}")),
                "variant": variant,
            }
            for m in (*MEASURES, *EXTRA_MEASURES):
                row[m] = _float(run.get(f"metrics.{results.metric(variant, m)}"))
            threads = run.get("params.delegate.threads")
            row["threads"] = (
                "–"  # TensorFlow does not take LiteRT's thread count
                if variant == results.KERAS
                else "default"
                if threads in (None, "None", "null")
                else str(threads)
            )
            row["val_images"] = _float(run.get(f"metrics.{results.VAL_IMAGES}"))
            row["baseline_accuracy"] = _float(run.get(f"metrics.{results.BASELINE_ACCURACY}"))
            row["val_loss"] = _float(run.get("metrics." + results.CURVES["val_loss"]))
            row["device"] = tags.get("device") or ""
            # where this variant was timed: the device, or "host" beside a remote device
            row["timed_on"] = tags.get(results.timed_on_tag(variant)) or row["device"]
            row["kernels"] = tags.get(results.kernels_tag(variant)) or ""
            row["error"] = tags.get(results.ERROR_MESSAGE_TAG) or ""
            out.append(row)
    table = pd.DataFrame(out)
    return table.sort_values(["model", "target_sparsity", "variant", "threads"], kind="stable")


def _model(tags: dict, run_name: str) -> str:
    if tags.get(results.MODEL_TAG):
        return tags[results.MODEL_TAG]
    if tags.get(results.DATASET_TAG) and tags.get(results.BACKBONE_TAG):
        return f"{tags[results.DATASET_TAG]}-{tags[results.BACKBONE_TAG]}"
    return run_name.rsplit("-s", 1)[0] if "-s" in run_name else run_name or "?"


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def best_sparsity(table, tolerance: float = DEFAULT_TOLERANCE) -> dict[tuple[str, str], dict]:
    """{(model, variant): {"sparsity", "accuracy", "baseline", "why"}}: the highest target
    sparsity whose accuracy is within ``tolerance`` points of the model's baseline accuracy
    (sparsity NaN with the reason when there is none)."""
    best = {}
    for (model, variant), group in table.groupby(["model", "variant"], sort=True):
        baseline = group["baseline_accuracy"].dropna()
        if baseline.empty:
            best[(model, variant)] = {"sparsity": math.nan, "why": "no baseline accuracy"}
            continue
        base = float(baseline.median())
        ok = group[(group["accuracy"] >= base - tolerance / 100) & group["accuracy"].notna()]
        if ok.empty:
            best[(model, variant)] = {
                "sparsity": math.nan,
                "baseline": base,
                "why": f"no sparsity within {tolerance:g} points of the baseline",
            }
            continue
        top = ok.sort_values(["target_sparsity", "accuracy"]).iloc[-1]
        best[(model, variant)] = {
            "sparsity": float(top["target_sparsity"]),
            "accuracy": float(top["accuracy"]),
            "baseline": base,
            "why": "",
        }
    return best


def _fmt(v, spec: str = ".4f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def markdown(selection: Selection, table, best, tolerance: float) -> str:
    lines = [
        f"# pruneflow report: {selection.title}",
        "",
        f"Store {selection.uri}, experiment {selection.experiment!r}: "
        f"{table['run_id'].nunique()} runs, {table['model'].nunique()} models. Accuracy is top-1 "
        "on the whole validation split; latency per image (the first apart), statistics over "
        "the rest; `–` marks a value the run does not have (failed or partial runs).",
        "",
        f"## Best sparsity per model (Table 5): the highest within {tolerance:g} accuracy points "
        "of the baseline",
        "",
        "| model | variant | baseline accuracy | best sparsity | accuracy there |",
        "|---|---|---|---|---|",
    ]
    for (model, variant), b in best.items():
        chosen = _fmt(b["sparsity"], "g") if not b["why"] else b["why"]
        lines.append(
            f"| {model} | {variant} | {_fmt(b.get('baseline'))} | {chosen} | "
            f"{_fmt(b.get('accuracy', math.nan))} |"
        )
    lines += ["", "## Accuracy per variant (Table 8)", ""]
    variants = list(dict.fromkeys(table["variant"]))
    lines += [
        "| model | sparsity | measured | images | " + " | ".join(variants) + " |",
        "|---|---|---|---|" + "---|" * len(variants),
    ]
    for (model, sparsity, _), g in table.groupby(
        ["model", "target_sparsity", "run_id"], sort=False
    ):
        acc = dict(zip(g["variant"], g["accuracy"], strict=True))
        first = g.iloc[0]
        lines.append(
            f"| {model} | {_fmt(sparsity, 'g')} | {_fmt(first['measured_sparsity'], '.3f')} | "
            f"{_fmt(first['val_images'], '.0f')} | "
            + " | ".join(_fmt(acc.get(v, math.nan)) for v in variants)
            + " |"
        )
    lines += [
        "",
        "## Latency per image (Tables 6, 7 and 9), ms",
        "",
        "Per image from the file to the class, as the paper times it; `decode` (read, decode, "
        "preprocess) and `invoke` (set_tensor, invoke, get_tensor) are the p50 of its two parts; "
        "`timed on` is the device, or `host` for a model timed on this machine beside a remote "
        "device; peak RSS is the model's own runner process.",
        "",
        "| model | sparsity | variant | threads | first | mean | std | ste | 95% CI of the mean "
        "| p50 | p99 | decode | invoke | peak RSS MB | timed on | kernels |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        mean, ste = r[results.latency("mean")], r[results.latency("ste")]
        ci = (
            f"{mean - Z95 * ste:.3f} – {mean + Z95 * ste:.3f}"
            if not (math.isnan(mean) or math.isnan(ste))
            else "–"
        )
        lines.append(
            f"| {r['model']} | {_fmt(r['target_sparsity'], 'g')} | {r['variant']} | "
            f"{r['threads']} | "
            + " | ".join(
                _fmt(r[results.latency(m)], ".3f") for m in ("first", "mean", "std", "ste")
            )
            + f" | {ci} | {_fmt(r[results.latency('p50')], '.3f')} | "
            f"{_fmt(r[results.latency('p99')], '.3f')} | "
            f"{_fmt(r[results.decode('p50')], '.3f')} | {_fmt(r[results.invoke('p50')], '.3f')} | "
            f"{_fmt(r[results.PEAK_RSS], '.1f')} | {r['timed_on'] or '–'} | "
            f"{r['kernels'] or '–'} |"
        )
    lines += _threads_table(table)
    lines += [
        "",
        "## Sizes, KB (raw and gzip-compressed: what pruning's zeros save)",
        "",
        "| model | sparsity | variant | raw | gzip |",
        "|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['model']} | {_fmt(r['target_sparsity'], 'g')} | {r['variant']} | "
            f"{_fmt(r[results.SIZE] / 1024, '.1f')} | {_fmt(r[results.GZIP] / 1024, '.1f')} |"
        )
    unfinished = table[table["status"] != "FINISHED"].drop_duplicates("run_id")
    if len(unfinished):
        lines += ["", "## Runs that did not finish", ""]
        for _, r in unfinished.iterrows():
            lines.append(f"- {r['run_name']} ({r['run_id']}): {r['status']} {r['error']}".rstrip())
    lines += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in PLOTS), ""]
    return "\n".join(lines)


def _threads_table(table) -> list[str]:
    """p50 per thread count side by side, when the runs swept delegate.threads (the .tflite
    variants: the Keras model does not take LiteRT's thread count)."""
    table = table[table["variant"] != results.KERAS]  # TensorFlow ignores delegate.threads
    counts = list(dict.fromkeys(table["threads"]))
    if len(counts) < 2:
        return []
    lines = [
        "",
        "## Threads (delegate.threads): p50 per image, ms",
        "",
        "| model | sparsity | variant | timed on | " + " | ".join(counts) + " |",
        "|---|---|---|---|" + "---|" * len(counts),
    ]
    p50 = results.latency("p50")
    for (model, sparsity, variant, timed_on), g in table.groupby(
        ["model", "target_sparsity", "variant", "timed_on"], sort=False
    ):
        by = dict(zip(g["threads"], g[p50], strict=True))
        lines.append(
            f"| {model} | {_fmt(sparsity, 'g')} | {variant} | {timed_on or '–'} | "
            + " | ".join(_fmt(by.get(c, math.nan), ".3f") for c in counts)
            + " |"
        )
    return lines


# -- plots ----------------------------------------------------------------------------------------
def plots(table, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(table["model"]))
    variants = list(dict.fromkeys(table["variant"]))
    paths = []

    def per_model(name: str, ylabel: str, draw) -> None:
        fig, axes = plt.subplots(
            1, len(models), figsize=(5.5 * len(models), 4), squeeze=False, constrained_layout=True
        )
        for ax, model in zip(axes[0], models, strict=True):
            draw(ax, table[table["model"] == model].sort_values("target_sparsity"))
            ax.set_title(model)
            ax.set_xlabel("target sparsity")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)

    def accuracy(ax, g) -> None:
        for v in variants:
            s = g[g["variant"] == v]
            ax.plot(s["target_sparsity"], s["accuracy"], marker="o", label=v)
        loss = g[g["variant"] == variants[0]]
        twin = ax.twinx()
        twin.plot(loss["target_sparsity"], loss["val_loss"], "k--", alpha=0.5, label="val loss")
        twin.set_ylabel("validation loss (keras, dashed)")

    def latency(ax, g) -> None:
        for v in variants:
            s = g[g["variant"] == v]
            ax.plot(s["target_sparsity"], s[results.latency("p50")], marker="o", label=v)
        ax.set_yscale("log")

    def size(ax, g) -> None:
        for v in variants:
            s = g[g["variant"] == v]
            (line,) = ax.plot(s["target_sparsity"], s[results.SIZE] / 1024, alpha=0.4)
            ax.plot(
                s["target_sparsity"],
                s[results.GZIP] / 1024,
                marker="o",
                color=line.get_color(),
                label=f"{v} (gzip; raw faint)",
            )

    per_model(PLOTS[0], "validation accuracy", accuracy)
    per_model(PLOTS[1], "latency p50 per image, ms", latency)
    per_model(PLOTS[2], "size, KB", size)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for ax, cost, label in (
        (axes[0], results.latency("p50"), "latency p50, ms"),
        (axes[1], "gzip_kb", "gzip size, KB"),
    ):
        points = table.assign(gzip_kb=table[results.GZIP] / 1024).dropna(subset=[cost, "accuracy"])
        for v in variants:
            s = points[points["variant"] == v]
            ax.scatter(s[cost], s["accuracy"], label=v, s=18)
        front = pareto_front(points, cost)
        ax.plot(front[cost], front["accuracy"], "k-", alpha=0.6)
        ax.scatter(
            front[cost],
            front["accuracy"],
            facecolors="none",
            edgecolors="k",
            s=70,
            label="Pareto-optimal",
        )
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.savefig(out / PLOTS[3], dpi=100)
    plt.close(fig)
    paths.append(out / PLOTS[3])
    return paths


def pareto_front(points, cost: str):
    """The rows no other row beats on both lower ``cost`` and higher accuracy."""
    ordered = points.sort_values([cost, "accuracy"], ascending=[True, False])
    keep, best = [], -math.inf
    for idx, r in ordered.iterrows():
        if r["accuracy"] > best:
            keep.append(idx)
            best = r["accuracy"]
    return ordered.loc[keep]


# -- the whole report -----------------------------------------------------------------------------
def write_report(selection: Selection, out: Path, tolerance: float = DEFAULT_TOLERANCE):
    """Write runs.csv, report.md and the PNGs into ``out``; returns the table (:func:`rows`)
    and the best sparsity map."""
    table = rows(selection)
    if table.empty or table["accuracy"].notna().sum() == 0:
        raise ReportError(f"the runs of {selection.title} have no accuracy to report (all failed?)")
    out.mkdir(parents=True, exist_ok=True)
    table.drop(columns=["val_loss"]).to_csv(out / RUNS_CSV, index=False)
    best = best_sparsity(table, tolerance)
    (out / REPORT_MD).write_text(markdown(selection, table, best, tolerance))
    plots(table, out)
    return table, best


def best_variant(table, best: dict):
    """The report's pick to deploy: of every (model, variant) at its best sparsity, the
    smallest gzip file (ties: the higher accuracy); None when no sparsity holds."""
    picks = []
    for (model, variant), b in best.items():
        if b["why"]:
            continue
        rows = table[
            (table["model"] == model)
            & (table["variant"] == variant)
            & (table["target_sparsity"] == b["sparsity"])
        ]
        picks.append(rows.sort_values("accuracy", ascending=False).iloc[0])
    if not picks:
        return None
    return sorted(picks, key=lambda r: (r[results.GZIP], -r["accuracy"]))[0]


def register(uri: str, experiment: str, row, name: str) -> str:
    """Register the LoggedModel of ``row`` (a runs.csv row) in the Model Registry as ``name``;
    returns the version."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    wanted = results.model_name(row["model"], row["target_sparsity"], row["variant"])
    found = [
        m
        for m in client.search_logged_models(
            experiment_ids=[exp.experiment_id],
            filter_string=f"source_run_id = '{row['run_id']}'",
        )
        if m.name == wanted
    ]
    if not found:
        raise ReportError(
            f"run {row['run_id']} has no logged model {wanted!r} to register (it was logged "
            "before pruneflow logged each variant as a model?)"
        )
    model = found[0]
    try:
        client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - not registered yet
        client.create_registered_model(name)
    version = client.create_model_version(
        name, source=f"models:/{model.model_id}", run_id=row["run_id"], model_id=model.model_id
    )
    return str(version.version)


def best_line(best: dict) -> str:
    """The best sparsity as one tag value: ``digits-cnn: keras 0.9, tflite_int8 0.9; ...``."""
    per_model: dict[str, list[str]] = {}
    for (model, variant), b in best.items():
        per_model.setdefault(model, []).append(f"{variant} {_fmt(b['sparsity'], 'g')}")
    return "; ".join(f"{m}: {', '.join(v)}" for m, v in per_model.items())


def report_sweep(uri: str, experiment: str, parent_id: str, out: Path) -> str:
    """The report of a sweep that just ended, logged to its parent run; returns the best line."""
    from mlflow.tracking import MlflowClient

    selection = select(uri, experiment, sweep=parent_id)
    _, best = write_report(selection, out)
    client = MlflowClient(tracking_uri=uri)
    client.log_artifacts(parent_id, str(out), "report")
    line = best_line(best)
    client.set_tag(parent_id, BEST_TAG, line[:5000])
    return line


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
        "best sparsity) in the Model Registry as NAME",
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
            print(
                f"pruneflow report: error: --out {args.out} {what}: valid values are a folder, "
                "existing or new",
                file=sys.stderr,
            )
            return 2
    uri = tracking.resolve_uri(args.tracking_uri, "mlruns")
    try:
        selection = select(uri, args.experiment, args.sweep, args.all, args.filter)
        name = selection.title.split(" ")[1] if selection.parent_id else args.experiment
        out = args.out or Path("reports") / name
        table, best = write_report(selection, out, args.tolerance)
        registered = None
        if args.register:
            pick = best_variant(table, best)
            if pick is None:
                raise ReportError(
                    f"nothing to register as {args.register!r}: no sparsity holds within "
                    f"{args.tolerance:g} points of the baseline"
                )
            version = register(uri, args.experiment, pick, args.register)
            registered = (
                f"registered {args.register} version {version}: {pick['variant']} of run "
                f"{pick['run_id']} ({pick['model']}, sparsity {pick['target_sparsity']:g}, "
                f"accuracy {pick['accuracy']:.4f}, gzip {pick[results.GZIP] / 1024:.1f} KB)"
            )
    except ReportError as exc:
        print(f"pruneflow report: error: {exc}", file=sys.stderr)
        return 1
    print(f"report of {selection.title}: {out}/{REPORT_MD}, {RUNS_CSV}, {', '.join(PLOTS)}")
    print(f"best sparsity (within {args.tolerance:g} accuracy points): {best_line(best)}")
    if registered:
        print(registered)
    return 0
