"""Typed config schemas, validation, and the Hydra hook that checks a whole sweep up front.

The schemas make OmegaConf reject wrong types at compose time (``prune.sparsity=abc``); ranges
and choices are checked by :func:`validate`, which imports nothing heavy, so a bad value stops a
run within seconds and before any training.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, NoReturn

from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback
from omegaconf import MISSING, DictConfig, OmegaConf

from pruneflow.convert import VARIANTS
from pruneflow.device import KINDS
from pruneflow.device_runner import DELEGATES
from pruneflow.errors import ConfigError
from pruneflow.prune import PATTERNS, PRUNABLE_LAYER_TYPES, SCHEDULES

FALLBACKS = ("builtin", "error")


@dataclass
class PruneConfig:
    sparsity: float = 0.5  # target fraction of zero weights; 0 = no pruning
    schedule: str = "polynomial"
    epochs: int = 3  # fine-tuning epochs
    learning_rate: float = 1e-3
    frequency: int = 10  # steps between mask updates
    pattern: str = "unstructured"  # unstructured | 2:4 (two zeros in every block of four)
    layer_types: list[str] | None = None  # null: every prunable type (Conv2D, Dense, ...)
    exclude_layers: list[str] = field(default_factory=list)  # layer names kept dense
    keep_first_last: bool = False  # keep the first and last prunable layers dense


@dataclass
class TrainConfig:
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 1e-3
    frozen_epochs: int = 0  # transfer backbones: epochs of head training on a frozen base first
    fine_tune_learning_rate: float | None = None  # after the frozen phase; null: learning_rate


@dataclass
class StageConfig:
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    representative_samples: int = 100  # training images used to calibrate int8
    qat_epochs: int = 4  # tflite_int8_qat: quantization-aware fine-tuning epochs
    qat_learning_rate: float = 3e-5


@dataclass
class BenchmarkConfig:
    images: int = 100  # images timed one by one; the first is reported apart
    seed: int = 0


@dataclass
class DeviceConfig:
    name: str = "local"  # a label: tags the run's numbers
    kind: str = "local"  # local | ssh
    python: str | None = None  # the runner's interpreter; null: this Python (local), python3
    timeout_s: float = 600.0  # the runner's time limit
    # ssh only
    host: str | None = None
    port: int = 22
    user: str | None = None  # null: the local user name (or ~/.ssh/config with use_ssh_config)
    key_file: str | None = None  # null: default keys and the agent
    known_hosts: str = "~/.ssh/known_hosts"
    accept_new_host: bool = False  # add an unknown host's key instead of refusing it
    use_ssh_config: bool = False  # read ~/.ssh/config (host aliases, users, keys)
    workdir: str | None = None  # parent of the remote work folder; null: the device's $TMPDIR
    connect_timeout_s: float = 10.0


@dataclass
class DelegateConfig:
    name: str = "xnnpack"
    threads: int | None = 1
    fallback: str = "builtin"  # what to do when the delegate cannot run a model
    library: str | None = None  # external delegates only
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrackingConfig:
    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else sqlite in `dir`
    dir: str = "mlruns"
    experiment: str = "pruneflow"
    run_name: str | None = None  # null: <dataset>-<backbone>-s<sparsity>


@dataclass
class PathsConfig:
    cache_dir: str = ".pruneflow_cache"
    output_dir: str = MISSING


@dataclass
class Config:
    seed: int = 42
    dataset: Any = MISSING
    backbone: Any = MISSING
    stage: StageConfig = field(default_factory=StageConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    delegate: DelegateConfig = field(default_factory=DelegateConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


def register() -> None:
    """Make the schema available to the root config's defaults list as ``pruneflow_schema``."""
    ConfigStore.instance().store(name="pruneflow_schema", node=Config)


def _check(ok: bool, key: str, value: Any, valid: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: valid values are {valid}")


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` naming the first bad key and its valid values."""
    p, t, s, b, d, dev = cfg.prune, cfg.train, cfg.stage, cfg.benchmark, cfg.delegate, cfg.device
    _check(
        isinstance(p.sparsity, float) and math.isfinite(p.sparsity) and 0.0 <= p.sparsity < 1.0,
        "prune.sparsity",
        p.sparsity,
        "floats in [0, 1) (0 = no pruning)",
    )
    _check(p.schedule in SCHEDULES, "prune.schedule", p.schedule, str(list(SCHEDULES)))
    _check(
        p.epochs >= (1 if p.sparsity > 0 else 0),
        "prune.epochs",
        p.epochs,
        "integers >= 1 when prune.sparsity > 0",
    )
    _check(p.learning_rate > 0, "prune.learning_rate", p.learning_rate, "floats > 0")
    _check(p.frequency >= 1, "prune.frequency", p.frequency, "integers >= 1")
    _check(p.pattern in PATTERNS, "prune.pattern", p.pattern, str(list(PATTERNS)))
    if p.pattern == "2:4":
        _check(
            p.sparsity in (0.0, 0.5),
            "prune.sparsity",
            p.sparsity,
            "0.5 with prune.pattern=2:4 (two of every four weights are zeroed)",
        )
    for t_ in p.layer_types or []:
        _check(
            t_ in PRUNABLE_LAYER_TYPES,
            "prune.layer_types",
            t_,
            f"a list drawn from {sorted(PRUNABLE_LAYER_TYPES)}",
        )
    _check(t.epochs >= 1, "train.epochs", t.epochs, "integers >= 1")
    _check(t.batch_size >= 1, "train.batch_size", t.batch_size, "integers >= 1")
    _check(t.learning_rate > 0, "train.learning_rate", t.learning_rate, "floats > 0")
    _check(t.frozen_epochs >= 0, "train.frozen_epochs", t.frozen_epochs, "integers >= 0")
    _check(
        t.fine_tune_learning_rate is None or t.fine_tune_learning_rate > 0,
        "train.fine_tune_learning_rate",
        t.fine_tune_learning_rate,
        "null or floats > 0",
    )
    for v in s.variants:
        _check(v in VARIANTS, "stage.variants", v, f"a list drawn from {list(VARIANTS)}")
    _check(
        len(set(s.variants)) == len(s.variants),
        "stage.variants",
        list(s.variants),
        "a list without repeats",
    )
    if "tflite_int8_qat" in s.variants:
        _check(
            s.qat_epochs >= 1,
            "stage.qat_epochs",
            s.qat_epochs,
            "integers >= 1 (a quantization-aware model is untrained before it)",
        )
        _check(
            s.qat_learning_rate > 0, "stage.qat_learning_rate", s.qat_learning_rate, "floats > 0"
        )
    _check(
        s.representative_samples >= 1,
        "stage.representative_samples",
        s.representative_samples,
        "integers >= 1",
    )
    _check(
        b.images >= 3,
        "benchmark.images",
        b.images,
        "integers >= 3 (the first image is reported apart; a deviation needs two more)",
    )
    _check(bool(dev.name), "device.name", dev.name, "a non-empty label")
    _check(dev.kind in KINDS, "device.kind", dev.kind, str(list(KINDS)))
    _check(dev.timeout_s > 0, "device.timeout_s", dev.timeout_s, "seconds > 0")
    if dev.kind == "ssh":
        if not dev.host:
            raise ConfigError(
                "device.host is required for an SSH device: give a host name or address, "
                "e.g. device.host=raspberrypi.local"
            )
        _check(1 <= dev.port <= 65535, "device.port", dev.port, "integers in [1, 65535]")
        _check(
            dev.connect_timeout_s > 0,
            "device.connect_timeout_s",
            dev.connect_timeout_s,
            "seconds > 0",
        )
    _check(d.name in DELEGATES, "delegate.name", d.name, str(list(DELEGATES)))
    _check(
        d.threads is None or d.threads >= 1,
        "delegate.threads",
        d.threads,
        "null (runtime default) or integers >= 1",
    )
    _check(d.fallback in FALLBACKS, "delegate.fallback", d.fallback, str(list(FALLBACKS)))
    if d.name in ("armnn", "external"):
        if not d.library:
            raise ConfigError(
                f"delegate.library is required for delegate={d.name}: give the path of the "
                "delegate's shared library on the device"
            )
    for group in ("dataset", "backbone"):
        node = cfg.get(group)
        _check(
            isinstance(node, DictConfig) and "_target_" in node,
            group,
            OmegaConf.to_container(node) if isinstance(node, DictConfig) else node,
            f"an option of the `{group}` config group (see conf/{group}/)",
        )


def exit_on_config_error(message: str) -> NoReturn:
    """Print a config error the way a command-line tool does and exit with status 2."""
    print(f"pruneflow: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _sweep_jobs(config: DictConfig) -> list[list[str]]:
    """The override list of every job of the sweep described by ``config``."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [list(job) for batch in batches for job in batch]


class SweepCheck(Callback):
    """Hydra callback: before a multirun starts any job, compose and validate every job's
    config (so ``prune.sparsity=0.5,1.5`` fails before the first training, not after it), and
    create the MLflow store and experiment once (parallel launchers race on them otherwise)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.global_hydra import GlobalHydra

        from pruneflow import tracking

        loader = GlobalHydra.instance().config_loader()
        for job in _sweep_jobs(config):
            try:
                validate(loader.load_sweep_config(config, job))
            except Exception as exc:  # noqa: BLE001 - any job that cannot compose stops all
                # Hydra turns a callback's exceptions into warnings; only an exit stops it.
                cause = f"{exc}\n{exc.__cause__}" if exc.__cause__ else str(exc)
                exit_on_config_error(f"in sweep job [{' '.join(job)}]: {cause}")
        uri = tracking.resolve_uri(config.tracking.uri, config.tracking.dir)
        tracking.prepare_store(uri, config.tracking.experiment, config.tracking.dir)
