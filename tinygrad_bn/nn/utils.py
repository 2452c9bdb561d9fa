"""``nn.utils``: folding an evaluation-mode BatchNorm into the layer before it.

In evaluation mode BatchNorm is a fixed affine map per channel,

    y = γ·(z − μ_r)/√(σ²_r + ε) + β = s·z + (β − s·μ_r),   s = γ/√(σ²_r + ε),

with the *running* statistics μ_r, σ²_r. If z = W x + b comes from a Linear or Conv2d layer,
the two maps compose into one layer of the same kind:

    W' = s·W (each output channel's row or kernel scaled),   b' = s·(b − μ_r) + β.

This is what deployment does: one layer fewer at inference, identical outputs. It is only
valid in evaluation mode — in training BN uses each batch's statistics, which no fixed
weight can reproduce.
"""
from __future__ import annotations

import copy

import numpy as np

from .batchnorm import _BatchNorm
from .conv import Conv2d
from .linear import Linear
from .module import Module, Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_linear_bn_eval", "fuse_conv_bn_weights"]


def fuse_conv_bn_weights(weight: np.ndarray, bias: np.ndarray | None, running_mean: np.ndarray,
                         running_var: np.ndarray, eps: float, gamma: np.ndarray | None,
                         beta: np.ndarray | None) -> tuple:
    """W' = s·W and b' = s·(b − μ_r) + β with s = γ/√(σ²_r + ε), on arrays; works for any
    weight whose first axis is the output channel (Linear's (O, in), Conv2d's (O, C, kh, kw))."""
    scale = 1.0 / np.sqrt(running_var + eps)
    if gamma is not None:
        scale = gamma * scale
    if bias is None:
        bias = np.zeros_like(running_mean)
    new_bias = scale * (bias - running_mean)
    if beta is not None:
        new_bias = new_bias + beta
    new_weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    return new_weight.astype(weight.dtype), new_bias.astype(weight.dtype)


def _fuse(layer: Module, bn: _BatchNorm, kind: str) -> Module:
    if layer.training or bn.training:
        raise ValueError(f"{kind}: fusion is only for evaluation mode; call eval() on both "
                         f"modules first")
    if not isinstance(bn, _BatchNorm) or bn.running_mean is None:
        raise ValueError(f"{kind}: needs a BatchNorm layer with running statistics")
    out_channels = layer.weight.shape[0]
    if bn.num_features != out_channels:
        raise ValueError(f"{kind}: the layer has {out_channels} output channels but the "
                         f"BatchNorm has {bn.num_features} features")
    weight, bias = fuse_conv_bn_weights(
        layer.weight.data, None if layer.bias is None else layer.bias.data,
        bn.running_mean.data, bn.running_var.data, bn.eps,
        None if bn.weight is None else bn.weight.data, None if bn.bias is None else bn.bias.data)
    fused = copy.deepcopy(layer)
    fused.weight = Parameter(weight)
    fused.bias = Parameter(bias)
    return fused


def fuse_conv_bn_eval(conv: Conv2d, bn: _BatchNorm) -> Conv2d:
    """A new Conv2d equal to ``bn(conv(x))`` for both in evaluation mode (inputs untouched)."""
    return _fuse(conv, bn, "fuse_conv_bn_eval")


def fuse_linear_bn_eval(linear: Linear, bn: _BatchNorm) -> Linear:
    """A new Linear equal to ``bn(linear(x))`` for both in evaluation mode (inputs untouched)."""
    return _fuse(linear, bn, "fuse_linear_bn_eval")
