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


def logits_model(arch: str, size: int, seed: int = 0, classes: int = 10):
    """``arch`` at ``size`` px with random weights, its head giving logits (a softmax of
    random weights saturates), BatchNorm statistics and ConvNeXt's layer scales away from their
    initial values, so that a channel that is not zero where it should be shows."""
    import numpy as np
    import tf_keras as keras

    from pruneflow.steps.model.measure import leaf_layers

    model = transfer((size, size, 3), classes, arch, weights=None, dropout=0.0)
    model.get_layer("probs").activation = keras.activations.linear
    rng = np.random.default_rng(seed)
    for layer in leaf_layers(model):
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            draw = {
                "gamma": lambda n: rng.uniform(0.5, 1.5, n),
                "beta": lambda n: rng.normal(0, 0.3, n),
                "moving_mean": lambda n: rng.normal(0, 0.3, n),
                "moving_variance": lambda n: rng.uniform(0.5, 1.5, n),
            }
            names = [v.name.split("/")[-1].split(":")[0] for v in layer.weights]
            layer.set_weights(
                [
                    draw[k](w.shape).astype("float32")
                    for k, w in zip(names, layer.get_weights(), strict=True)
                ]
            )
        elif kind == "LayerScale":  # 1e-6 at first: the blocks would not count
            (gamma,) = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype("float32")])
    return model


def digits(seed: int = 42, **options):
    """scikit-learn's digits as the ``dataset=digits`` option loads them."""
    from pruneflow.steps.data.config import DigitsConfig
    from pruneflow.steps.data.loaders import load_digits

    return load_digits(DigitsConfig(seed=seed, **options))
