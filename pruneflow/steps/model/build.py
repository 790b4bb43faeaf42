"""Model stage: build the (untrained) classifiers named by the ``backbone`` config group.

Every builder takes the dataset's ``input_shape`` and ``num_classes`` plus its own options, and
returns a tf_keras model whose input is raw uint8-range pixels (preprocessing is inside the model)
and whose output is class probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pruneflow.errors import PruneflowError, require
from pruneflow.steps.model.zoo import keras_name, min_input, preprocessing

if TYPE_CHECKING:
    from pruneflow.steps.model.config import CNNConfig, TransferConfig


def build_cnn(config: CNNConfig, input_shape: Sequence[int], num_classes: int):
    """A small custom CNN like the paper's MNIST model: conv/pool blocks, one dense layer."""
    import tf_keras as keras

    filters, dense_units, dropout = config.filters, config.dense_units, config.dropout
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


# caffe mode: BGR input minus these ImageNet means (given here in RGB order), no scaling.
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
# torch mode: 0..1 input minus these means, over these standard deviations (RGB).
TORCH_MEAN_RGB, TORCH_STD_RGB = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
BASE_LAYER = "base"


def preprocess(x, mode: str):
    """Raw 0..255 RGB pixels as ``mode``'s ImageNet weights expect them (:mod:`.zoo`)."""
    import tf_keras as keras

    layers = keras.layers
    if mode == "tf":  # scale to [-1, 1]
        return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(x)
    if mode == "caffe":  # subtract the ImageNet mean; the BGR order is folded into the first conv
        return layers.Normalization(
            mean=CAFFE_MEAN_RGB, variance=(1.0, 1.0, 1.0), name="preprocess"
        )(x)
    if mode == "torch":  # (x / 255 - mean) / std, as one normalization of 0..255 pixels
        mean = [255.0 * m for m in TORCH_MEAN_RGB]
        variance = [(255.0 * s) ** 2 for s in TORCH_STD_RGB]
        return layers.Normalization(mean=mean, variance=variance, name="preprocess")(x)
    return x  # none: the base preprocesses 0..255 itself


class WeightsUnavailable(PruneflowError, RuntimeError):
    """Pretrained weights could not be obtained; the message names the offline choice."""


def build_transfer(config: TransferConfig, input_shape: Sequence[int], num_classes: int):
    """A keras.applications base (``arch``) with its preprocessing and a new classifier head.

    The model takes raw 0..255 pixels of ``input_shape`` (grayscale is repeated to RGB,
    other sizes are resized to ``input_size``); the nested base is named ``base`` so training
    can freeze it. ``weights``: ``imagenet`` (downloaded by Keras on first use, then cached in
    ~/.keras/models), null (random initialisation, offline), or a weights file path.
    """
    import tf_keras as keras

    arch, weights, input_size, dropout = (
        config.arch,
        config.weights,
        config.input_size,
        config.dropout,
    )
    mode = preprocessing(arch)
    height, width, channels = (int(d) for d in input_shape)
    size = int(input_size or height)
    least = min_input(arch)
    require(
        size >= least,
        "input_shape",
        tuple(input_shape),
        f"images of at least {least}x{least} for {arch}, or an input_size to resize them to "
        "inside the model",
    )
    layers = keras.layers
    inputs = keras.Input(shape=(height, width, channels), name="image")
    x = inputs
    if (height, width) != (size, size):
        x = layers.Resizing(size, size, name="resize")(x)
    if channels == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = preprocess(x, mode)
    try:
        base = getattr(keras.applications, keras_name(arch))(
            input_shape=(size, size, 3), include_top=False, weights=weights
        )
    except Exception as exc:  # noqa: BLE001 - keras raises plain Exception for URL failures
        if weights == "imagenet" and "URL fetch failure" in str(exc):
            raise WeightsUnavailable(
                f"backbone={arch}: the ImageNet weights could not be downloaded ({exc}). "
                "Offline, use backbone.weights=null (random initialisation), or give the path "
                "of a weights file as backbone.weights."
            ) from exc
        raise
    base._name = BASE_LAYER
    if mode == "caffe" and weights is not None:
        # RGB input for BGR-trained weights: the first convolution's input channels reversed
        conv = next(la for la in base.layers if type(la).__name__ == "Conv2D")
        kernel, *rest = conv.get_weights()
        conv.set_weights([kernel[:, :, ::-1, :], *rest])
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = layers.Dropout(float(dropout), name="dropout")(x)
    outputs = layers.Dense(int(num_classes), activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=arch)
