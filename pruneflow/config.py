"""The root config: one typed section per group, composed from the schemas beside each step.

Each section's schema lives beside the code it configures (``steps/<step>/config.py``,
``devices/config.py``, ``study/config.py``) and checks its own values in ``__post_init__``, in
its own terms (``sparsity=1.5 ...``); the YAML options under ``conf/<group>/`` extend those
schemas (Hydra's structured-configs pattern), so a default is written once, there.
:func:`check` turns a composed config into this typed :class:`Config` and is the one place
that names the config key (``prune.sparsity=1.5 ...``); rules across keys live in
:meth:`Config.__post_init__`. Nothing here imports TensorFlow, so a bad value stops a run or a
whole sweep within seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from pruneflow.devices import config as devices
from pruneflow.devices.config import DelegateConfig, DeviceConfig
from pruneflow.errors import ArgumentError, ConfigError
from pruneflow.steps.benchmark.config import BenchmarkConfig
from pruneflow.steps.convert.config import StageConfig
from pruneflow.steps.data import config as data
from pruneflow.steps.data.config import DatasetConfig
from pruneflow.steps.model import config as model
from pruneflow.steps.model.config import MIN_TRANSFER_INPUT, BackboneConfig, TransferConfig
from pruneflow.steps.prune.config import PruneConfig
from pruneflow.steps.train.config import TrainConfig
from pruneflow.study.config import PathsConfig, TrackingConfig

# Sections that say where things go, not what is computed: not part of a job's identity.
NOT_IN_JOB_KEY = ("paths", "tracking")
# Groups whose options extend one of several schemas, registered as `schema/<group>/<name>`
# (an option's YAML starts with `defaults: [/schema/<group>/<name>@_here_]`), out of the
# groups a user picks from.
SCHEMAS = {"dataset": data.SCHEMAS, "backbone": model.SCHEMAS, "device": devices.SCHEMAS}


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
        if self.stage.needs_qat and self.backbone.nests_a_model:
            raise ConfigError(
                f"stage.variants has {self.stage.variants}, whose quantization-aware variant "
                "needs a model without a nested backbone (backbone=cnn); "
                f"backbone={self.backbone.label} nests one. Use tflite_int8 (post-training) for "
                "transfer backbones, e.g. stage=int8"
            )
        if self.train.frozen_epochs > 0 and not self.backbone.nests_a_model:
            raise ConfigError(
                f"train.frozen_epochs={self.train.frozen_epochs} is invalid for "
                f"backbone={self.backbone.label}: valid values are 0 (freezing needs a "
                "pretrained base: backbone=mobilenetv2|vgg16|resnet50)"
            )
        if isinstance(self.backbone, TransferConfig) and self.backbone.input_size is None:
            if self.dataset.image_size < MIN_TRANSFER_INPUT:
                raise ConfigError(
                    f"dataset.image_size={self.dataset.image_size} is too small for "
                    f"backbone={self.backbone.label}: set backbone.input_size to at least "
                    f"{MIN_TRANSFER_INPUT} (images are resized inside the model) or "
                    f"dataset.image_size >= {MIN_TRANSFER_INPUT}"
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
        """Identity of the work a job does: a hash of everything but where outputs go and where
        the code that does it lives (``_target_``)."""
        spec = {k: v for k, v in self.as_dict().items() if k not in NOT_IN_JOB_KEY}
        spec = without_targets(spec)
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:16]


def without_targets(node: Any) -> Any:
    """``node`` (plain dicts) without its ``_target_`` keys: where the code lives is not what
    it computes, so keys made from a config survive a move of the code."""
    if isinstance(node, dict):
        return {k: without_targets(v) for k, v in node.items() if k != "_target_"}
    return node


def register() -> None:
    """Put the schemas in Hydra's ConfigStore: ``pruneflow_schema`` (the root config's first
    default) and, per group, the schemas its YAML options extend, under ``schema/<group>``;
    and the resolver ``--help`` lists the groups with (:func:`option_groups`)."""
    OmegaConf.register_new_resolver("pruneflow_groups", option_groups, replace=True)
    store = ConfigStore.instance()
    store.store(name="pruneflow_schema", node=Config)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=node)


def option_groups() -> str:
    """``group: option, option`` lines for ``pruneflow --help``: every group a user picks an
    option from, packaged or from ``--config-dir``; Hydra's own and the ``schema/`` bases that
    options extend are left out."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType

    loader = GlobalHydra.instance().config_loader()

    def walk(parent: str):
        for group in loader.list_groups(parent):
            name = f"{parent}/{group}" if parent else group
            if name.split("/")[0] in ("hydra", "schema"):
                continue
            found = loader.get_group_options(name, ObjectType.CONFIG)
            if found:
                yield name, found
            yield from walk(name)

    return "\n".join(f"{g}: {', '.join(sorted(o))}" for g, o in sorted(walk("")))


@contextlib.contextmanager
def keys_under(prefix: str):
    """Turn a section's :class:`ArgumentError` into a :class:`ConfigError` naming the config
    key; the one place where a section's terms become config keys."""
    try:
        yield
    except ArgumentError as exc:
        raise ConfigError(exc.describe(prefix)) from None
    except MissingMandatoryValue as exc:
        raise ConfigError(f"{exc.full_key} is required: it has no value") from None


def check(cfg: DictConfig) -> Config:
    """The typed, checked :class:`Config` of a composed config; raises :class:`ConfigError`
    naming the first bad key and its valid values. Imports nothing heavy."""
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


def instantiate(node, *args, **kwargs):
    """Build what an option's ``_target_`` names, handing it the option itself:
    ``target(node, *args, **kwargs)`` (a dataset's loader, a backbone's builder, a device)."""
    from hydra.utils import get_object

    return get_object(node._target_)(node, *args, **kwargs)
