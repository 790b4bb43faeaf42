"""The house: every default written once (in a schema), every step built from the composed
default config, registries where the framework has a fixed set, and a help that lists only
what a user can pick."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import pruneflow
from helpers.cli import TINY, compose, run_cli
from pruneflow.config import Config, check, instantiate

PACKAGE = Path(pruneflow.__file__).parent


def _schemas() -> set[type]:
    """Every dataclass schema a config section can be."""
    import typing

    from pruneflow.config import SCHEMAS

    sections = {t for t in typing.get_type_hints(Config).values() if dataclasses.is_dataclass(t)}
    return sections | {s for group in SCHEMAS.values() for s in group.values()}


def _step_functions():
    """Every public function and class constructor of the steps and devices packages."""
    for package in ("pruneflow.steps", "pruneflow.devices"):
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, package + "."):
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if name.startswith("_") or getattr(obj, "__module__", None) != info.name:
                    continue
                if inspect.isfunction(obj):
                    yield f"{info.name}.{name}", obj
                elif inspect.isclass(obj) and not dataclasses.is_dataclass(obj):
                    yield f"{info.name}.{name}", obj.__init__


def test_no_step_function_repeats_a_schema_default():
    """A key's default lives in its schema only: a step receives its config object, so no
    keyword default of a step function may restate a schema key (the drift this caught:
    prune_model(distribution="uniform") beside PruneConfig.distribution="global")."""
    keys = {f.name for schema in _schemas() for f in dataclasses.fields(schema)}
    keys -= {"name", "seed"}  # generic words: a function's `name` is not dataset.name
    # same words, other things: inference batches (not train.batch_size), a model's path
    other = {("pruneflow.steps.evaluate", "batch_size"), ("pruneflow.devices.base", "keras")}
    offenders = []
    for where, fn in _step_functions():
        for p in inspect.signature(fn).parameters.values():
            if (where.rsplit(".", 1)[0], p.name) in other:
                continue
            if p.name in keys and p.default is not inspect.Parameter.empty:
                offenders.append(f"{where}({p.name}={p.default!r})")
    assert not offenders, offenders


def test_every_step_is_built_from_the_composed_default_config(tmp_path):
    """The default config, as `pruneflow` composes it, builds every step: the dataset, the
    backbone, the pruning distribution, the variants, the device. The prune step then runs the
    default recipe (global: layers get different targets), not the paper's (uniform)."""
    from pruneflow.devices.base import open_device
    from pruneflow.steps.convert.variants import VARIANTS
    from pruneflow.steps.prune.distributions import DISTRIBUTIONS
    from pruneflow.steps.prune.prune import prune_model

    config = check(compose(TINY))
    data = instantiate(config.dataset)
    model = instantiate(config.backbone, data.image_shape, data.num_classes)
    assert model.output_shape == (None, data.num_classes)
    assert DISTRIBUTIONS[config.prune.distribution].name == "global"
    assert all(v in VARIANTS for v in config.stage.variants)
    assert open_device(config.device).name == "local"

    path = tmp_path / "baseline.keras"
    model.compile(loss="sparse_categorical_crossentropy")
    model.save(path)
    pruned = prune_model(path, data, config.prune, batch_size=config.train.batch_size, seed=0)
    targets = {r["layer"]: r["target"] for r in pruned.layers if r["selected"]}
    assert len(set(np.round(list(targets.values()), 3))) > 1, targets  # not uniform
    assert pruned.sparsity == pytest.approx(config.prune.sparsity, abs=0.01)


def test_prune_paper_is_the_papers_method_and_the_default_is_ours():
    default, paper = check(compose()).prune, check(compose(["prune=paper"])).prune
    assert (default.distribution, default.ramp_fraction) == ("global", 0.75)
    assert (paper.distribution, paper.ramp_fraction, paper.lr_schedule) == (
        "uniform",
        1.0,
        "constant",
    )
    assert dataclasses.replace(paper, distribution="global", ramp_fraction=0.75) == default
    # the paper's presets use the option instead of copying its keys
    for preset in ("paper_mnist", "paper_tf_flowers", "offline_svhn"):
        assert check(compose([f"+experiment={preset}"])).prune.distribution == "uniform"
    ours = check(compose(["+experiment=paper_mnist_ours"])).prune
    assert (ours.distribution, ours.sparsity, ours.epochs) == ("global", 0.7, 5)


def test_help_lists_only_options_a_user_can_pick(tmp_path):
    proc = run_cli(["--help"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    groups = proc.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert "prune: default, paper" in groups
    assert "dataset: cats_vs_dogs, digits, folder," in groups
    assert "schema" not in groups and "_schema" not in groups, groups


def test_a_variant_a_delegate_and_a_device_each_live_in_one_registry():
    from pruneflow.devices.runner import DELEGATES, NEEDS_LIBRARY
    from pruneflow.steps.convert.variants import QAT_VARIANTS, VARIANTS

    assert QAT_VARIANTS == ("tflite_int8_qat",)
    assert VARIANTS["tflite_int8"].full_int8 and VARIANTS["tflite_float16"].supported_type
    assert list(DELEGATES) == ["none", "xnnpack", "armnn", "external"]
    assert NEEDS_LIBRARY == ("armnn", "external")
    # devices by _target_: the option names the class that receives it
    for option, cls in (("local", "LocalDevice"), ("rpi4", "SSHDevice")):
        assert check(compose([f"device={option}"])).device._target_.endswith(cls)


def test_the_summary_headlines_the_variant_the_registry_ranks_first():
    """The summary's headline variant: int8 first, then QAT, float16 (the old list named a
    `tflite_fp16` that does not exist, so stage=float headlined fp32), dynamic, fp32."""
    from pruneflow.pipeline import _headline_variant

    def timed(*variants):
        return {f"{v}/latency_p50_ms": 1.0 for v in ("keras", *variants)}

    assert _headline_variant(timed("tflite_fp32", "tflite_float16")) == "tflite_float16"
    assert _headline_variant(timed("tflite_fp32", "tflite_int8", "tflite_dynamic")) == (
        "tflite_int8"
    )
    assert _headline_variant(timed("tflite_fp32")) == "tflite_fp32"


def test_no_module_of_the_package_is_over_about_500_lines():
    """The device runner is the exception, under 650: its probe must stay one self-contained file
    (an SSH device runs it with ``python3 -c``, alone). What a run alone needs, such as the energy
    pass's sampling, goes in files shipped beside it."""
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
        for p in PACKAGE.rglob("*.py")
        if p.name != "runner.py"
    }
    assert max(sizes.values()) <= 500, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    assert len((PACKAGE / "devices" / "runner.py").read_text().splitlines()) < 650


def test_a_sweep_over_a_group_with_a_key_its_default_lacks_says_the_way_in_one_line(tmp_path):
    """`-m backbone=resnet50,vgg16 backbone.weights=null`: Hydra composes backbone=cnn first
    and refuses `weights` in many lines; pruneflow says `++backbone.weights=null` (which
    works) in one, before any job."""
    proc = run_cli(["-m", "backbone=resnet50,vgg16", "backbone.weights=null"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "++backbone.weights=null" in lines[0], proc.stderr
    assert not (tmp_path / "multirun").exists() and not (tmp_path / "mlruns").exists()
