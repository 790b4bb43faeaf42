"""The pipeline: one composed config in, one MLflow run out.

Stages run in this order, each from its own module:
data -> train (cached baseline) -> prune -> convert -> evaluate -> benchmark (device runner).
Each stage's outputs are logged as soon as they exist, so a run that fails midway is marked
FAILED with its partial artifacts kept.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pruneflow import __version__
from pruneflow.config import validate
from pruneflow.errors import PruneflowError

log = logging.getLogger(__name__)


def _instantiate(node, **kwargs):
    """``hydra.utils.instantiate``, but an error the user can act on (offline data or weights,
    a bad option value) surfaces as itself rather than wrapped in Hydra's exception."""
    from hydra.errors import InstantiationException

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, PruneflowError):
            raise exc.__cause__ from None
        raise


class _Timer:
    """Wall time per stage, logged as ``time/<stage>_s`` (where the time of a run goes)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[f"time/{stage}_s"] = time.perf_counter() - t0


def _curves(history: dict[str, list[float]], offset: int) -> dict[int, dict[str, float]]:
    names = {
        "loss": "train/loss",
        "accuracy": "train/accuracy",
        "val_loss": "val/loss",
        "val_accuracy": "val/accuracy",
    }
    steps: dict[int, dict[str, float]] = {}
    for key, values in history.items():
        if key in names:
            for i, v in enumerate(values):
                steps.setdefault(offset + i, {})[names[key]] = v
    return steps


def run(cfg: DictConfig) -> dict[str, float]:
    """Run every stage for ``cfg``; returns the metrics logged to MLflow.

    Writes models, benchmark images and runner results under ``cfg.paths.output_dir``, the
    baseline under ``cfg.paths.cache_dir``, and one MLflow run to the configured store.
    """
    validate(cfg)  # before anything expensive: a bad value costs seconds, not a training run
    from pruneflow import (
        benchmark,
        convert,
        device,
        evaluate,
        prune,
        quantize,
        tracking,
        train,
    )
    from pruneflow.device_runner import _runtime

    timer = _Timer()
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    uri = tracking.resolve_uri(cfg.tracking.uri, cfg.tracking.dir)
    _, runtime, runtime_version = _runtime()
    delegate = OmegaConf.to_container(cfg.delegate, resolve=True)
    tags = {
        "mlflow.source.git.commit": tracking.git_commit(__file__),
        "pruneflow.version": __version__,
        "runtime": f"{runtime} {runtime_version}",
        "delegate": delegate["name"],
        "device": cfg.device.name,
        "device.kind": cfg.device.kind,
        "device.address": cfg.device.host if cfg.device.kind == "ssh" else None,
        "host": socket.gethostname(),
    }
    with tracking.start_run(uri, cfg.tracking.experiment, cfg.tracking.dir, tags=tags) as tr:
        container = OmegaConf.to_container(cfg, resolve=True)
        tr.log_params(tracking.flatten(container))
        tr.log_text(OmegaConf.to_yaml(container), "config.yaml")
        metrics: dict[str, float] = {}

        import tf_keras as keras

        keras.backend.clear_session()  # jobs of one sweep share this process
        with timer("data"):
            data = _instantiate(cfg.dataset)
        with timer("train"):
            baseline = train.train_baseline(
                data,
                lambda: _instantiate(
                    cfg.backbone, input_shape=data.image_shape, num_classes=data.num_classes
                ),
                epochs=cfg.train.epochs,
                batch_size=cfg.train.batch_size,
                learning_rate=cfg.train.learning_rate,
                seed=cfg.seed,
                cache_dir=cfg.paths.cache_dir,
                key_spec={
                    **{k: container[k] for k in ("dataset", "backbone", "train", "seed")},
                    "data": data.fingerprint(),
                },
                frozen_epochs=cfg.train.frozen_epochs,
                fine_tune_learning_rate=cfg.train.fine_tune_learning_rate,
            )
        tr.set_tags(
            {
                "baseline_cache": "hit" if baseline.cache_hit else "miss",
                "baseline_key": baseline.key,
            }
        )
        metrics["baseline/accuracy"] = baseline.accuracy
        tr.log_metrics({"baseline/accuracy": baseline.accuracy})
        tr.log_steps(_curves(baseline.history, 0))
        log.info(
            "baseline %s (cache %s): val accuracy %.4f",
            baseline.key,
            "hit" if baseline.cache_hit else "miss",
            baseline.accuracy,
        )

        with timer("prune"):
            pruned = prune.prune_model(
                baseline.model_path,
                data,
                sparsity=cfg.prune.sparsity,
                schedule=cfg.prune.schedule,
                epochs=cfg.prune.epochs,
                batch_size=cfg.train.batch_size,
                learning_rate=cfg.prune.learning_rate,
                frequency=cfg.prune.frequency,
                seed=cfg.seed,
                pattern=cfg.prune.pattern,
                layer_types=cfg.prune.layer_types,
                exclude_layers=list(cfg.prune.exclude_layers),
                keep_first_last=cfg.prune.keep_first_last,
            )
        name = cfg.tracking.run_name or f"{data.name}-{pruned.model.name}-s{cfg.prune.sparsity:g}"
        tr.set_tags({"mlflow.runName": name})
        offset = len(baseline.history.get("loss", []))
        tr.log_steps(_curves(pruned.history, offset))
        step_metrics = {
            "sparsity": pruned.sparsity,
            "params_total": pruned.params_total,
            "params_nonzero": pruned.params_nonzero,
        }
        metrics.update(step_metrics)
        tr.log_metrics(step_metrics)
        log.info(
            "pruned to measured sparsity %.4f (target %g)", pruned.sparsity, cfg.prune.sparsity
        )

        tr.log_artifact(_write_csv(pruned.layers, out / "layers.csv"), "prune")

        qat = None
        if "tflite_int8_qat" in cfg.stage.variants:
            with timer("qat"):
                qat = quantize.quantize_aware(
                    pruned.model,
                    data,
                    epochs=cfg.stage.qat_epochs,
                    batch_size=cfg.train.batch_size,
                    learning_rate=cfg.stage.qat_learning_rate,
                    seed=cfg.seed,
                )
        with timer("convert"):
            rep = data.train_sample(cfg.stage.representative_samples, seed=cfg.seed)
            paths = convert.export_models(
                pruned.model, cfg.stage.variants, out / "models", rep, qat_model=qat
            )
        sizes = {}
        for variant, path in paths.items():
            raw, gz = convert.file_sizes(path)
            sizes[f"{variant}/size_bytes"], sizes[f"{variant}/gzip_bytes"] = raw, gz
            if variant != convert.KERAS:
                sizes[f"{variant}/sparsity"] = convert.weight_sparsity(path)
            tr.log_artifact(path, "models")
        metrics.update(sizes)
        tr.log_metrics(sizes)

        with timer("evaluate"):
            models = {
                convert.KERAS: pruned.model,
                **{v: p for v, p in paths.items() if v != convert.KERAS},
            }
            accuracy = evaluate.evaluate(models, data.x_val, data.y_val)
        acc_metrics = {f"{v}/accuracy": a for v, a in accuracy.items()}
        metrics.update(acc_metrics)
        tr.log_metrics(acc_metrics)

        with timer("benchmark"):
            images = benchmark.write_images(
                data.x_val,
                data.y_val,
                data.class_names,
                cfg.benchmark.images,
                out / "images",
                seed=cfg.benchmark.seed,
            )
            tflite = [p for v, p in paths.items() if v != convert.KERAS]
            with device.open_device(**OmegaConf.to_container(cfg.device, resolve=True)) as dev:
                doc = dev.benchmark(tflite, images, out / "runner.json", delegate)
            results = {
                convert.KERAS: benchmark.time_keras(paths[convert.KERAS], images),
                **doc["results"],
            }
        tr.log_artifact(out / "runner.json", "benchmark")
        tr.log_artifact(
            benchmark.write_latency_csv(results, doc["images"], out / "latency.csv"), "benchmark"
        )
        lat = {}
        for variant, r in results.items():
            lat.update({f"{variant}/{k}": v for k, v in benchmark.summarize(r).items()})
            if variant != convert.KERAS:
                lat[f"{variant}/fell_back"] = float(bool(r["note"]))
        metrics.update(lat)
        tr.log_metrics(lat)
        tr.set_tags({f"kernels/{v}": r["kernels"] for v, r in results.items()})
        tr.set_tags({f"fallback/{v}": r["note"] for v, r in results.items() if r["note"]})
        tr.set_tags({f"device.{k}": v for k, v in doc["device"].items()})
        tr.log_metrics({f"device/{k}": v for k, v in dev.timings.items()})

        metrics.update(timer.seconds)
        tr.log_metrics(timer.seconds)
        log.info("results\n%s", format_table(metrics, [convert.KERAS, *cfg.stage.variants]))
    return metrics


def _write_csv(rows: list[dict], path: Path) -> Path:
    import csv

    with open(path, "w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def format_table(metrics: dict[str, float], variants: list[str]) -> str:
    """A fixed-width table of accuracy, size and latency per variant, for the job log."""
    head = (
        f"{'variant':<16}{'accuracy':>9}{'size KB':>10}{'gzip KB':>10}{'p50 ms':>9}"
        f"{'mean ms':>9}{'std ms':>9}{'first ms':>10}"
    )
    rows = [head]
    for v in variants:
        g = lambda m, v=v: metrics.get(f"{v}/{m}", float("nan"))  # noqa: E731
        rows.append(
            f"{v:<16}{g('accuracy'):>9.4f}{g('size_bytes') / 1024:>10.1f}"
            f"{g('gzip_bytes') / 1024:>10.1f}{g('latency_p50_ms'):>9.3f}"
            f"{g('latency_mean_ms'):>9.3f}{g('latency_std_ms'):>9.3f}"
            f"{g('latency_first_ms'):>10.3f}"
        )
    return "\n".join(rows)
