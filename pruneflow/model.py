"""Model stage: build the (untrained) classifiers named by the ``backbone`` config group.

Every builder takes the dataset's ``input_shape`` and ``num_classes`` plus its own options, and
returns a tf_keras model whose input is raw uint8-range pixels (preprocessing is inside the model)
and whose output is class probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence


def build_cnn(
    input_shape: Sequence[int],
    num_classes: int,
    filters: Sequence[int] = (16, 32),
    dense_units: int = 64,
    dropout: float = 0.25,
):
    """A small custom CNN like the paper's MNIST model: conv/pool blocks, one dense layer."""
    import tf_keras as keras

    if not filters:
        raise ValueError("backbone.filters: valid values are a non-empty list of positive ints")
    layers = keras.layers
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for i, f in enumerate(filters):
        x = layers.Conv2D(int(f), 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(int(dense_units), activation="relu", name="dense")(x)
    if dropout:
        x = layers.Dropout(float(dropout), name="dropout")(x)
    outputs = layers.Dense(int(num_classes), activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="cnn")
