"""Element-wise layers: activations, Dropout and Identity (no parameters of their own)."""
from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh", "Dropout", "Identity"]


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
