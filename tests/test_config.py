"""Every option of every group composes, validates and instantiates; bad values fail fast."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from conftest import CONF, TINY, compose, outputs_to, run_cli
from pruneflow.config import ConfigError, validate

GROUPS = ("dataset", "backbone", "stage", "device", "delegate")
# Options with a value only the user can give.
REQUIRED = {
    ("device", "ssh"): ["device.host=board.example"],
    ("delegate", "external"): ["delegate.library=/opt/lib/libdelegate.so"],
}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_group_has_options():
    for group in GROUPS:
        assert options(group), group


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_validates(group, option):
    cfg = compose([f"{group}={option}", *REQUIRED.get((group, option), [])])
    validate(cfg)
    assert OmegaConf.to_container(cfg[group], resolve=True)


@pytest.mark.parametrize("option", options("dataset"))
def test_every_dataset_instantiates(option, tmp_path, digits):
    """Offline: tfds options under tfds.testing.mock_data, dataset=folder on generated files."""
    import tensorflow_datasets as tfds
    from hydra.utils import instantiate

    from pruneflow.benchmark import write_images

    overrides = [f"dataset={option}", "dataset.image_size=28"]
    if option == "folder":
        root = write_images(digits.x_val, digits.y_val, digits.class_names, 30, tmp_path / "f")
        overrides.append(f"dataset.root={root}")
    with tfds.testing.mock_data(num_examples=12):
        data = instantiate(compose(overrides).dataset)
    sample = data.train_sample(4)
    assert sample.dtype.name == "uint8" and sample.shape[1:] == data.image_shape
    assert data.train_size > 0 and len(data.x_val) == len(data.y_val) > 0
    assert set(data.y_val) <= set(range(data.num_classes))


def test_digits_split_is_stratified_and_seeded():
    from hydra.utils import instantiate

    a = instantiate(compose().dataset)
    b = instantiate(compose().dataset)
    assert a.train_size == 1257 and a.x_val.shape == (540, 28, 28, 1)
    y_train = np.array([int(y) for _, y in a.train.as_numpy_iterator()])
    assert (a.y_val == b.y_val).all() and (a.x_val == b.x_val).all()
    for c in range(10):  # stratified: each class keeps its 30% share, to within rounding
        total = int((a.y_val == c).sum() + (y_train == c).sum())
        assert abs(int((a.y_val == c).sum()) - 0.3 * total) <= 1


@pytest.mark.parametrize("option", options("backbone"))
def test_every_backbone_instantiates(option):
    from hydra.utils import instantiate

    cfg = compose([f"backbone={option}"])
    if "weights" in cfg.backbone:  # ImageNet weights need a download: test_backbones.py
        cfg.backbone.weights = None
    model = instantiate(cfg.backbone, input_shape=(32, 32, 1), num_classes=10)
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize(
    "override,key,valid",
    [
        ("prune.sparsity=1.5", "prune.sparsity", "[0, 1)"),
        ("prune.sparsity=-0.1", "prune.sparsity", "[0, 1)"),
        ("prune.sparsity=1.0", "prune.sparsity", "[0, 1)"),
        ("prune.schedule=cubic", "prune.schedule", "polynomial"),
        ("stage.variants=[tflite_fp32,tflite_int4]", "stage.variants", "tflite_int8"),
        ("delegate.name=gpu", "delegate.name", "xnnpack"),
        ("delegate.fallback=maybe", "delegate.fallback", "builtin"),
        ("benchmark.images=2", "benchmark.images", ">= 3"),
        ("train.epochs=0", "train.epochs", ">= 1"),
        ("prune.epochs=0", "prune.epochs", ">= 1"),
        ("prune.pattern=4:8", "prune.pattern", "2:4"),
        ("prune.pattern=2:4 prune.sparsity=0.8", "prune.sparsity", "0.5 with prune.pattern=2:4"),
        ("prune.layer_types=[Conv2D,Pool]", "prune.layer_types", "Dense"),
    ],
)
def test_validate_names_key_and_valid_values(override, key, valid):
    cfg = compose(override.split())
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert key in str(err.value) and valid in str(err.value)


@pytest.mark.parametrize("group,option", sorted(REQUIRED))
def test_a_missing_required_value_is_named(group, option):
    key = REQUIRED[(group, option)][0].split("=")[0]
    with pytest.raises(ConfigError, match=f"{key} is required"):
        validate(compose([f"{group}={option}"]))


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["device=ssh", "device.host=null"], "device.host"),
        (["device=ssh", "device.host=h", "device.port=70000"], "device.port"),
        (["device.kind=telnet"], "device.kind"),
        (["delegate=armnn", "delegate.library=null"], "delegate.library"),
    ],
)
def test_device_and_delegate_keys_are_checked(overrides, key):
    with pytest.raises(ConfigError, match=key):
        validate(compose(overrides))


def test_sparsity_zero_needs_no_fine_tuning():
    validate(compose(["prune.sparsity=0", "prune.epochs=0"]))


def test_non_numeric_value_rejected_at_compose():
    with pytest.raises(ConfigCompositionException, match="prune.sparsity=abc") as err:
        compose(["prune.sparsity=abc"])
    assert isinstance(err.value.__cause__, ValidationError)
    assert "could not be converted to Float" in str(err.value.__cause__)


@pytest.mark.parametrize(
    "args,expect",
    [
        (["prune.sparsity=1.5"], ["prune.sparsity", "[0, 1)"]),
        (["prune.sparsity=-0.1"], ["prune.sparsity", "[0, 1)"]),
        (["dataset=nope"], ["dataset", "digits"]),
        (["stage.variants=[tflite_fp32,bogus]"], ["stage.variants", "tflite_int8"]),
        (["prune.sparsity=abc"], ["prune.sparsity", "abc"]),
        # a sweep is checked whole before its first job trains anything
        (["-m", "prune.sparsity=0.5,1.5"], ["prune.sparsity", "[0, 1)", "1.5"]),
    ],
)
def test_cli_rejects_bad_input_before_any_work(tmp_path, args, expect):
    proc = run_cli([*args, *TINY, *outputs_to(tmp_path)], cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    for text in expect:
        assert text in proc.stderr, proc.stderr
    # nothing was trained, tracked or converted
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "mlruns").exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_preset_composes_and_validates(preset):
    cfg = compose([f"+experiment={preset}"])
    validate(cfg)
    assert cfg.prune.sparsity > 0
