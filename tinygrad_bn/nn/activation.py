"""Element-wise layers: activations, Dropout and Identity (no parameters of their own)."""
from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh", "Dropout", "Identity", "LeakyReLU", "GELU",
           "Softplus"]


class ReLU(Module):
    """y = max(0, x), elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return input.relu()


class Sigmoid(Module):
    """y = σ(x) = 1 / (1 + e⁻ˣ), elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return input.sigmoid()


class Tanh(Module):
    """y = tanh x, elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return input.tanh()


class Identity(Module):
    """y = x (a placeholder, e.g. where a BatchNorm layer is switched off)."""

    def forward(self, input: Tensor) -> Tensor:
        return input


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1 − p).

    In evaluation mode it passes its input through unchanged.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LeakyReLU(Module):
    """y = x for x > 0, else negative_slope·x: negative inputs keep a small gradient."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """y = x·Φ(x) (Φ the standard normal CDF); ``approximate="tanh"`` for the tanh formula."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """y = (1/β)·log(1 + e^(βx)), linear where βx > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"
