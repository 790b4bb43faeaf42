"""Every option of every group composes, checks and instantiates; bad values fail at compose
time naming the key; a sweep is checked whole before its first job."""

from __future__ import annotations

import dataclasses
import re
import time

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from helpers.cli import CONF, TINY, compose, options, outputs_to, pruneflow_command, run_cli
from pruneflow.config import SCHEMAS, Config, check, instantiate, register
from pruneflow.devices.config import DelegateConfig, LocalDeviceConfig, SSHDeviceConfig
from pruneflow.errors import ArgumentError, ConfigError
from pruneflow.steps.convert.config import StageConfig
from pruneflow.steps.prune.config import PruneConfig
from pruneflow.study.jobs import sweep_jobs

GROUPS = ("dataset", "backbone", "stage", "prune", "device", "delegate")
# Options with a value only the user can give.
REQUIRED = {
    ("device", "ssh"): ["device.host=board.example"],
    ("delegate", "external"): ["delegate.library=/opt/lib/libdelegate.so"],
    ("backbone", "keras"): ["backbone.arch=mobilenetv3small"],
}


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory):
    """A folder dataset with two classes of real image files."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    for cls in ("a", "b"):
        (root / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(root / cls / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def own_models(tmp_path_factory):
    """A tf_keras model file and its .tflite (real files, written by tf_keras and the
    converter), for the options that take a user's model."""
    import tensorflow as tf
    import tf_keras as keras

    root = tmp_path_factory.mktemp("own")
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    model.save(root / "model.keras")
    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    (root / "model.tflite").write_bytes(tflite)
    return {"file": root / "model.keras", "tflite": root / "model.tflite"}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tf_keras model file for backbone=file: 32x32 grayscale, 10 classes."""
    import tf_keras as keras

    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(10, name="probs")(keras.layers.Flatten()(x))
    path = tmp_path_factory.mktemp("model") / "model.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def _required(group, option, folder_root, own_models=None):
    if (group, option) == ("dataset", "folder"):
        return [f"dataset.root={folder_root}"]
    if group == "backbone" and option in ("file", "tflite"):  # a model of the user's
        return [f"backbone.path={own_models[option]}"]
    if (group, option) == ("stage", "file"):  # the stage of backbone=tflite only
        return ["backbone=tflite", f"backbone.path={own_models['tflite']}"]
    if group == "backbone" and option != "cnn":  # the default digits are 28x28
        return ["backbone.input_size=32", *REQUIRED.get((group, option), [])]
    return REQUIRED.get((group, option), [])


def test_every_group_has_options():
    for group in GROUPS:
        assert options(group), group


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_checks_and_instantiates(group, option, folder_root, own_models):
    cfg = compose([f"{group}={option}", *_required(group, option, folder_root, own_models)])
    config = check(cfg)
    assert isinstance(config, Config)
    node = getattr(config, group)
    assert dataclasses.is_dataclass(node)
    if group == "device":  # building a device does not connect
        from pruneflow.devices.base import open_device

        dev = open_device(node)
        assert dev.name == node.name and dev.timeout_s == 600.0
    if group == "dataset" and option == "digits":
        assert instantiate(node).train_size == 1257


def _schema_of(group: str, values: dict):
    plain = {"stage": StageConfig, "delegate": DelegateConfig, "prune": PruneConfig}
    if group in plain:
        return plain[group]
    (base,) = [d for d in values["defaults"] if d != "_self_"]  # /schema/<group>/<name>@_here_
    return SCHEMAS[group][base.split("@")[0].split("/")[-1]]


@pytest.mark.parametrize("group", GROUPS)
def test_option_files_hold_only_what_differs(group):
    """Defaults live once, in the schemas: no YAML option restates one."""
    import yaml

    for path in sorted((CONF / group).glob("*.yaml")):
        values = yaml.safe_load(path.read_text()) or {}
        defaults = {
            f.name: f.default_factory()
            if f.default_factory is not dataclasses.MISSING
            else f.default
            for f in dataclasses.fields(_schema_of(group, values))
        }
        if path.read_text().startswith("# @package _global_"):  # backbone=file: train too
            values = {"defaults": values["defaults"], **values.get(group, {})}
        for key, value in values.items():
            if key != "defaults":
                assert key in defaults, f"{path.name}: {key} is not a key of its schema"
                assert defaults[key] != value, f"{path.name}: {key}={value!r} is the default"


def test_the_root_config_restates_no_default():
    text = (CONF / "config.yaml").read_text()
    for section in ("train:", "prune:", "benchmark:", "tracking:", "paths:"):
        assert f"\n{section}" not in text


def test_digits_split_is_stratified_and_seeded():
    a = instantiate(check(compose()).dataset)
    b = instantiate(check(compose()).dataset)
    assert a.train_size == 1257 and a.x_val.shape == (540, 28, 28, 1)
    y_train = np.array([int(y) for _, y in a.train.as_numpy_iterator()])
    assert (a.y_val == b.y_val).all() and (a.x_val == b.x_val).all()
    for c in range(10):  # stratified: each class keeps its 30% share, to within rounding
        total = int((a.y_val == c).sum() + (y_train == c).sum())
        assert abs(int((a.y_val == c).sum()) - 0.3 * total) <= 1


# tflite builds nothing: it loads the user's file (tests/test_foreign_model.py)
@pytest.mark.parametrize("option", [o for o in options("backbone") if o != "tflite"])
def test_every_backbone_instantiates(option, model_file):
    overrides = [f"backbone={option}", *REQUIRED.get(("backbone", option), [])]
    if option == "file":  # a model of 32x32 images
        overrides += [f"backbone.path={model_file}"]
    elif option != "cnn":  # ImageNet weights need a download: test_backbones.py
        overrides += ["backbone.weights=null", "backbone.input_size=32"]
    backbone = check(compose(overrides)).backbone
    model = instantiate(backbone, (32, 32, 1), 10)
    assert model.output_shape == (None, 10)


# Every key of the README's tables with a value outside its valid values: (overrides, the key
# the message names, a piece of the valid values it states).
BAD_VALUES = [
    ("prune.sparsity=1.5", "prune.sparsity=1.5", "[0, 1)"),
    ("prune.sparsity=-0.1", "prune.sparsity=-0.1", "[0, 1)"),
    ("prune.sparsity=1.0", "prune.sparsity=1.0", "[0, 1)"),
    ("prune.schedule=cubic", "prune.schedule='cubic'", "polynomial"),
    ("prune.epochs=0", "prune.epochs=0", ">= 1"),
    ("prune.learning_rate=0", "prune.learning_rate=0", "> 0"),
    ("prune.frequency=0", "prune.frequency=0", ">= 1"),
    ("prune.pattern=4:8", "prune.pattern='4:8'", "2:4"),
    ("prune.pattern=2:4 prune.sparsity=0.8", "prune.sparsity=0.8", "0.5 with pattern 2:4"),
    ("prune.layer_types=[Conv2D,Pool]", "prune.layer_types", "Dense"),
    ("prune.distribution=random", "prune.distribution='random'", "erk"),
    ("prune.pattern=2:4 prune.distribution=erk", "prune.distribution='erk'", "'uniform'"),
    ("prune.ramp_fraction=0", "prune.ramp_fraction=0", "(0, 1]"),
    ("prune.ramp_fraction=1.5", "prune.ramp_fraction=1.5", "(0, 1]"),
    ("prune.lr_schedule=step", "prune.lr_schedule='step'", "cosine"),
    ("train.epochs=0", "train.epochs=0", ">= 1"),
    ("train.batch_size=0", "train.batch_size=0", ">= 1"),
    ("train.learning_rate=-1", "train.learning_rate=-1", "> 0"),
    ("train.frozen_epochs=-1", "train.frozen_epochs=-1", ">= 0"),
    ("train.fine_tune_learning_rate=0", "train.fine_tune_learning_rate=0", "> 0"),
    ("stage.variants=[tflite_fp32,tflite_int4]", "stage.variants", "tflite_int8"),
    ("stage.variants=[tflite_fp32,tflite_fp32]", "stage.variants", "without repeats"),
    ("stage=qat stage.qat_epochs=0", "stage.qat_epochs=0", ">= 1"),
    ("stage=qat stage.qat_learning_rate=0", "stage.qat_learning_rate=0", "> 0"),
    ("stage.representative_samples=0", "stage.representative_samples=0", ">= 1"),
    ("benchmark.images=2", "benchmark.images=2", ">= 3"),
    ("benchmark.warmup=-1", "benchmark.warmup=-1", ">= 0"),
    ("benchmark.repeats=0", "benchmark.repeats=0", ">= 1"),
    ("benchmark.keras=gpu", "benchmark.keras='gpu'", "'device', 'host', 'off'"),
    ("device.cooldown_c=0", "device.cooldown_c=0", "degrees Celsius > 0"),
    ("device=ssh device.host=h device.cooldown_max_s=0", "device.cooldown_max_s=0", "> 0"),
    ("delegate.name=gpu", "delegate.name='gpu'", "xnnpack"),
    ("delegate.threads=0", "delegate.threads=0", ">= 1"),
    ("delegate.fallback=maybe", "delegate.fallback='maybe'", "builtin"),
    ("delegate=armnn delegate.library=null", "delegate.library is required", "path"),
    ("delegate=external", "delegate.library is required", "path"),
    ("device.timeout_s=0", "device.timeout_s=0", "> 0"),
    ("device=ssh", "device.host is required", "raspberrypi.local"),
    ("device=ssh device.host=h device.port=70000", "device.port=70000", "[1, 65535]"),
    ("device=ssh device.host=h device.connect_timeout_s=0", "device.connect_timeout_s=0", "> 0"),
    ("dataset.image_size=0", "dataset.image_size=0", ">= 8"),
    ("dataset.val_fraction=1.5", "dataset.val_fraction=1.5", "(0, 1)"),
    ("dataset=mnist dataset.image_size=0", "dataset.image_size=0", ">= 1"),
    ("dataset=mnist dataset.channels=2", "dataset.channels=2", "1 (grayscale) or 3"),
    ("dataset=mnist dataset.train_limit=0", "dataset.train_limit=0", ">= 1"),
    ("dataset=folder", "dataset.root is required", "<class>/<image>"),
    ("dataset=folder dataset.root=/nonexistent", "dataset.root='/nonexistent'", "existing"),
    ("backbone.filters=[]", "backbone.filters", "non-empty"),
    ("backbone.dense_units=0", "backbone.dense_units=0", ">= 1"),
    ("backbone.dropout=1.0", "backbone.dropout=1.0", "[0, 1)"),
    ("backbone=vgg16 backbone.arch=alexnet", "backbone.arch='alexnet'", "mobilenetv2"),
    ("backbone=vgg16 backbone.input_size=16", "backbone.input_size=16", ">= 32"),
    ("tracking.experiment=", "tracking.experiment=''", "non-empty"),
    ("tracking.dir=", "tracking.dir=''", "folder"),
    # every seed is one numpy takes (scikit-learn's split failed on -1 after loading the data)
    ("seed=-1", "seed=-1", "[0, 4294967295]"),
    ("seed=4294967296", "seed=4294967296", "[0, 4294967295]"),
    ("dataset.seed=-1", "dataset.seed=-1", "[0, 4294967295]"),
    ("benchmark.seed=-1", "benchmark.seed=-1", "[0, 4294967295]"),
    # tfmot's sparsity-preserving clustering (a pruned model) takes more than 2 clusters
    ("cluster.clusters=2", "cluster.clusters=2 is invalid with prune.sparsity=0.5", ">= 3"),
    ("stage.variants=[]", "stage.variants=[]", "a non-empty list"),
]


def _float_keys() -> list[str]:
    """Every float key of every schema (a device option with every key: ssh; QAT on)."""
    typed = check(compose(["device=ssh", "device.host=h", "stage=qat"]))
    return [
        f"{section.name}.{f.name}"
        for section in dataclasses.fields(typed)
        if dataclasses.is_dataclass(node := getattr(typed, section.name))
        for f in dataclasses.fields(node)
        if "float" in str(f.type)
    ]


@pytest.mark.parametrize("key", _float_keys())
@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_no_float_key_takes_a_value_that_is_not_finite(key, value):
    """`train.learning_rate=inf` passed `> 0` and trained to NaN, FINISHED (issue #26): no key
    of any schema, today's or one added later, takes inf or nan."""
    with pytest.raises(ConfigError) as err:
        check(compose(["device=ssh", "device.host=h", "stage=qat", f"{key}={value}"]))
    assert str(err.value).startswith(f"{key}={value} is invalid: valid values are ")


@pytest.mark.parametrize("overrides,key,valid", BAD_VALUES)
def test_a_bad_value_is_refused_at_compose_time_naming_key_and_valid_values(overrides, key, valid):
    with pytest.raises(ConfigError) as err:
        check(compose(overrides.split()))
    message = str(err.value)
    assert key in message and valid in message, message


@pytest.mark.parametrize(
    "overrides,expect",
    [
        # QAT cannot quantize a nested backbone: refused before training, not after pruning
        (["stage=qat", "backbone=mobilenetv2"], ["tflite_int8_qat", "backbone=mobilenetv2"]),
        (["train.frozen_epochs=2"], ["train.frozen_epochs=2", "backbone=cnn", "backbone=keras"]),
        (["backbone=vgg16"], ["dataset.image_size=28", "backbone.input_size", "32"]),
    ],
)
def test_rules_across_keys_are_config_errors(overrides, expect):
    with pytest.raises(ConfigError) as err:
        check(compose(overrides))
    for text in expect:
        assert text in str(err.value)


def test_a_key_an_option_does_not_have_is_refused_at_compose():
    # one flat device schema used to swallow SSH keys on a local device
    with pytest.raises(ConfigCompositionException, match="host"):
        compose(["device=local", "device.host=pi"])
    with pytest.raises(ConfigCompositionException, match="filters"):
        compose(["backbone=vgg16", "backbone.filters=[8]"])


# Keys no schema has, added with Hydra's `+` (which adds a key even to a typed config): (the
# overrides, what the one line says after `unknown key `).
UNKNOWN_KEYS = [
    ("+prune.sparsty=0.5", "prune.sparsty: did you mean prune.sparsity?"),
    ("+sparsity=0.5", "sparsity: did you mean prune.sparsity?"),
    ("+epochs=2", "epochs: did you mean prune.epochs or cluster.epochs or train.epochs?"),
    ("+experimnt=paper", "experimnt: did you mean the config group +experiment=<option>?"),
    ("+tracking.urj=x", "tracking.urj: did you mean tracking.uri?"),
    ("+prune.foo=1", "prune.foo: the keys of prune are sparsity, schedule, epochs, learning_rate"),
    ("+foo=1", "foo: the top-level keys are seed, dataset, backbone, stage, device, delegate"),
    ("+foo.bar=1", "foo: the top-level keys are seed, dataset, backbone"),
    # a key only other options of the group have
    (
        "device=local +device.host=pi",
        "device.host: device=local has no key host; device=rpi4|rpi5|ssh",
    ),
    ("+device.hots=pi", "device.hots: did you mean device.host? device=local has no key host"),
    ("device=ssh device.host=h +device.hots=x", "device.hots: did you mean device.host?"),
    (
        "dataset=mnist +dataset.root=x",
        "dataset.root: dataset=mnist has no key root; dataset=folder",
    ),
    (
        "dataset=folder dataset.root=x +dataset.name=x",
        "dataset.name: dataset=folder has no key name; dataset=cats_vs_dogs|horses_or_humans",
    ),
]


def _composed_with_choices(overrides: list[str]):
    """Composed as a run composes it, with Hydra's node (its choices name the options)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="pruneflow.conf", version_base="1.3"):
        return hydra_compose("config", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("overrides,says", UNKNOWN_KEYS)
def test_a_key_no_schema_has_is_refused_naming_the_nearest_valid_key(overrides, says):
    with pytest.raises(ConfigError) as err:
        check(_composed_with_choices(overrides.split()))
    assert str(err.value).startswith(f"unknown key {says}"), str(err.value)


@pytest.mark.parametrize(
    "overrides,key,value",
    [
        (["+delegate.options.backends=CpuAcc"], "delegate.options", {"backends": "CpuAcc"}),
        (["++prune.sparsity=0.7"], "prune.sparsity", 0.7),  # ++ of a key that exists
        (["+experiment=paper_mnist"], "prune.distribution", "uniform"),  # a group, not a key
        (["+experiment=paper"], "prune.sparsity", 0.5),  # a sweep preset: Hydra's keys only
    ],
)
def test_keys_the_schema_takes_still_pass(overrides, key, value):
    config = check(_composed_with_choices(overrides))
    section, _, name = key.partition(".")
    assert getattr(getattr(config, section), name) == value


def test_a_folder_with_one_class_is_refused_naming_what_was_found(tmp_path):
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "x.png").write_bytes(b"")
    with pytest.raises(ConfigError) as err:
        check(compose(["dataset=folder", f"dataset.root={tmp_path}"]))
    assert "two class" in str(err.value) and "'only': 1" in str(err.value)


def test_non_numeric_value_rejected_at_compose():
    with pytest.raises(ConfigCompositionException, match="prune.sparsity=abc") as err:
        compose(["prune.sparsity=abc"])
    assert isinstance(err.value.__cause__, ValidationError)


def test_schemas_speak_their_own_terms():
    with pytest.raises(ArgumentError) as err:
        PruneConfig(sparsity=1.5)
    assert str(err.value).startswith("sparsity=1.5 is invalid")  # not prune.sparsity
    assert err.value.describe("prune.").startswith("prune.sparsity=1.5")


def test_schema_defaults_are_written_once():
    """The local device's python is null (pruneflow's own), an SSH device's python3; the
    runner's time limit is one default for both."""
    assert LocalDeviceConfig().python is None
    assert SSHDeviceConfig(host="h").python == "python3"
    assert LocalDeviceConfig().timeout_s == SSHDeviceConfig(host="h").timeout_s


def test_job_key_ignores_where_outputs_go_but_not_what_is_computed(tmp_path):
    a = check(compose())
    b = check(compose(outputs_to(tmp_path, hydra=False) + ["tracking.experiment=other"]))
    c = check(compose(["prune.sparsity=0.6"]))
    assert a.job_key == b.job_key != c.job_key
    assert len(a.job_key) == 16
    assert a.run_name == "digits-cnn-s0.5" and c.run_name == "digits-cnn-s0.6"


@pytest.mark.parametrize(
    "overrides,jobs",
    [
        (["prune.sparsity=0.5,0.9", "train.epochs=1"], 2),
        (["prune.sparsity=0.5,0.9", "dataset=digits,folder"], 4),
        (["train.epochs=range(1,4)"], 3),
        (["+experiment=glob(paper_mnist*)"], 2),  # paper_mnist, paper_mnist_ours
    ],
)
def test_sweep_jobs_through_the_public_override_parser(overrides, jobs):
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="pruneflow.conf", version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        found = sweep_jobs(overrides, loader)
    GlobalHydra.instance().clear()
    assert len(found) == jobs
    assert all(len(job) == len(overrides) for job in found)


# what TensorFlow's C++ start-up prints on a machine without a GPU (../shared/STACK.md)
TF_STARTUP = re.compile(r"WARNING: All log messages before absl::InitializeLog|[EWI]\d{4} ")


@pytest.mark.parametrize(
    "args,expect",
    [
        (["prune.sparsity=1.5"], ["prune.sparsity=1.5", "[0, 1)"]),
        (["dataset=nope"], ["dataset", "digits"]),
        (["prune.sparsity=abc"], ["prune.sparsity", "abc"]),
        # a value of the wrong type, in a single run and in a sweep: one status, one line
        (["train.epochs=abc"], ["train.epochs=abc is invalid", "converted to Integer"]),
        (
            ["-m", "train.epochs=abc,2"],
            ["in sweep job [train.epochs=abc ", "]: train.epochs=abc is invalid", "Integer"],
        ),
        (["nosuch=1"], ["Could not override 'nosuch'", "+nosuch=1"]),
        (["dataset=folder"], ["dataset.root is required"]),
        (
            ["dataset=folder", "dataset.root={root}/a/0.png"],
            ["dataset.root='{root}/a/0.png' is invalid", "(it is a file, not a folder)"],
        ),
        (["dataset.image_size=0"], ["dataset.image_size=0", ">= 8"]),
        (["tracking.experiment="], ["tracking.experiment=''", "non-empty"]),
        (["stage=qat", "backbone=mobilenetv2"], ["tflite_int8_qat", "nests one"]),
        # a selection that leaves nothing to prune, checked on the untrained model
        (
            ["prune.layer_types=[Conv2D]", "prune.exclude_layers=[conv1,conv2]"],
            ["prune.layer_types=['Conv2D'] is invalid", "leaves a layer of cnn to prune"],
        ),
        # a sweep is checked whole before its first job trains anything: a group option's key,
        # and a rule across keys
        (["-m", "prune.sparsity=0.5,1.5"], ["prune.sparsity=1.5", "[0, 1)"]),
        (
            ["-m", "dataset=folder", "dataset.root={root}", "dataset.val_fraction=0.3,1.5"],
            ["dataset.val_fraction=1.5", "(0, 1)"],
        ),
        (["-m", "stage=qat", "backbone=cnn,mobilenetv2"], ["tflite_int8_qat", "nests one"]),
        # rules that used to fail after training, or never (issue #26): in a single run, and
        # for every job of a sweep before job 0 trains
        (["seed=-1"], ["seed=-1 is invalid: valid values are integers in [0, 4294967295]"]),
        (["-m", "seed=1,-1"], ["in sweep job [seed=-1 ", "]: seed=-1 is invalid"]),
        (["train.learning_rate=inf"], ["train.learning_rate=inf is invalid", "finite floats"]),
        (["-m", "prune.learning_rate=1e-3,nan"], ["prune.learning_rate=nan is invalid"]),
        (["cluster.clusters=2"], ["cluster.clusters=2 is invalid with prune.sparsity=0.5"]),
        (["-m", "prune.sparsity=0,0.5", "cluster.clusters=2"], ["prune.sparsity=0.5: valid"]),
        # the command line's own mistakes (issue #26): an interpolation that fails, a value
        # Hydra's grammar cannot read unquoted, a word that is no command
        (["prune.sparsity=${oc.env:HOME}"], ["prune.sparsity=${oc.env:HOME} is invalid: Val"]),
        (
            ["prune.sparsity=${oc.env:PRUNEFLOW_NOPE}"],
            [
                "prune.sparsity=${oc.env:PRUNEFLOW_NOPE} cannot be resolved: Environment "
                "variable 'PRUNEFLOW_NOPE' not found"
            ],
        ),
        (
            ["-m", "seed=1,2", "tracking.experiment=${oc.env:PRUNEFLOW_NOPE}"],
            ["in sweep job [seed=1 ", "tracking.experiment=${oc.env:PRUNEFLOW_NOPE} cannot be"],
        ),
        (
            ["dataset.root=données"],
            [
                "cannot read the override 'dataset.root=données': 'é' cannot be in an unquoted "
                "value; quote the value: \"dataset.root='données'\""
            ],
        ),
        (["-m", "tracking.experiment=café"], ["quote the value: \"tracking.experiment='café'\""]),
        (["reprot"], ["pruneflow: error: unknown command 'reprot'; did you mean 'report'?"]),
        (
            ["nope"],
            ["unknown command 'nope': the commands are report, compare, ui, device, inspect"],
        ),
        # empty work ended FINISHED, exit 0 (issue #26)
        (["stage.variants=[]"], ["stage.variants=[] is invalid: valid values are a non-empty"]),
        (["-m", "seed=range(0,0)"], ["the sweep has no job: seed=range(0,0) sweeps over no value"]),
    ],
)
def test_cli_rejects_bad_input_before_any_work(tmp_path, folder_root, args, expect):
    args = [a.replace("{root}", str(folder_root)) for a in args]
    expect = [e.replace("{root}", str(folder_root)) for e in expect]
    t0 = time.monotonic()
    proc = run_cli(
        [*args, *TINY, *outputs_to(tmp_path)],
        cwd=tmp_path,
        timeout=120,
        command=pruneflow_command(),
    )
    seconds = time.monotonic() - t0
    # 2 for every config mistake: a value pruneflow checks and Hydra's own composition errors
    # (an unknown option or key, a value of the wrong type), in a single run as in a sweep
    assert proc.returncode == 2, proc.stderr
    for text in expect:
        assert text in proc.stderr, proc.stderr
    # one line, no traceback (beside TensorFlow's start-up lines where the model is built)
    lines = [line for line in proc.stderr.splitlines() if not TF_STARTUP.match(line)]
    assert len(lines) == 1 and lines[0].startswith("pruneflow: error: "), proc.stderr
    # nothing was trained, tracked or converted
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "mlruns").exists()
    assert not list(tmp_path.glob("*/*/models"))
    print(f"{args}: refused in {seconds:.1f} s")  # the README's "within seconds", not asserted


@pytest.mark.parametrize(
    "args,line",
    [
        (["+prune.sparsty=0.5"], "unknown key prune.sparsty: did you mean prune.sparsity?"),
        (
            ["+foo=1"],
            "unknown key foo: the top-level keys are seed, dataset, backbone, stage, device, "
            "delegate, prune, cluster, train, benchmark, tracking, paths, search",
        ),
        (
            ["device=local", "+device.host=pi"],
            "unknown key device.host: device=local has no key host; device=rpi4|rpi5|ssh have it",
        ),
        # a sweep: refused before job 0, naming the job
        (
            ["-m", "+prune.sparsty=0.5,0.8"],
            "in sweep job [+prune.sparsty=0.5 {common}]: unknown key prune.sparsty: did you "
            "mean prune.sparsity?",
        ),
    ],
)
def test_the_console_script_refuses_an_unknown_key_in_one_line_before_any_run(tmp_path, args, line):
    """`+key` of a key no schema has used to train and finish without it (issue #15). Hydra's
    folders, the store and the cache go where they go by default, in the empty ``tmp_path``."""
    proc = run_cli([*args, *TINY], cwd=tmp_path, timeout=120, command=pruneflow_command())
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == ["pruneflow: error: " + line.format(common=" ".join(TINY))]
    assert not (tmp_path / "mlruns").exists()  # no store, so no run
    assert not (tmp_path / ".pruneflow_cache").exists()  # nothing trained
    assert "[1/" not in proc.stdout  # no job of a sweep started
    assert not (tmp_path / "multirun").exists()  # a refused sweep leaves no folder


def test_device_check_refuses_an_unknown_key_in_one_line(tmp_path):
    proc = run_cli(
        ["device", "check", "device=ssh", "device.host=h", "+device.hots=x"],
        cwd=tmp_path,
        timeout=120,
        command=pruneflow_command(),
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "pruneflow device check: error: unknown key device.hots: did you mean device.host?"
    ]
    assert "device ssh" not in proc.stdout  # nothing was probed


@pytest.mark.parametrize("preset", options("experiment"))
def test_every_experiment_preset_composes_and_checks(preset):
    config = check(compose([f"+experiment={preset}"]))
    assert config.prune.sparsity > 0


def test_a_users_own_config_folder_adds_options_beside_the_packaged_ones(tmp_path, folder_root):
    """`--config-dir DIR`: the user's datasets, devices and presets extend the same schemas."""
    mine = tmp_path / "my_conf"
    (mine / "dataset").mkdir(parents=True)
    (mine / "device").mkdir()
    (mine / "dataset" / "my_images.yaml").write_text(
        "defaults:\n  - /schema/dataset/folder@_here_\n  - _self_\n\n"
        f"root: {folder_root}\nimage_size: 32\n"
    )
    (mine / "device" / "pi_kitchen.yaml").write_text(
        "defaults:\n  - rpi4\n  - _self_\n\nname: pi_kitchen\nhost: 192.0.2.10\n"
    )
    args = ["--config-dir", str(mine), "dataset=my_images", "device=pi_kitchen", "--cfg", "job"]
    proc = run_cli(args, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"root: {folder_root}" in proc.stdout and "image_size: 32" in proc.stdout
    assert "name: pi_kitchen" in proc.stdout and "user: pi" in proc.stdout  # from rpi4
    # and the user's options are checked like the packaged ones
    (mine / "dataset" / "my_images.yaml").write_text(
        "defaults:\n  - /schema/dataset/folder@_here_\n  - _self_\n\nroot: /nonexistent\n"
    )
    proc = run_cli([*args[:-2], *TINY, *outputs_to(tmp_path)], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "dataset.root='/nonexistent'" in proc.stderr


def _preset_jobs(preset: str) -> list[list[str]]:
    """The overrides of every job a sweep preset's `hydra.sweeper.params` makes."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from pruneflow.config import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="pruneflow.conf", version_base="1.3"):
        cfg = hydra_compose("config", [f"+experiment={preset}"], return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
        params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
        jobs = sweep_jobs([*params, f"+experiment={preset}"], loader)
    GlobalHydra.instance().clear()
    return jobs


@pytest.mark.parametrize(
    "preset, models",
    [
        (
            "paper",
            [
                "mnist-cnn",
                "svhn_cropped-cnn",
                "horses_or_humans-vgg16",
                "cats_vs_dogs-mobilenetv2",
                "tf_flowers-resnet50",
            ],
        ),
        (
            "paper_offline",
            [
                f"offline_{m}"
                for m in ("mnist", "svhn", "horses_or_humans", "cats_vs_dogs", "tf_flowers")
            ],
        ),
    ],
)
def test_the_study_presets_sweep_five_models_at_the_papers_nine_sparsities(preset, models):
    """`pruneflow -m +experiment=paper` (and `paper_offline`): the sweeper's params list 45
    jobs, each a whole checked config of one of the five models."""
    jobs = _preset_jobs(preset)
    assert len(jobs) == 45
    seen = {}
    for job in jobs:
        config = check(compose(job))
        seen.setdefault(config.model_name, []).append(config.prune.sparsity)
        assert config.prune.distribution == "uniform"  # the paper's method
    assert sorted(seen) == sorted(models)
    nine = [0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]
    assert all(sparsities == nine for sparsities in seen.values())


@pytest.mark.parametrize(
    "preset, model",
    [
        ("channels_mobilenetv2", "cats_vs_dogs-mobilenetv2"),
        ("channels_offline", "offline_cats_vs_dogs"),
    ],
)
def test_the_channel_presets_sweep_channels_beside_sparsity(preset, model):
    """`pruneflow -m +experiment=channels_mobilenetv2` (and its offline stand-in): 9 jobs of
    one model, every (channels, sparsity) pair of 0 / 0.25 / 0.5 and 0 / 0.5 / 0.9."""
    jobs = _preset_jobs(preset)
    configs = [check(compose(job)) for job in jobs]
    assert {c.model_name for c in configs} == {model}
    pairs = sorted((c.prune.channels, c.prune.sparsity) for c in configs)
    assert pairs == [(c, s) for c in (0.0, 0.25, 0.5) for s in (0.0, 0.5, 0.9)]
    assert len({c.job_key for c in configs}) == 9
