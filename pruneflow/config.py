"""Typed config: one schema per option, registered in Hydra's ConfigStore, checked once.

Each YAML option under ``conf/<group>/`` extends its schema here (Hydra's structured-configs
pattern): defaults live in these dataclasses, the YAML files hold only what differs, and a key
that an option does not have (``device=local device.host=x``) is refused at compose time; one
added with Hydra's ``+`` (``+device.host=x``), by :func:`check_keys`.

:func:`check` turns a composed config into typed objects. Each schema's ``__post_init__`` calls
the argument checks of the stage that uses it (``prune.check_pruning`` ...), which speak in their
own terms (``sparsity=1.5 ...``); :func:`check` is the one place that names the config key
(``prune.sparsity=1.5 ...``). Rules across keys live in :meth:`Config.__post_init__`. Nothing
here imports TensorFlow, so a bad value stops a run or a whole sweep within seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import itertools
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, SI, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from pruneflow import benchmark, convert, data, device, model, prune, quantize, tracking, train
from pruneflow.device_runner import check_delegate
from pruneflow.errors import ArgumentError, ConfigError

log = logging.getLogger(__name__)


# -- datasets (group `dataset`) ----------------------------------------------------------------
@dataclass
class DatasetConfig:
    _target_: str = MISSING
    image_size: int = MISSING
    seed: int = SI("${seed}")

    @property
    def label(self) -> str:
        """A short name for run names: ``digits``, ``mnist``, the folder's name."""
        raise NotImplementedError


@dataclass
class DigitsConfig(DatasetConfig):
    """scikit-learn's 1797 digits, embedded (offline)."""

    _target_: str = "pruneflow.data.load_digits"
    image_size: int = 28
    val_fraction: float = 0.3

    def __post_init__(self) -> None:
        data.check_image(self.image_size, minimum=8)
        data.check_fraction(self.val_fraction)

    @property
    def label(self) -> str:
        return "digits"

    @property
    def channels(self) -> int:
        return 1  # grayscale digits


@dataclass
class TfdsConfig(DatasetConfig):
    """A tensorflow-datasets dataset (downloaded on first use)."""

    _target_: str = "pruneflow.data.load_tfds"
    name: str = MISSING
    channels: int = 3
    train_split: str = "train[:70%]"  # the paper's 70/30 split of the training split
    val_split: str = "train[70%:]"
    data_dir: str | None = None  # null: ~/tensorflow_datasets
    download: bool = True
    cache: bool = True  # keep decoded, resized training images in memory across epochs
    train_limit: int | None = None  # null: the whole split; N: the first N examples
    val_limit: int | None = None

    def __post_init__(self) -> None:
        data.check_image(self.image_size, self.channels)
        data.check_limit("train_limit", self.train_limit)
        data.check_limit("val_limit", self.val_limit)

    @property
    def label(self) -> str:
        return self.name


@dataclass
class FolderConfig(DatasetConfig):
    """Your own images in ``root/<class>/*.{jpg,png,...}``."""

    _target_: str = "pruneflow.data.load_folder"
    root: str | None = None  # required
    image_size: int = 96
    channels: int = 3
    val_fraction: float = 0.3
    cache: bool = True

    def __post_init__(self) -> None:
        data.check_folder(self.root)
        data.check_image(self.image_size, self.channels)
        data.check_fraction(self.val_fraction)

    @property
    def label(self) -> str:
        import os

        return os.path.basename(os.path.normpath(self.root))


# -- backbones (group `backbone`) --------------------------------------------------------------
@dataclass
class BackboneConfig:
    _target_: str = MISSING
    dropout: float = 0.2
    # A model nested inside the classifier (a keras.applications base): tfmot's QAT refuses it.
    nests_a_model: ClassVar[bool] = False

    @property
    def label(self) -> str:
        raise NotImplementedError


@dataclass
class CNNConfig(BackboneConfig):
    """A small custom CNN like the paper's MNIST model."""

    _target_: str = "pruneflow.model.build_cnn"
    filters: list[int] = field(default_factory=lambda: [16, 32])
    dense_units: int = 64
    dropout: float = 0.25

    def __post_init__(self) -> None:
        model.check_cnn(self.filters, self.dense_units, self.dropout)

    @property
    def label(self) -> str:
        return "cnn"


@dataclass
class TransferConfig(BackboneConfig):
    """A keras.applications base with its preprocessing and a new classification head."""

    _target_: str = "pruneflow.model.build_transfer"
    arch: str = MISSING
    weights: str | None = "imagenet"  # imagenet | null (random init, offline) | a file path
    input_size: int | None = None  # null: the dataset's image size; else resized in the model
    nests_a_model: ClassVar[bool] = True

    def __post_init__(self) -> None:
        model.check_transfer(self.arch, self.input_size, self.dropout)

    @property
    def label(self) -> str:
        return self.arch


# -- devices (group `device`) ------------------------------------------------------------------
@dataclass
class DeviceConfig:
    name: str = MISSING  # a label: tags the run's numbers
    kind: str = MISSING
    timeout_s: float = 600.0  # the runner's time limit
    # Before each model, wait until the CPU is cooler than this (degrees C; null: do not wait),
    # at most cooldown_max_s. Where the device has no thermal zone the run says it skipped.
    cooldown_c: float | None = None
    cooldown_max_s: float = 300.0

    def check(self, kind: str) -> None:
        device.check_device(self.kind, self.name, self.timeout_s, kind)
        device.check_cooldown(self.cooldown_c, self.cooldown_max_s)


@dataclass
class LocalDeviceConfig(DeviceConfig):
    """This machine: the runner runs in a subprocess."""

    name: str = "local"
    kind: str = "local"
    python: str | None = None  # the runner's interpreter; null: pruneflow's own Python

    def __post_init__(self) -> None:
        self.check("local")


@dataclass
class SSHDeviceConfig(DeviceConfig):
    """A machine reached over SSH (Fabric), e.g. a Raspberry Pi."""

    name: str = "ssh"
    kind: str = "ssh"
    # the runner's interpreter (or command) on the device, and the one `pruneflow device setup`
    # makes the venv with; a venv at `venv` (~: the device user's home) takes its place once it
    # exists; venv=null: always this python
    python: str = "python3"
    venv: str | None = device.DEFAULT_VENV
    host: str | None = None  # required
    port: int = 22
    user: str | None = None  # null: your local user name (or ~/.ssh/config)
    key_file: str | None = None  # null: your default keys and ssh-agent
    known_hosts: str = "~/.ssh/known_hosts"  # host keys are verified against it
    accept_new_host: bool = False  # true: trust and record a host seen for the first time
    use_ssh_config: bool = False  # true: also read ~/.ssh/config
    workdir: str | None = None  # parent of the remote work folder; null: the device's /tmp
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        self.check("ssh")
        device.check_ssh(self.host, self.port, self.connect_timeout_s)


# -- the other groups and sections -------------------------------------------------------------
@dataclass
class DelegateConfig:
    """Which kernels LiteRT runs the .tflite variants with (group `delegate`)."""

    name: str = "xnnpack"  # none | xnnpack | armnn | external
    threads: int | None = 1  # null: the runtime's default
    fallback: str = "builtin"  # when the delegate cannot run a model: builtin | error
    library: str | None = None  # armnn, external: the delegate's library on the device
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_delegate(self.name, self.threads, self.fallback, self.library)


@dataclass
class StageConfig:
    """Which TFLite variants are built (group `stage`)."""

    variants: list[str] = field(
        default_factory=lambda: ["tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]
    )
    representative_samples: int = 100  # training images calibrating int8
    qat_epochs: int = 4  # tflite_int8_qat: quantization-aware fine-tuning epochs
    qat_learning_rate: float = 3e-5

    def __post_init__(self) -> None:
        convert.check_variants(self.variants)
        if self.representative_samples < 1:
            raise ArgumentError("representative_samples", self.representative_samples, ">= 1")
        if convert.QAT_VARIANT in self.variants:
            try:
                quantize.check_qat(self.qat_epochs, self.qat_learning_rate)
            except ArgumentError as exc:  # quantize_aware's `epochs` is this stage's qat_epochs
                raise ArgumentError(f"qat_{exc.name}", exc.value, exc.valid) from None


@dataclass
class PruneConfig:
    sparsity: float = 0.5  # target fraction of zero weights, [0, 1); 0 = no pruning
    schedule: str = "polynomial"  # polynomial (ramps 0 -> target while fine-tuning) | constant
    epochs: int = 3  # fine-tuning epochs with pruning
    learning_rate: float = 1e-3
    frequency: int = 10  # training steps between mask updates
    pattern: str = "unstructured"  # unstructured | 2:4 (two zeros in every block of four)
    layer_types: list[str] | None = None  # null: every prunable type; e.g. [Conv2D]
    exclude_layers: list[str] = field(default_factory=list)  # layer names kept dense
    keep_first_last: bool = False  # keep the first and last prunable layers dense
    # The recipe measured best (BENCHMARKS.md, issue #11): one magnitude threshold across the
    # layers, a ramp over the first 75% of fine-tuning, then recovery at the final sparsity.
    # The paper's method: distribution=uniform ramp_fraction=1.0 (conf/experiment/paper_*).
    distribution: str = "global"  # uniform | erk | global: the target spread over the layers
    ramp_fraction: float = 0.75  # the polynomial ramp ends at this fraction of fine-tuning
    lr_schedule: str = "constant"  # constant | cosine (decays over the fine-tuning steps)

    def __post_init__(self) -> None:
        prune.check_pruning(
            self.sparsity,
            self.schedule,
            self.epochs,
            self.learning_rate,
            self.frequency,
            self.pattern,
            self.layer_types,
            self.distribution,
            self.ramp_fraction,
            self.lr_schedule,
        )


@dataclass
class TrainConfig:
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 1e-3
    frozen_epochs: int = 0  # transfer backbones: head-only epochs on a frozen base first
    fine_tune_learning_rate: float | None = None  # after the frozen phase; null: learning_rate

    def __post_init__(self) -> None:
        train.check_training(
            self.epochs,
            self.batch_size,
            self.learning_rate,
            self.frozen_epochs,
            self.fine_tune_learning_rate,
        )


@dataclass
class BenchmarkConfig:
    images: int = 100  # validation images saved as files and timed one by one
    seed: int = 0
    warmup: int = 0  # untimed images before the timed ones (0: the paper's protocol)
    repeats: int = 1  # passes over the images (the paper's statistics use the first)
    # where the Keras model is timed: auto (on the device when it has TensorFlow, else on this
    # machine, tagged) | device (fail if it cannot) | host | off
    keras: str = "auto"

    def __post_init__(self) -> None:
        benchmark.check_benchmark(self.images, self.warmup, self.repeats, self.keras)


@dataclass
class TrackingConfig:
    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else sqlite in `dir`
    dir: str = "mlruns"
    experiment: str = "pruneflow"
    run_name: str | None = None  # null: <model>-s<sparsity>
    model: str | None = None  # the model's name in runs and reports; null: <dataset>-<backbone>
    # true: a job whose config already has a FINISHED run in the experiment is skipped (a
    # sweep picks up where it stopped); false: it runs again
    resume: bool = True
    # true: trained baselines are also kept in the store, so that machines sharing only the
    # tracking server reuse them (the local cache, paths.cache_dir, is looked in first)
    store_baselines: bool = True

    def __post_init__(self) -> None:
        tracking.check_tracking(self.uri, self.dir, self.experiment)


@dataclass
class PathsConfig:
    cache_dir: str = ".pruneflow_cache"  # trained baselines, keyed by what determines them
    output_dir: str | None = None  # null: the Hydra job's folder (the current one outside Hydra)


# Sections that say where things go, not what is computed: not part of a job's identity.
NOT_IN_JOB_KEY = ("paths", "tracking")


@dataclass
class Config:
    seed: int = 42
    dataset: DatasetConfig = MISSING
    backbone: BackboneConfig = MISSING
    stage: StageConfig = field(default_factory=StageConfig)
    device: DeviceConfig = MISSING
    delegate: DelegateConfig = field(default_factory=DelegateConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)

    def __post_init__(self) -> None:
        """Rules across keys: a config that breaks one would fail after training."""
        if convert.QAT_VARIANT in self.stage.variants and self.backbone.nests_a_model:
            raise ConfigError(
                f"stage.variants has {convert.QAT_VARIANT}, which needs a model without a nested "
                f"backbone (backbone=cnn); backbone={self.backbone.label} nests one. Use "
                "tflite_int8 (post-training) for transfer backbones, e.g. stage=int8"
            )
        if self.train.frozen_epochs > 0 and not self.backbone.nests_a_model:
            raise ConfigError(
                f"train.frozen_epochs={self.train.frozen_epochs} is invalid for "
                f"backbone={self.backbone.label}: valid values are 0 (freezing needs a "
                "pretrained base: backbone=mobilenetv2|vgg16|resnet50)"
            )
        if isinstance(self.backbone, TransferConfig) and self.backbone.input_size is None:
            if self.dataset.image_size < model.MIN_TRANSFER_INPUT:
                raise ConfigError(
                    f"dataset.image_size={self.dataset.image_size} is too small for "
                    f"backbone={self.backbone.label}: set backbone.input_size to at least "
                    f"{model.MIN_TRANSFER_INPUT} (images are resized inside the model) or "
                    f"dataset.image_size >= {model.MIN_TRANSFER_INPUT}"
                )

    @property
    def run_name(self) -> str:
        """The MLflow run's name: ``tracking.run_name``, else <model>-s<sparsity>."""
        return self.tracking.run_name or f"{self.model_name}-s{self.prune.sparsity:g}"

    @property
    def model_name(self) -> str:
        """What reports call the model: ``tracking.model``, else <dataset>-<backbone>."""
        return self.tracking.model or f"{self.dataset.label}-{self.backbone.label}"

    def as_dict(self) -> dict[str, Any]:
        """The whole config as plain dicts and lists (MLflow params, config.yaml)."""
        return dataclasses.asdict(self)

    @property
    def job_key(self) -> str:
        """Identity of the work a job does: a hash of everything but where outputs go."""
        spec = {k: v for k, v in self.as_dict().items() if k not in NOT_IN_JOB_KEY}
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]


SCHEMAS = {
    "dataset": {
        "digits_schema": DigitsConfig,
        "tfds_schema": TfdsConfig,
        "folder_schema": FolderConfig,
    },
    "backbone": {"cnn_schema": CNNConfig, "transfer_schema": TransferConfig},
    "device": {"local_schema": LocalDeviceConfig, "ssh_schema": SSHDeviceConfig},
}


def register() -> None:
    """Put the schemas in Hydra's ConfigStore: ``pruneflow_schema`` (the root config's first
    default) and, per group, the schemas its YAML options extend (``defaults: [tfds_schema]``)."""
    store = ConfigStore.instance()
    store.store(name="pruneflow_schema", node=Config)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=group, name=name, node=node)


@contextlib.contextmanager
def keys_under(prefix: str):
    """Turn a stage's :class:`ArgumentError` into a :class:`ConfigError` naming the config key;
    the one place where stage terms become config keys."""
    try:
        yield
    except ArgumentError as exc:
        raise ConfigError(exc.describe(prefix)) from None
    except MissingMandatoryValue as exc:
        raise ConfigError(f"{exc.full_key} is required: it has no value") from None


def check(cfg: DictConfig, choices: Mapping[str, Any] | None = None) -> Config:
    """The typed, checked :class:`Config` of a composed config; raises :class:`ConfigError`
    naming the first bad key and its valid values, or the first key no schema has. ``choices``:
    the option chosen in each group (Hydra's ``hydra.runtime.choices``; read from the config's
    ``hydra`` node when it has one), for messages. Imports nothing heavy."""
    check_keys(cfg, OmegaConf.select(cfg, "hydra.runtime.choices") if choices is None else choices)
    nodes: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        node = cfg.get(f.name)
        with keys_under(f"{f.name}."):
            if isinstance(node, DictConfig):
                if OmegaConf.get_type(node) is dict:  # e.g. `dataset: {}` instead of an option
                    raise ConfigError(
                        f"{f.name} must be an option of the `{f.name}` group, e.g. "
                        f"{f.name}=<option>; got {OmegaConf.to_container(node)}"
                    )
                nodes[f.name] = OmegaConf.to_object(node)
            elif OmegaConf.is_missing(cfg, f.name):
                raise ConfigError(f"{f.name} is required: choose an option of the `{f.name}` group")
            else:
                nodes[f.name] = node
    return Config(**nodes)


def check_keys(cfg: DictConfig, choices: Mapping[str, Any] | None = None) -> None:
    """Refuse a key that the schemas lack: Hydra's ``+`` adds one even to a typed config
    (``+prune.sparsty=0.5``, ``+foo=1``, ``device=local +device.host=pi``) and
    :func:`OmegaConf.to_object` then drops it, so the run would go on without it. The error
    names the nearest valid key. Dict-typed keys (``delegate.options``) take any key; the
    ``hydra`` node is Hydra's; a config group added to the defaults (``+experiment=paper``)
    leaves no key of its own."""
    keys = list(_keys(cfg))
    unknown = next((key for key, known in keys if not known), None)
    if unknown is not None:
        valid = [key for key, known in keys if known]
        raise ConfigError(_unknown_key(unknown, valid, dict(choices or {})))


def _keys(node: DictConfig, path: str = "") -> Iterator[tuple[str, bool]]:
    """(dotted key, whether its schema has it) for every key of a typed node, and of the typed
    nodes below it; not below a key that is not typed (dict-typed ones take any key)."""
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return
    fields = {f.name for f in dataclasses.fields(schema)}
    for key, value in node.items_ex(resolve=False):
        if not path and key == "hydra":
            continue
        yield f"{path}{key}", key in fields
        if key in fields and isinstance(value, DictConfig):
            yield from _keys(value, f"{path}{key}.")


def _unknown_key(key: str, valid: list[str], choices: dict[str, Any]) -> str:
    """``unknown key prune.sparsty: did you mean prune.sparsity?``; where another option of
    the group has the key, which; where nothing is near, the keys there are."""
    section, _, name = key.rpartition(".")
    if section:  # the section's own keys, and those only other options of its group have
        here = [k.rpartition(".")[2] for k in valid if k.rpartition(".")[0] == section]
        elsewhere = _keys_of_other_options(section, here)
        near = difflib.get_close_matches(name, here + list(elsewhere), n=1, cutoff=0.6)
        if near and near[0] in elsewhere:
            options = elsewhere[near[0]]
            chosen = f"{section}={choices[section]}" if section in choices else None
            guess = "" if near[0] == name else f" did you mean {section}.{near[0]}?"
            return (
                f"unknown key {key}:{guess} {chosen or f'the chosen {section} option'} has no "
                f"key {near[0]}; {section}={'|'.join(options)} "
                f"{'has' if len(options) == 1 else 'have'} it"
            )
        if near:
            return f"unknown key {key}: did you mean {section}.{near[0]}?"
        return f"unknown key {key}: the keys of {section} are {', '.join(here)}"
    # a top-level key: the top-level keys, the config groups that are no key (experiment),
    # and every key's last part (`+sparsity=0.5` means prune.sparsity)
    top = [k for k in valid if "." not in k]
    groups = [g for g in _packaged_groups() if g not in top]
    leaves: dict[str, list[str]] = {}
    for k in valid:
        leaves.setdefault(k.rpartition(".")[2], []).append(k)
    near = difflib.get_close_matches(name, top + groups + list(leaves), n=1, cutoff=0.6)
    if near and near[0] in groups:
        return f"unknown key {key}: did you mean the config group +{near[0]}=<option>?"
    if near:
        return f"unknown key {key}: did you mean {' or '.join(leaves[near[0]])}?"
    return f"unknown key {key}: the top-level keys are {', '.join(top)}"


def _keys_of_other_options(group: str, have: list[str]) -> dict[str, list[str]]:
    """{key: the packaged options of ``group`` that have it} for the keys of the group's other
    schemas (``host``: rpi4, ssh, for a local device)."""
    from importlib.resources import files

    schemas = SCHEMAS.get(group, {})
    if not schemas:
        return {}
    options: dict[str, list[str]] = {}
    for path in sorted(files("pruneflow.conf").joinpath(group).iterdir(), key=lambda p: p.name):
        if path.name.endswith(".yaml"):
            defaults = OmegaConf.load(path).get("defaults") or []
            for schema in {d for d in defaults if isinstance(d, str)} & set(schemas):
                options.setdefault(schema, []).append(path.name.removesuffix(".yaml"))
    found: dict[str, list[str]] = {}
    for schema, cls in schemas.items():
        for f in dataclasses.fields(cls):
            if f.name not in have:
                found.setdefault(f.name, []).extend(options.get(schema, [schema]))
    return {k: sorted(v) for k, v in found.items()}


def _packaged_groups() -> list[str]:
    """The config groups in ``pruneflow.conf`` (dataset, ..., experiment)."""
    from importlib.resources import files

    return sorted(
        p.name for p in files("pruneflow.conf").iterdir() if p.is_dir() and p.name[0] != "_"
    )


def device_command(config: Config, action: str) -> str:
    """``pruneflow device <action> device=<option> device.<key>=<value> ...``: the command for
    this config's device, naming only what differs from the device option it starts from."""
    from importlib.resources import files

    dev = config.device
    option = (
        dev.name if (files("pruneflow.conf") / "device" / f"{dev.name}.yaml").is_file() else None
    )
    option = option or ("local" if dev.kind == "local" else "ssh")
    preset = OmegaConf.load(files("pruneflow.conf") / "device" / f"{option}.yaml")
    preset.pop("defaults", None)
    base = OmegaConf.merge(OmegaConf.structured(type(dev)), preset)
    words = [f"pruneflow device {action}", f"device={option}"]
    for f in dataclasses.fields(dev):
        value = getattr(dev, f.name)
        if f.name != "kind" and value != base.get(f.name):
            words.append(f"device.{f.name}={'null' if value is None else value}")
    return " ".join(words)


def exit_on_config_error(message: str) -> NoReturn:
    """Print a config error the way a command-line tool does and exit with status 2."""
    print(f"pruneflow: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def sweep_jobs(task_overrides: list[str], config_loader=None) -> list[list[str]]:
    """The override list of every job of a sweep, through Hydra's public override parser.

    Sweeps that cannot be listed ahead (a sweeper's ``interval(...)``) are left out of the
    lists; every other key, group choices included, is expanded.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    axes: list[list[str]] = []
    for override in OverridesParser.create().parse_overrides(task_overrides):
        if not override.is_sweep_override():
            axes.append([override.input_line])
        elif override.is_discrete_sweep():
            override.config_loader = config_loader  # glob(...) lists the group's options
            key = override.get_key_element()
            axes.append([f"{key}={v}" for v in override.sweep_string_iterator()])
        else:
            log.info("sweep check: %s is chosen by the sweeper; not checked ahead", override)
    return [list(job) for job in itertools.product(*axes)]
