import hashlib
from pathlib import Path

import numpy as np
import pytest

from pruneflow.prune import count_params, kernel_arrays, prune_model, schedule_steps, sparsity_of


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
    end, freq = schedule_steps(total, frequency)
    assert (end, freq) == expected
    assert end <= total - 1 and end % freq == 0


def _weights_digest(path: Path) -> str:
    from pruneflow.train import load_model

    model = load_model(path)
    return hashlib.sha256(b"".join(w.numpy().tobytes() for w in model.weights)).hexdigest()


@pytest.mark.parametrize("schedule", ["constant", "polynomial"])
@pytest.mark.parametrize("target", [0.5, 0.8])
def test_prune_reaches_target_and_keeps_baseline(trained_model_path, digits, schedule, target):
    before = _weights_digest(trained_model_path)
    pruned = prune_model(
        trained_model_path,
        digits,
        sparsity=target,
        schedule=schedule,
        epochs=1,
        batch_size=64,
        learning_rate=1e-3,
        frequency=5,
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
        sparsity=0.0,
        schedule="constant",
        epochs=0,
        batch_size=64,
        learning_rate=1e-3,
        frequency=5,
        seed=0,
    )
    assert pruned.sparsity < 0.05 and pruned.history == {}
    assert pruned.params_nonzero > 0.95 * pruned.params_total
