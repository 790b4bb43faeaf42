"""Every keras.applications classifier of tf_keras as a ``backbone.arch``: its keras name, the
preprocessing its ImageNet weights expect and its minimum input size. Light: no TensorFlow (the
config checks it at compose time); tests/test_zoo.py derives both columns from
keras.applications itself (each module's ``preprocess_input`` and each constructor's refusal of
a small input) and fails when this table and tf_keras disagree.

Preprocessing modes (what the model applies to raw 0..255 RGB pixels before the base):

- ``tf``: scaled to [-1, 1];
- ``caffe``: BGR order minus the ImageNet mean, no scaling;
- ``torch``: scaled to [0, 1], minus the ImageNet mean, over its standard deviation;
- ``none``: the base has its own preprocessing layers (it takes 0..255).
"""

from __future__ import annotations

import difflib

from pruneflow.errors import ArgumentError

PREPROCESSING = ("tf", "caffe", "torch", "none")

_FAMILIES: tuple[tuple[tuple[str, ...], str, int], ...] = (
    (
        ("ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge"),
        "none",
        32,
    ),
    (("DenseNet121", "DenseNet169", "DenseNet201"), "torch", 32),
    (tuple(f"EfficientNetB{i}" for i in range(8)), "none", 32),
    (
        tuple(f"EfficientNetV2{s}" for s in ("B0", "B1", "B2", "B3", "S", "M", "L")),
        "none",
        32,
    ),
    (("InceptionResNetV2", "InceptionV3"), "tf", 75),
    (("MobileNet", "MobileNetV2"), "tf", 32),
    (("MobileNetV3Small", "MobileNetV3Large"), "none", 32),
    (("NASNetMobile", "NASNetLarge"), "tf", 32),
    (
        tuple(
            f"RegNet{k}{n}"
            for k in "XY"
            for n in ("002", "004", "006", "008", "016", "032", "040", "064", "080", "120")
            + ("160", "320")
        ),
        "none",
        32,
    ),
    (("ResNet50", "ResNet101", "ResNet152"), "caffe", 32),
    (("ResNet50V2", "ResNet101V2", "ResNet152V2"), "tf", 32),
    (tuple(f"ResNetRS{n}" for n in (50, 101, 152, 200, 270, 350, 420)), "none", 32),
    (("VGG16", "VGG19"), "caffe", 32),
    (("Xception",), "tf", 71),
)
# The table: keras name -> (preprocessing, minimum input size in pixels).
KERAS_ARCHS: dict[str, tuple[str, int]] = {
    name: (mode, least) for names, mode, least in _FAMILIES for name in names
}
# backbone.arch's names: the keras name lower-cased (mobilenetv2); the keras name is accepted too.
ARCHS: dict[str, str] = {name.lower(): name for name in KERAS_ARCHS}


def arch_name(arch: str) -> str:
    """``arch``'s lower-case name (``MobileNetV2``, ``mobilenet_v2`` -> ``mobilenetv2``);
    ArgumentError with the nearest names for a name that is not a keras.applications
    classifier."""
    key = str(arch).lower().replace("_", "").replace("-", "")  # mobilenet_v2 is mobilenetv2
    if key in ARCHS:
        return key
    near = difflib.get_close_matches(key, ARCHS, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    raise ArgumentError(
        "arch",
        arch,
        f"the keras.applications classifiers ({hint}all {len(ARCHS)} in docs/models.md, "
        "lower-case or as keras spells them: mobilenetv2, MobileNetV2)",
    )


def keras_name(arch: str) -> str:
    """The keras.applications constructor of a (lower-case) ``arch``."""
    return ARCHS[arch]


def preprocessing(arch: str) -> str:
    """The preprocessing ``arch``'s ImageNet weights expect (:data:`PREPROCESSING`)."""
    return KERAS_ARCHS[ARCHS[arch]][0]


def min_input(arch: str) -> int:
    """The smallest image side ``arch`` accepts."""
    return KERAS_ARCHS[ARCHS[arch]][1]
