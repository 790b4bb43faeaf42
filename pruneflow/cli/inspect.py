"""``pruneflow inspect``: what pruneflow can do with a model, per layer, in seconds and with no
training (:mod:`pruneflow.steps.model.inspect`). The model is a file (``.keras``, ``.h5``, a
SavedModel folder), a backbone built as a run would build it (the run's overrides), or a run's
stripped Keras model (``--run``)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

from pruneflow import results
from pruneflow.errors import ArgumentError, PruneflowError

PROG = "pruneflow inspect"
# Short column heads of the console table, by technique (the CSV's columns are the names).
HEADS = {
    "prune": "prune",
    "channels": "chan",
    "cluster": "clust",
    "qat": "qat",
    "tflite_fp32": "fp32",
    "tflite_fp32_sparse": "sparse",
    "tflite_dynamic": "dyn",
    "tflite_float16": "f16",
    "tflite_float16_compute": "f16c",
    "tflite_int8": "int8",
    "tflite_int8_qat": "int8qat",
}

REASONS = 8  # reasons shown per technique on the console


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


class InspectError(PruneflowError):
    """What to inspect cannot be had; the message says why and what to do."""


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Per layer: type, output channels, parameters, MACs per image, and for "
        "each technique (magnitude and channel pruning, clustering, QAT, each TFLite variant) "
        "whether it applies and why not; then the share of parameters and MACs each can "
        "touch. No training, no conversion.",
    )
    parser.add_argument(
        "model",
        nargs="*",
        help="a tf_keras .keras/.h5 file or SavedModel folder; or a run's overrides "
        "(backbone=mobilenetv2 backbone.weights=null dataset=digits): the model a run builds "
        "(none: the default config's)",
    )
    parser.add_argument("--run", metavar="RUN_ID", help="a run's stripped Keras model")
    parser.add_argument("--tracking-uri", help="with --run: the MLflow store (default: ./mlruns)")
    parser.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module that registers the model's custom layers (found from this folder too); "
        "repeatable",
    )
    parser.add_argument(
        "--classes",
        type=int,
        metavar="N",
        help="a model built from overrides: its class count (default: the dataset's, loaded "
        "as a run loads it)",
    )
    parser.add_argument("--csv", type=Path, metavar="PATH", help="write the table as CSV here")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_intermixed_args(argv)
    overrides = [a for a in args.model if "=" in a]
    paths = [a for a in args.model if "=" not in a]
    if len(paths) > 1:
        return _fail(f"one model at a time: got {', '.join(paths)}", 2)
    given = [bool(paths), bool(overrides), args.run is not None]
    if sum(given) > 1:
        return _fail("give one of: a model path, a run's overrides (key=value), --run RUN_ID", 2)
    if args.classes is not None and (args.classes < 1 or paths or args.run):
        return _fail(
            f"--classes {args.classes} is invalid: valid values are integers >= 1, for a "
            "model built from overrides (a file's or a run's model has its own)",
            2,
        )
    if args.csv is not None and args.csv.is_dir():
        return _fail(f"--csv {args.csv} is a folder: valid values are a file path", 2)
    if args.modules or paths or args.run:
        sys.path.insert(0, str(Path.cwd()))  # --import names modules beside the user
    from hydra.errors import HydraException

    from pruneflow.process import stderr_held
    from pruneflow.tracking.store import TrackingError

    failed = None
    with stderr_held():  # TensorFlow's start-up lines, Keras's warnings: off the console
        try:
            model, what = _model(args, paths, overrides)
            from pruneflow.steps.model import inspect

            rows = inspect.inspect_model(model)
            summary = inspect.shares(rows)
            beside = _write(rows, summary, args.csv) if args.csv else None
        except (PruneflowError, ArgumentError, HydraException, TrackingError) as exc:
            failed = exc
    if failed is not None:
        return _fail(" ".join(str(failed).split()), 1 if isinstance(failed, TrackingError) else 2)
    try:
        print("\n".join(lines(model, what, rows, summary)))
        if args.csv:
            print(f"csv: {args.csv}, {beside}")
        sys.stdout.flush()
    except BrokenPipeError:  # `pruneflow inspect ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _write(rows, summary, path: Path) -> Path:
    from pruneflow.steps.model.inspect import write_csv

    try:
        return write_csv(rows, summary, path)
    except OSError as exc:  # a folder that cannot be made, no permission, a full disk
        raise InspectError(f"--csv {path} cannot be written: {exc.strerror or exc}") from None


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _model(args, paths: list[str], overrides: list[str]):
    """(the tf_keras model, what it is in words)."""
    from pruneflow.steps.model.inspect import load_model_file

    if paths:
        return load_model_file(paths[0], args.modules), f"file {paths[0]}"
    if args.run:
        return _run_model(args), f"run {args.run}"
    return _built(overrides, args.classes)


def _built(overrides: list[str], classes: int | None):
    """The backbone a run with ``overrides`` builds, untrained."""
    from hydra import compose, initialize_config_module

    from pruneflow.config import check, instantiate, register
    from pruneflow.errors import one_line

    register()
    try:
        with initialize_config_module("pruneflow.conf", version_base="1.3"):
            config = check(compose("config", overrides=overrides, return_hydra_config=True))
    except PruneflowError:
        raise
    except Exception as exc:  # noqa: BLE001 - Hydra's composition errors, several lines
        raise InspectError(one_line(exc)) from None
    d, backbone = config.dataset, config.backbone
    if classes is None:
        classes = instantiate(d).num_classes
    if getattr(backbone, "weights", None) is not None:  # the same layers, nothing downloaded
        backbone = dataclasses.replace(backbone, weights=None)
    shape = (d.image_size, d.image_size, d.channels)
    model = instantiate(backbone, shape, classes)
    return model, f"backbone={config.backbone.label} dataset={d.label}, untrained"


def _run_model(args):
    """The stripped Keras model a run logged (``models/keras.keras``)."""
    from pruneflow.steps.model.inspect import load_model_file
    from pruneflow.tracking.runs import resolve_uri, store_client
    from pruneflow.tracking.store import check_store, sqlite_file

    uri = resolve_uri(args.tracking_uri, "mlruns")
    db = sqlite_file(uri)
    if db is not None and not db.exists():  # opening it would make an empty store
        raise InspectError(
            f"--run {args.run}: no MLflow store at {db}: run this in the folder the runs were "
            "made in, or pass --tracking-uri"
        )
    check_store(uri, fix="pass --tracking-uri")
    client = store_client(uri)
    try:
        client.get_run(args.run)
    except Exception:  # noqa: BLE001 - MLflow's error for an unknown run id
        raise InspectError(
            f"--run {args.run}: no such run in {uri.split('@')[-1]} (pass --tracking-uri)"
        ) from None
    name = f"{results.MODELS_DIR}/keras.keras"
    tmp = tempfile.mkdtemp(prefix="pruneflow-inspect.")
    try:
        path = client.download_artifacts(args.run, name, tmp)
    except Exception:  # noqa: BLE001 - the artifact is missing
        raise InspectError(
            f"--run {args.run} has no {name} (a run that ended before converting): pick a "
            "finished run"
        ) from None
    return load_model_file(path, args.modules)


def _number(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(int(n))


def lines(model, what: str, rows, summary) -> list[str]:
    """The console's table: a head line, one line per layer, the reasons, the shares."""
    from pruneflow.steps.model.inspect import TECHNIQUES, TITLES, prunable_channels

    params, macs = sum(r.params for r in rows), sum(r.macs for r in rows)
    out = [
        f"{model.name} ({what}): {len(rows)} layers, {params:,} parameters, "
        f"{_number(macs)} MACs per image"
    ]
    width = max([len(r.layer) for r in rows] + [5])
    kinds = max([len(r.type) for r in rows] + [4])
    head = f"{'layer':<{width}} {'type':<{kinds}} {'out':>5} {'params':>8} {'MACs':>7}"
    out.append(head + " " + " ".join(HEADS.get(t, t) for t in TECHNIQUES))
    why: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        ch = "" if r.out_channels is None else str(r.out_channels)
        cells = [f"{r.status[t][0]:<{len(HEADS.get(t, t))}}" for t in TECHNIQUES]
        line = f"{r.layer:<{width}} {r.type:<{kinds}} {ch:>5} {_number(r.params):>8} "
        out.append(line + f"{_number(r.macs):>7} " + " ".join(cells).rstrip())
        for t in TECHNIQUES:
            if r.status[t][1]:
                why.setdefault((t, r.status[t][1]), []).append(r.layer)
    out.append(
        "yes: applies; input: only its input channels go; no: see why; -: no weights; ?: a "
        "conversion says"
    )
    if why:
        out.append("why:")
    for t in TECHNIQUES:
        found = [(reason, names) for (u, reason), names in why.items() if u == t]
        for reason, names in found[:REASONS]:
            more = f" and {len(names) - 4} more" if len(names) > 4 else ""
            out.append(f"  {HEADS.get(t, t)}: {reason} ({', '.join(names[:4])}{more})")
        if len(found) > REASONS:
            out.append(f"  {HEADS.get(t, t)}: {len(found) - REASONS} more reasons (--csv has all)")
    out.append("what each technique can touch (layers, share of parameters, share of MACs):")
    for s in summary:
        out.append(
            f"  {TITLES[s.technique]:<48} {s.layers:>4} {s.params_share:>7.1%} {s.macs_share:>7.1%}"
        )
    can, total = prunable_channels(rows)
    out.append(
        f"channel pruning can remove {can:,} of the {total:,} output channels of the layers that "
        f"compute ({can / (total or 1):.1%})"
    )
    return out
