"""`Linear`: the affine layer y = x Wᵀ + b."""
from __future__ import annotations

import math

from ..random import generator
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter

__all__ = ["Linear"]


class Linear(Module):
    """y = x Wᵀ + b, applied to the last axis of x (any leading axes).

    Args:
        in_features: size of each input row. out_features: size of each output row.
        bias: whether to add the learnable b (a bias right before BatchNorm is redundant: BN
            subtracts the batch mean, which removes any constant — so it gets zero gradient).

    Shape: (*, in_features) → (*, out_features). weight: (out_features, in_features).

    Initialisation as in PyTorch: W and b drawn from U(−1/√in, 1/√in), using the library's
    seeded generator (`tinygrad_bn.manual_seed`).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Linear: {name} must be a positive integer, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        rng = generator()
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features))
                                .astype("float32"))
        if bias:
            self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype("float32"))
        else:
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
