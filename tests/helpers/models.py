"""Small real models for step tests."""

from __future__ import annotations


def prune_quick(path, data, **overrides):
    """``prune_model`` with the tests' smallest budget (one epoch, a constant schedule) and
    every other key at its schema default, the recipe users run."""
    from pruneflow.steps.prune.config import PruneConfig
    from pruneflow.steps.prune.prune import prune_model

    batch_size = overrides.pop("batch_size", 64)
    seed = overrides.pop("seed", 0)
    args = dict(sparsity=0.5, schedule="constant", epochs=1, frequency=5)
    config = PruneConfig(**{**args, **overrides})
    return prune_model(path, data, config, batch_size=batch_size, seed=seed)


def cnn(input_shape, num_classes, **options):
    """The small CNN backbone (its schema's defaults unless ``options`` say otherwise)."""
    from pruneflow.steps.model.build import build_cnn
    from pruneflow.steps.model.config import CNNConfig

    return build_cnn(CNNConfig(**options), input_shape, num_classes)


def transfer(input_shape, num_classes, arch, **options):
    """A keras.applications backbone (``weights=None`` offline)."""
    from pruneflow.steps.model.build import build_transfer
    from pruneflow.steps.model.config import TransferConfig

    return build_transfer(TransferConfig(arch=arch, **options), input_shape, num_classes)


def digits(seed: int = 42, **options):
    """scikit-learn's digits as the ``dataset=digits`` option loads them."""
    from pruneflow.steps.data.config import DigitsConfig
    from pruneflow.steps.data.loaders import load_digits

    return load_digits(DigitsConfig(seed=seed, **options))
