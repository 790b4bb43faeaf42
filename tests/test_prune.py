import hashlib
from pathlib import Path

import numpy as np
import pytest

from helpers.models import prune_quick
from pruneflow.steps.prune.config import PruneConfig
from pruneflow.steps.prune.distributions import schedule_steps
from pruneflow.steps.prune.prune import count_params, kernel_arrays, prune_model, sparsity_of


def test_sparsity_of_counts_exact_zeros():
    a = np.array([[0.0, 1.0], [0.0, -2.0]])
    b = np.zeros(6)
    assert sparsity_of([a]) == 0.5
    assert sparsity_of([a, b]) == pytest.approx(8 / 10)
    assert sparsity_of([np.array([1e-12, -1e-12])]) == 0.0  # tiny is not zero
    assert sparsity_of([]) == 0.0


def test_count_params():
    assert count_params([np.array([0.0, 1.0, 2.0]), np.zeros((2, 2))]) == (7, 2)


@pytest.mark.parametrize(
    "total,frequency,expected",
    [
        (120, 10, (110, 10)),  # last step 119: last multiple of 10 is 110
        (100, 10, (90, 10)),
        (7, 10, (6, 3)),  # short run: the frequency shrinks so the ramp has steps
        (3, 10, (2, 1)),
        (1, 10, (0, 1)),  # one step: no ramp possible, caller uses a constant schedule
    ],
)
def test_schedule_steps_end_on_a_reached_pruning_step(total, frequency, expected):
    end, freq = schedule_steps(total, frequency, 1.0)
    assert (end, freq) == expected
    assert end <= total - 1 and end % freq == 0


def _weights_digest(path: Path) -> str:
    from pruneflow.steps.train.train import load_model

    model = load_model(path)
    return hashlib.sha256(b"".join(w.numpy().tobytes() for w in model.weights)).hexdigest()


@pytest.mark.parametrize("schedule", ["constant", "polynomial"])
@pytest.mark.parametrize("target", [0.5, 0.8])
def test_prune_reaches_target_and_keeps_baseline(trained_model_path, digits, schedule, target):
    before = _weights_digest(trained_model_path)
    pruned = prune_model(
        trained_model_path,
        digits,
        PruneConfig(sparsity=target, schedule=schedule, epochs=1, frequency=5),
        batch_size=64,
        seed=0,
    )
    # measured from the weights of the stripped model, not taken from tfmot's word
    assert pruned.sparsity == pytest.approx(target, abs=0.01)
    assert sparsity_of(kernel_arrays(pruned.model)) == pruned.sparsity
    assert not any("prune_low_magnitude" in layer.name for layer in pruned.model.layers)
    assert pruned.params_nonzero < pruned.params_total
    assert set(pruned.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    # pruning wraps the loaded layers: the cached baseline itself must not change
    assert _weights_digest(trained_model_path) == before


def test_sparsity_zero_is_the_baseline(trained_model_path, digits):
    pruned = prune_model(
        trained_model_path,
        digits,
        PruneConfig(sparsity=0.0, schedule="constant", epochs=0),
        batch_size=64,
        seed=0,
    )
    assert pruned.sparsity < 0.05 and pruned.history == {}
    assert pruned.params_nonzero > 0.95 * pruned.params_total


def _by_layer(pruned):
    return {row["layer"]: row for row in pruned.layers}


def test_two_of_four_is_measured_truthfully(trained_model_path, digits):
    pruned = prune_quick(trained_model_path, digits, pattern="2:4", distribution="uniform")
    rows = _by_layer(pruned)
    # tfmot reports conv1 (one input channel) pruned, but leaves it dense: we say so
    assert rows["conv1"]["selected"] and rows["conv1"]["sparsity"] == 0.0
    for name in ("conv2", "dense", "probs"):
        assert rows[name]["sparsity"] == pytest.approx(0.5, abs=1e-6), name
    assert pruned.sparsity < 0.5
    # the structure: at least two zeros in every block of four along the input axis
    dense = next(w.numpy() for w in pruned.model.get_layer("dense").weights if "kernel" in w.name)
    blocks = dense.T.reshape(dense.shape[1], -1, 4)
    assert ((blocks == 0).sum(axis=-1) >= 2).all()


def test_layer_selection_by_type_name_and_position(trained_model_path, digits):
    def prune(**selection):  # every selected layer at the target
        return _by_layer(
            prune_quick(trained_model_path, digits, distribution="uniform", **selection)
        )

    only_conv = prune(layer_types=["Conv2D"])
    assert only_conv["dense"]["sparsity"] == 0.0 and only_conv["probs"]["sparsity"] == 0.0
    assert only_conv["conv2"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    named = prune(exclude_layers=["dense"])
    assert named["dense"]["sparsity"] == 0.0 and not named["dense"]["selected"]
    assert named["probs"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    ends = prune(keep_first_last=True)
    assert ends["conv1"]["sparsity"] == 0.0 and ends["probs"]["sparsity"] == 0.0
    assert ends["conv2"]["sparsity"] == pytest.approx(0.5, abs=0.01)


def test_layer_selection_rejects_unknown_names_and_types(trained_model_path, digits):
    with pytest.raises(ValueError, match=r"exclude_layers=\['conv9'\] is invalid: .*\['conv1'"):
        prune_quick(trained_model_path, digits, exclude_layers=["conv9"])
    with pytest.raises(ValueError, match="layer_types=\\['Conv4D'\\] is invalid"):
        prune_quick(trained_model_path, digits, layer_types=["Conv4D"])


def test_layers_a_target_leaves_without_a_weight():
    from pruneflow.steps.prune.prune import layers_without_weights

    rows = [
        {"layer": "conv1", "selected": True, "size": 144},
        {"layer": "big", "selected": True, "size": 100352},
        {"layer": "kept", "selected": False, "size": 10},
    ]
    both = ("conv1", "big")
    assert layers_without_weights(rows, dict.fromkeys(both, 0.999)) == ["conv1"]  # 0.144 left
    assert layers_without_weights(rows, dict.fromkeys(both, 0.99)) == []  # 1.44: one survives
    assert layers_without_weights(rows, dict.fromkeys(both, 0.9999999)) == ["conv1", "big"]
    assert layers_without_weights(rows, {"conv1": 0.5, "big": 0.999999}) == ["big"]


def test_erk_densities_on_known_shapes():
    from pruneflow.steps.prune.distributions import erk_densities

    shapes = {"small": (10, 10), "large": (100, 100)}  # raw densities 20/100 and 200/10000
    # density 0.1: 1010 of 10100 weights kept, split 0.2 : 0.02 per weight
    d = erk_densities(shapes, 0.1)
    scale = 1010 / (0.2 * 100 + 0.02 * 10000)
    assert d == pytest.approx({"small": 0.2 * scale, "large": 0.02 * scale})
    assert 100 * d["small"] + 10000 * d["large"] == pytest.approx(1010)
    # density 0.5: "small" would exceed 1, is kept dense, and "large" is solved again
    d = erk_densities(shapes, 0.5)
    assert d == pytest.approx({"small": 1.0, "large": (5050 - 100) / 10000})
    # a conv kernel's density scales with the sum of all four dimensions
    d = erk_densities({"conv": (3, 3, 1, 16), "dense": (1568, 64)}, 0.05)
    total = 144 + 1568 * 64
    assert 144 * d["conv"] + 1568 * 64 * d["dense"] == pytest.approx(0.05 * total)
    assert d["conv"] / d["dense"] == pytest.approx((23 / 144) / (1632 / (1568 * 64)))


def test_global_sparsities_share_one_threshold():
    from pruneflow.steps.prune.distributions import global_sparsities

    mags = {"a": np.array([1.0, 2.0, 3.0, 4.0]), "b": np.array([0.5, -5, 6, 7, 8, 9])}
    # the 3 smallest magnitudes of 10 (0.5, 1, 2): two in "a", one in "b"
    assert global_sparsities(mags, 0.3) == pytest.approx({"a": 0.5, "b": 1 / 6})
    assert global_sparsities(mags, 0.0) == {"a": 0.0, "b": 0.0}


def test_ramp_ends_at_its_fraction_of_the_steps():
    from pruneflow.steps.prune.distributions import ramp

    assert schedule_steps(120, 10, 0.5) == (50, 10)  # steps 0..59: the last multiple, 50
    assert schedule_steps(120, 10, 1.0) == (110, 10)
    assert ramp(0, 50, 0.9) == 0.0 and ramp(50, 50, 0.9) == pytest.approx(0.9)
    assert ramp(25, 50, 0.9) == pytest.approx(0.9 * (1 - 0.5**3))  # tfmot's cubic ramp
    assert ramp(80, 50, 0.9) == pytest.approx(0.9)


@pytest.mark.parametrize("distribution", ["erk", "global"])
def test_a_distribution_meets_the_overall_target_and_spares_small_layers(
    trained_model_path, digits, distribution
):
    pruned = prune_quick(
        trained_model_path,
        digits,
        sparsity=0.95,
        schedule="polynomial",
        distribution=distribution,
        ramp_fraction=0.5,
        lr_schedule="cosine",
    )
    assert pruned.sparsity == pytest.approx(0.95, abs=0.005)  # every kernel is selected here
    rows = {r["layer"]: r for r in pruned.layers}
    assert rows["conv1"]["sparsity"] < rows["dense"]["sparsity"]
    for row in rows.values():  # the table reports each layer's target beside what it got
        assert row["sparsity"] == pytest.approx(row["target"], abs=0.01), row


def test_global_without_a_ramp_prunes_from_the_first_step(trained_model_path, digits):
    """A constant schedule (or a run too short for a ramp) prunes at the target throughout."""
    pruned = prune_quick(trained_model_path, digits, sparsity=0.8, distribution="global")
    assert pruned.sparsity == pytest.approx(0.8, abs=0.005)


def test_each_distribution_is_a_strategy_of_the_registry():
    """prune.distribution names a class; its targets on known kernels (no TensorFlow)."""
    from pruneflow.steps.prune.distributions import DISTRIBUTIONS, erk_densities, global_sparsities

    assert list(DISTRIBUTIONS) == ["uniform", "erk", "global"]
    kernels = {"a": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.arange(1.0, 13.0).reshape(3, 4)}
    config = PruneConfig(sparsity=0.5)
    spread = {name: cls(config, steps=100).targets(kernels) for name, cls in DISTRIBUTIONS.items()}
    assert spread["uniform"] == {"a": 0.5, "b": 0.5}
    erk = erk_densities({"a": (2, 2), "b": (3, 4)}, 0.5)
    assert spread["erk"] == pytest.approx({n: 1 - d for n, d in erk.items()})
    assert spread["global"] == global_sparsities(kernels, 0.5)
    assert DISTRIBUTIONS["global"](config, steps=100).end_step == 70  # 75% of the steps
