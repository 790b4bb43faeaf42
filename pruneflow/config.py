"""The root config: one typed section per group, composed from the schemas beside each step.

Each section's schema lives beside the code it configures (``steps/<step>/config.py``,
``devices/config.py``, ``study/config.py``) and checks its own values in ``__post_init__``, in
its own terms (``sparsity=1.5 ...``); the YAML options under ``conf/<group>/`` extend those
schemas (Hydra's structured-configs pattern), so a default is written once, there. A key that
an option does not have (``device=local device.host=x``) is refused at compose time; one added
with Hydra's ``+`` (``+device.host=x``), by :func:`check_keys`.
:func:`check` turns a composed config into this typed :class:`Config` and is the one place
that names the config key (``prune.sparsity=1.5 ...``); rules across keys live in
:meth:`Config.__post_init__`. Nothing here imports TensorFlow, so a bad value stops a run or a
whole sweep within seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import GrammarParseError, InterpolationResolutionError, MissingMandatoryValue

from pruneflow.devices import config as devices
from pruneflow.devices.config import DelegateConfig, DeviceConfig
from pruneflow.errors import ArgumentError, ConfigError
from pruneflow.identity import by_content, digest, without_targets
from pruneflow.steps.benchmark.config import BenchmarkConfig
from pruneflow.steps.cluster.config import ClusterConfig, least_clusters, preserves_sparsity
from pruneflow.steps.convert.config import StageConfig
from pruneflow.steps.data import config as data
from pruneflow.steps.data.config import DatasetConfig
from pruneflow.steps.model import config as model
from pruneflow.steps.model.config import BackboneConfig, TransferConfig
from pruneflow.steps.model.foreign import refuse_options
from pruneflow.steps.prune.config import PruneConfig
from pruneflow.steps.train.config import TrainConfig, check_seed
from pruneflow.tracking.config import PathsConfig, SearchConfig, TrackingConfig

# Sections that say where things go (or what a search optimizes), not what is computed: not
# part of a job's identity.
NOT_IN_JOB_KEY = ("paths", "tracking", "search")
# Sections that say where and how a job's models are timed: jobs that differ only in them time
# the same models (pruneflow.models_cache).
NOT_IN_MODELS_KEY = ("device", "delegate", "benchmark")
# Groups whose options extend one of several schemas, registered as `schema/<group>/<name>`
# (an option's YAML starts with `defaults: [/schema/<group>/<name>@_here_]`), out of the
# groups a user picks from. The device kinds are found from their schemas (devices.kinds).
SCHEMAS = {"dataset": data.SCHEMAS, "backbone": model.SCHEMAS, "device": devices.SCHEMAS}


@dataclass
class Config:
    seed: int = 42  # the run's seed: the data split, shuffles, initial weights
    dataset: DatasetConfig = MISSING
    backbone: BackboneConfig = MISSING
    stage: StageConfig = field(default_factory=StageConfig)
    device: DeviceConfig = MISSING
    delegate: DelegateConfig = field(default_factory=DelegateConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

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
                "pretrained base: backbone=mobilenetv2|vgg16|resnet50, or backbone=keras "
                "backbone.arch=NAME)"
            )
        if self.train.epochs == 0 and not self.backbone.trained:
            raise ConfigError(
                f"train.epochs=0 is invalid for backbone={self.backbone.label}: valid values are "
                "integers >= 1 (0, evaluating a trained model as it is, is for backbone=file)"
            )
        if self.train.epochs == 0 and getattr(self.backbone, "head", "keep") == "new":
            raise ConfigError(
                "train.epochs=0 is invalid with backbone.head=new: valid values are integers "
                ">= 1 (the new classifier head is trained by train.epochs)"
            )
        with keys_under("backbone."):  # a model file sets dataset.image_size
            self.backbone.adapt(self.dataset)
        least = least_clusters(preserves_sparsity(self.prune.sparsity))
        if 0 < self.cluster.clusters < least:
            raise ConfigError(
                f"cluster.clusters={self.cluster.clusters} is invalid with "
                f"prune.sparsity={self.prune.sparsity:g}: valid values are 0 (no clustering) or "
                f"integers >= {least} (tfmot's sparsity-preserving clustering of a pruned model "
                f"needs more than {least - 1}; >= {least_clusters(False)} with prune.sparsity=0)"
            )
        if isinstance(self.backbone, TransferConfig) and self.backbone.input_size is None:
            least = self.backbone.min_input
            if self.dataset.image_size < least:
                raise ConfigError(
                    f"dataset.image_size={self.dataset.image_size} is too small for "
                    f"backbone.arch={self.backbone.arch} (its smallest input is {least}x{least}): "
                    f"set backbone.input_size to at least {least} (images are resized inside "
                    f"the model) or dataset.image_size >= {least}"
                )

    @property
    def run_name(self) -> str:
        """The MLflow run's name: ``tracking.run_name``, else <model>-s<sparsity>, with
        -c<channels> when channels are removed and -cl<clusters> when weights are clustered."""
        thin = f"-c{self.prune.channels:g}" if self.prune.channels else ""
        shared = f"-cl{self.cluster.clusters}" if self.cluster.clusters else ""
        name = f"{self.model_name}-s{self.prune.sparsity:g}{thin}{shared}"
        return self.tracking.run_name or name

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
        the code that does it lives (``_target_``), of the dataset's files where they can
        change under the same config (:meth:`DatasetConfig.content`), and of any file a section
        names (:func:`pruneflow.identity.by_content`)."""
        return digest(self._work(), 16)

    def keys(self) -> tuple[str, str]:
        """The :attr:`job_key`, and the identity of the models a job makes: the same
        description without the sections that say only where and how they are timed
        (:data:`NOT_IN_MODELS_KEY`); from one description, each file it names read once."""
        work = self._work()
        models = {k: v for k, v in work.items() if k not in NOT_IN_MODELS_KEY}
        return digest(work, 16), digest(models, 16)

    def _work(self) -> dict[str, Any]:
        spec = {k: v for k, v in self.as_dict().items() if k not in NOT_IN_JOB_KEY}
        spec = without_targets(spec)
        if not self.prune.channels:  # off: the keys of a job as it was before channel pruning
            spec["prune"] = {k: v for k, v in spec["prune"].items() if not k.startswith("channel")}
        if not self.cluster.clusters:  # off: the key of a job as it was before clustering
            del spec["cluster"]
        if self.device.energy == devices.EnergyConfig():  # the default: keys as before energy
            spec["device"].pop("energy", None)
        content = self.dataset.content()  # files that change under the same option
        if content is not None:  # (a folder, a tfds data_dir); none for digits: keys as before
            spec["dataset"]["content"] = content
        return by_content(spec, self)  # backbone.weights=<path>: the file's bytes


def register() -> None:
    """Put the schemas in Hydra's ConfigStore: ``pruneflow_schema`` (the root config's first
    default) and, per group, the schemas its YAML options extend, under ``schema/<group>``
    (device kinds of yours too: :func:`pruneflow.devices.config.load_kinds`);
    and the resolver ``--help`` lists the groups with (:func:`option_groups`)."""
    OmegaConf.register_new_resolver("pruneflow_groups", option_groups, replace=True)
    store = ConfigStore.instance()
    store.store(name="pruneflow_schema", node=Config)
    for group, schemas in {**SCHEMAS, "device": devices.load_kinds()}.items():
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
    except (InterpolationResolutionError, GrammarParseError) as exc:
        raise ConfigError(_unresolved(exc, prefix.rstrip("."))) from None


def _unresolved(exc: InterpolationResolutionError | GrammarParseError, key: str) -> str:
    """``prune.sparsity=${oc.env:NOPE} cannot be resolved: Environment variable 'NOPE' not
    found``: an interpolation that fails, in one line naming the key (OmegaConf's message
    spans four)."""
    key = exc.full_key or key
    raw = f"={exc.child_node._value()}" if exc.child_node is not None else ""
    text = str(exc.msg or exc)
    reason = text.splitlines()[0] if text else type(exc).__name__
    for wrapper in ("While dereferencing interpolation ", "raised while resolving interpolation: "):
        if wrapper in reason:  # the interpolation is said already; keep OmegaConf's reason
            reason = reason.split(wrapper, 1)[1].split(": ", 1)[-1].strip('"')
    verb = "is invalid" if exc.value is not None else "cannot be resolved"
    return f"{key}{raw} {verb}: {reason}"


def check(
    cfg: DictConfig,
    choices: Mapping[str, Any] | None = None,
    overrides: Sequence[str] | None = None,
) -> Config:
    """The typed, checked :class:`Config` of a composed config; raises :class:`ConfigError`
    naming the first bad key and its valid values, or the first key no schema has. ``choices``:
    the option chosen in each group (Hydra's ``hydra.runtime.choices``; read from the config's
    ``hydra`` node when it has one), for messages. ``overrides``: the ``key=value`` typed
    (default: Hydra's, :func:`_overrides`). Imports nothing heavy."""
    check_keys(cfg, OmegaConf.select(cfg, "hydra.runtime.choices") if choices is None else choices)
    with keys_under(""):  # first: the sections' seeds are ${seed}; name the key that was set
        check_seed(cfg.seed if "seed" in cfg else Config.seed)
    nodes: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        with keys_under(f"{f.name}."):
            node = cfg.get(f.name)
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
    config = Config(**nodes)
    # a model tfmot cannot take, a .tflite file: what they cannot do, from what was typed
    with keys_under(""):
        refuse_options(config, _overrides(cfg) if overrides is None else overrides)
    return config


def _overrides(cfg: DictConfig) -> list[str]:
    """The command line's ``key=value`` overrides of a composed config (Hydra's task
    overrides: in the config's ``hydra`` node, else in Hydra's running app); none outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    found = OmegaConf.select(cfg, "hydra.overrides.task")
    if found is None and HydraConfig.initialized():
        found = HydraConfig.get().overrides.task
    return list(found or [])


def from_settings(settings: Mapping[str, Any] | str) -> Config:
    """The typed, checked :class:`Config` of a run's resolved config (its ``config.yaml``
    artifact, :meth:`Config.as_dict`, as a mapping or YAML text): each group that has several
    schemas (:data:`SCHEMAS`) takes the one whose loader or builder (``_target_``) the settings
    name, so the config is the run's own, key for key (its job key and baseline key too)."""
    raw = OmegaConf.create(settings if isinstance(settings, str) else dict(settings))
    typed = OmegaConf.structured(Config)
    for group, schemas in SCHEMAS.items():
        target = OmegaConf.select(raw, f"{group}._target_")
        schema = next((s for s in schemas.values() if s._target_ == target), None)
        if schema is None and group == "device":  # a kind of yours: its schema by its class
            schema = devices.schema_of(target)
        if schema is None:
            raise ConfigError(f"{group}._target_={target} names no {group} schema of this version")
        typed[group] = OmegaConf.structured(schema)
    with keys_under(""):  # resolved values: none typed (not the running Hydra app's)
        return check(OmegaConf.merge(typed, raw), choices={}, overrides=[])


def instantiate(node, *args, **kwargs):
    """Build what an option's ``_target_`` names, handing it the option itself:
    ``target(node, *args, **kwargs)`` (a dataset's loader, a backbone's builder, a device)."""
    from hydra.utils import get_object

    return get_object(node._target_)(node, *args, **kwargs)


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
            bases = {  # `/schema/<group>/<name>@_here_`
                d.split("@")[0].rsplit("/", 1)[-1]
                for d in defaults
                if isinstance(d, str) and d.startswith(f"/schema/{group}/")
            }
            for schema in bases & set(schemas):
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
        p.name
        for p in files("pruneflow.conf").iterdir()
        if p.is_dir() and p.name[0] != "_" and p.name != "schema"
    )
