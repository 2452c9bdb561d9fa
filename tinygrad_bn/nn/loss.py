"""Loss modules: thin wrappers over the functions in functional.py, with a ``reduction``."""
from __future__ import annotations

from typing import Any, Callable

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["BCEWithLogitsLoss", "BCELoss", "MSELoss", "CrossEntropyLoss"]


class _Loss(Module):
    """A loss module calls its ``function`` (set by each subclass) with its reduction."""

    function: Callable[..., Tensor]

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        F._check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return type(self).function(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits x with 0/1 targets y (same shape):
    ℓ = −[y·log σ(x) + (1 − y)·log(1 − σ(x))], computed stably."""

    function = staticmethod(F.binary_cross_entropy_with_logits)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities p: ℓ = −[y·log p + (1 − y)·log(1 − p)]."""

    function = staticmethod(F.binary_cross_entropy)


class MSELoss(_Loss):
    """Mean squared error ℓ = (x − y)²; input and target must have the same shape."""

    function = staticmethod(F.mse_loss)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of (N, C) logits against int64 class indices (N,)."""

    function = staticmethod(F.cross_entropy)
