"""`LayerNorm` and `GroupNorm`: BatchNorm's relatives that never average across the batch.

All three compute (x − μ)/√(σ² + ε)·γ + β; they differ in which values share μ and σ²
(docs/normalization.md has the picture):

* BatchNorm — one channel, over the whole batch (and every position);
* LayerNorm — one sample, over its trailing ``normalized_shape`` axes;
* GroupNorm — one sample, over a group of channels (and every position).

LayerNorm and GroupNorm therefore behave the same in training and evaluation, keep no running
statistics and work at batch size 1 — the small-batch weakness of BatchNorm is what they fix.

Read next: ../optim/, which trains their γ and β like every other parameter.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter

__all__ = ["LayerNorm", "GroupNorm"]


class LayerNorm(Module):
    """y = (x − μ)/√(σ² + ε)·γ + β, with μ and the biased σ² taken over each sample's last
    ``len(normalized_shape)`` axes.

    Args:
        normalized_shape: the trailing shape to normalise over (an int for one axis).
        eps: added to the variance. elementwise_affine: learn γ (``weight``, ones) and β
            (``bias``, zeros), both of shape ``normalized_shape``.

    Shape: (*, *normalized_shape) → same shape.
    """

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
            tuple(normalized_shape)
        if not shape or any(not isinstance(n, int) or n < 1 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive ints, got "
                             f"{normalized_shape!r}")
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps!r}")
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape, dtype=np.float32))
            self.bias = Parameter(np.zeros(shape, dtype=np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Split the channels into ``num_groups`` groups; normalise each sample's group over its
    channels and positions, then scale and shift each channel by γ_c and β_c.

    Args:
        num_groups: G, which must divide num_channels. num_channels: C. eps: added to the
            variance. affine: learn per-channel γ (ones) and β (zeros).

    Shape: (N, C, *) → same shape.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True):
        super().__init__()
        for name, value in (("num_groups", num_groups), ("num_channels", num_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GroupNorm: {name} must be a positive integer, got {value!r}")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels must be divisible by num_groups, got "
                             f"{num_channels} channels and {num_groups} groups")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=np.float32))
            self.bias = Parameter(np.zeros(num_channels, dtype=np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}) got an input of "
                             f"shape {input.shape}: expected {self.num_channels} channels on "
                             f"axis 1")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
