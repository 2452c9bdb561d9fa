"""Convolution and pooling functions (part of ``nn.functional``): argument checking and the
calls into ops_conv.py, where the math and both passes live.

Every size argument takes an int (the same for height and width) or a pair, as in PyTorch.

Read next: conv.py and pooling.py, the layers built on these.
"""
from __future__ import annotations

from typing import Any

from .. import ops_conv
from ..tensor import Tensor

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "pair"]


def pair(value: Any, name: str, minimum: int = 1) -> tuple:
    """An int or a pair of ints as (height, width), checked to be ≥ minimum."""
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                   for v in values):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return values


def _check_4d(function: str, input: Tensor) -> None:
    if input.ndim != 4:
        raise ValueError(f"{function} expects a 4-D (N, C, H, W) input, got shape {input.shape}")


def _check_output(function: str, input: Tensor, kernel: tuple, stride: tuple, padding: tuple,
                  dilation: tuple) -> None:
    out = [ops_conv.output_size(input.shape[2 + i], kernel[i], stride[i], padding[i],
                                dilation[i]) for i in range(2)]
    if min(out) < 1:
        raise ValueError(f"{function}: input of shape {input.shape} is too small for kernel "
                         f"{kernel} with padding {padding} and dilation {dilation} (output size "
                         f"{tuple(out)})")


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation (what deep learning calls convolution) of (N, C, H, W) input with
    an (O, C, kh, kw) kernel, plus a bias (O,); see ops_conv.Conv2d for the math."""
    if groups != 1:
        raise ValueError(f"conv2d: only groups=1 is supported, got groups={groups}")
    _check_4d("conv2d", input)
    if weight.ndim != 4 or weight.shape[1] != input.shape[1]:
        raise ValueError(f"conv2d: weight of shape {weight.shape} does not fit input of shape "
                         f"{input.shape} (expected (out_channels, {input.shape[1]}, kh, kw))")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"conv2d: bias of shape {bias.shape} does not fit {weight.shape[0]} "
                         f"output channels")
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    padding = pair(padding, "padding", minimum=0)
    _check_output("conv2d", input, weight.shape[2:], stride, padding, dilation)
    options = dict(stride=stride, padding=padding, dilation=dilation)
    if bias is None:
        return ops_conv.Conv2d.apply(input, weight, **options)
    return ops_conv.Conv2d.apply(input, weight, bias, **options)


def _pool_arguments(function: str, input: Tensor, kernel_size: Any, stride: Any,
                    padding: Any, ceil_mode: bool) -> tuple:
    _check_4d(function, input)
    if ceil_mode:
        raise ValueError(f"{function}: ceil_mode=True is not supported")
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    padding = pair(padding, "padding", minimum=0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{function}: padding {padding} should be at most half of kernel size "
                         f"{kernel}")
    return kernel, stride, padding


def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False) -> Tensor:
    """The maximum of each kh×kw window; stride defaults to the kernel size."""
    kernel, stride, padding = _pool_arguments("max_pool2d", input, kernel_size, stride, padding,
                                              ceil_mode)
    dilation = pair(dilation, "dilation")
    _check_output("max_pool2d", input, kernel, stride, padding, dilation)
    return ops_conv.MaxPool2d.apply(input, kernel=kernel, stride=stride, padding=padding,
                                    dilation=dilation)


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """The mean of each kh×kw window; stride defaults to the kernel size."""
    kernel, stride, padding = _pool_arguments("avg_pool2d", input, kernel_size, stride, padding,
                                              ceil_mode)
    _check_output("avg_pool2d", input, kernel, stride, padding, (1, 1))
    return ops_conv.AvgPool2d.apply(input, kernel=kernel, stride=stride, padding=padding,
                                    count_include_pad=bool(count_include_pad))
