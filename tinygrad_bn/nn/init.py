"""`nn.init`: fill a weight in place with PyTorch's initialisation formulas.

Why initialisation matters: a layer y = W x sums fan_in products, so with independent unit-
variance inputs Var(yⱼ) = fan_in · Var(W). To keep activations from shrinking or exploding
through many layers, draw W with Var(W) = gain² / fan — "gain" undoes what the nonlinearity
does to the variance (ReLU halves it, so gain² = 2). The schemes differ in which fan:

* Xavier/Glorot (2010): std = gain · √(2 / (fan_in + fan_out)), a compromise between keeping the
  forward activations (fan_in) and the backward gradients (fan_out) steady;
* Kaiming/He (2015): std = gain / √fan, with fan = fan_in (``mode="fan_in"``, the forward pass)
  or fan_out (the backward pass).

A uniform U(−b, b) has variance b²/3, so the uniform variants use b = √3 · std.

For a weight of shape (out, in, k₁, k₂, …) (a convolution's), each of the ``in`` inputs is
seen through a k₁·k₂·… receptive field: fan_in = in · k₁k₂…, fan_out = out · k₁k₂….

Every function changes ``tensor.data`` in place, records no graph, draws from the library's
generator (so `manual_seed` makes it repeatable) and returns the tensor, as PyTorch's do.
BatchNorm makes a network far less sensitive to all this (docs/batchnorm.md, init sweep).

Read next: ../monitor.py, to watch what an initialisation does during training.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from ..random import generator
from ..tensor import Tensor, increment_version

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "fan_in_and_fan_out"]

# Gains for nonlinearities that do not take a parameter (PyTorch's table).
_GAINS = {
    "linear": 1.0, "identity": 1.0, "sigmoid": 1.0,
    "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0,
    "conv_transpose1d": 1.0, "conv_transpose2d": 1.0, "conv_transpose3d": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4.0,
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps the variance of activations steady through ``nonlinearity``.

    linear, conv*, sigmoid → 1;  tanh → 5/3;  relu → √2;  selu → 3/4;
    leaky_relu → √(2 / (1 + slope²)), slope = ``param`` (default 0.01).

    Example:
        >>> calculate_gain("relu")
        1.4142135623730951
    """
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, numbers.Real):
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"unsupported nonlinearity {nonlinearity!r}; choose one of "
                         f"{', '.join(sorted(_GAINS) + ['leaky_relu'])}")
    return _GAINS[nonlinearity]


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel): (in·∏kernel, out·∏kernel)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor of at least 2 dimensions, got shape "
                         f"{shape}")
    receptive_field = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive_field, shape[0] * receptive_field


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} is not supported; use 'fan_in' or 'fan_out'")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor: Tensor, values: Any) -> Tensor:
    """Write ``values`` into the tensor's own array (in place, keeping its dtype), and count
    the change, so that a backward pass that saved the old values refuses to run."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init works on Tensors and Parameters, got {type(tensor).__name__}")
    tensor.data[...] = values
    increment_version(tensor)  # a graph that saved the old values must not use them
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with samples of U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_ needs a <= b, got a={a}, b={b}")
    return _fill(tensor, generator().uniform(a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with samples of N(mean, std²)."""
    if not std >= 0:
        raise ValueError(f"normal_ needs std >= 0, got {std}")
    return _fill(tensor, generator().normal(mean, std, tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with the value ``val``."""
    return _fill(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0 (biases, BatchNorm's β)."""
    return _fill(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1 (BatchNorm's γ)."""
    return _fill(tensor, 1)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """U(−b, b) with b = gain · √(6 / (fan_in + fan_out))  (std = gain · √(2/(fan_in+fan_out)))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return _fill(tensor, generator().uniform(-bound, bound, tensor.shape))


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _fill(tensor, generator().normal(0.0, std, tensor.shape))


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float | None:
    if 0 in tensor.shape:
        warnings.warn("initialising a zero-element tensor is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """U(−b, b) with b = √3 · gain / √fan; ``a`` is the leaky-ReLU slope given to the gain.

    PyTorch's defaults (a=0, leaky_relu) make the gain √2, He initialisation for ReLU.
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return _fill(tensor, generator().uniform(-bound, bound, tensor.shape))


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std²) with std = gain / √fan (He et al., 2015)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return _fill(tensor, generator().normal(0.0, std, tensor.shape))
