"""What a model costs, measured on its layers: multiply-accumulates per image.

Light at import (no TensorFlow): it reads the layers of a tf_keras model it is given."""

from __future__ import annotations

import math


def leaf_layers(model) -> list:
    """Every layer of ``model`` in order, nested models (a transfer backbone) expanded."""
    out = []
    for layer in model.layers:
        out.extend(leaf_layers(layer) if hasattr(layer, "layers") and layer.layers else [layer])
    return out


def _shape(tensor_or_list) -> tuple:
    t = tensor_or_list[0] if isinstance(tensor_or_list, (list, tuple)) else tensor_or_list
    return tuple(t.shape)


def layer_macs(layer) -> int:
    """Multiply-accumulates of one layer for one image (0 for layers without a kernel)."""
    kind = type(layer).__name__
    if not layer._inbound_nodes:  # a layer never called has no shapes
        return 0
    node = layer._inbound_nodes[0]
    out = _shape(node.outputs)
    positions = math.prod(d for d in out[1:-1] if d is not None)  # spatial (or sequence) size
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        k = layer.kernel.shape  # (*kernel size, in / groups, out)
        return positions * math.prod(k)
    if kind == "DepthwiseConv2D":
        k = layer.depthwise_kernel.shape  # (kh, kw, in, multiplier)
        return positions * math.prod(k)
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        dw, pw = layer.depthwise_kernel.shape, layer.pointwise_kernel.shape
        return positions * (math.prod(dw) + math.prod(pw))
    if kind in ("Conv2DTranspose", "Conv3DTranspose"):
        k = layer.kernel.shape  # (*kernel size, out, in): every input position feeds a window
        inp = _shape(node.input_tensors)
        return math.prod(d for d in inp[1:-1] if d is not None) * math.prod(k)
    if kind == "Dense":
        return positions * math.prod(layer.kernel.shape)
    return 0


def macs(model) -> int:
    """Multiply-accumulates per image of ``model``: convolutions, depthwise and dense layers
    (element-wise layers, pooling and batch normalization are not counted: a converter folds
    batch normalization into the convolution before it)."""
    return sum(layer_macs(layer) for layer in leaf_layers(model))
