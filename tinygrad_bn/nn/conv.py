"""`Conv2d`: a learned kernel slid over an image (the math is in ../ops_conv.py)."""
from __future__ import annotations

import math
from typing import Any

from ..random import generator
from ..tensor import Tensor
from . import functional as F
from .functional_conv import pair
from .module import Module, Parameter

__all__ = ["Conv2d"]


class Conv2d(Module):
    """y[n, o] = b[o] + Σ_c w[o, c] ⋆ x[n, c], with ⋆ the 2-D cross-correlation.

    Args:
        in_channels: C. out_channels: O. kernel_size: kh×kw (an int or a pair).
        stride, padding, dilation: an int or a pair each (padding adds zeros on both sides).
        groups: only 1 is supported.
        bias: learn b (redundant right before BatchNorm2d, which subtracts each channel's mean).

    Shape: (N, C, H, W) → (N, O, OH, OW) with OH = ⌊(H + 2p − d(kh − 1) − 1)/s⌋ + 1.
    weight: (O, C, kh, kw).

    Initialisation as in PyTorch: w and b drawn from U(−1/√fan_in, 1/√fan_in) with
    fan_in = C·kh·kw (PyTorch's kaiming_uniform with a = √5 reduces to this bound), from the
    library's seeded generator.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Conv2d: {name} must be a positive integer, got {value!r}")
        if groups != 1:
            raise ValueError(f"Conv2d: only groups=1 is supported, got groups={groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride, self.dilation = pair(stride, "stride"), pair(dilation, "dilation")
        self.padding = pair(padding, "padding", minimum=0)
        self.groups = groups
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        rng = generator()
        shape = (out_channels, in_channels) + self.kernel_size
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype("float32"))
        if bias:
            self.bias = Parameter(rng.uniform(-bound, bound, out_channels).astype("float32"))
        else:
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text
