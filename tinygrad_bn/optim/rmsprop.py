"""`RMSprop`: divide each step by a running root-mean-square of recent gradients."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, with PyTorch's options and order of operations (g = ∂L/∂p):

        g ← g + λ·p                               weight_decay λ
        s ← α·s + (1 − α)·g²                      running mean of g²
        ḡ ← α·ḡ + (1 − α)·g                       centered only: running mean of g
        d = √(s − ḡ²) + ε   (centered)   or   √s + ε
        b ← μ·b + g/d,  p ← p − η·b               momentum μ > 0
        p ← p − η·g/d                             otherwise

    Args:
        params: parameters or groups. lr: η (default 0.01). alpha: α, the smoothing constant.
        eps: ε. weight_decay: λ. momentum: μ. centered: subtract the squared mean gradient
        (an estimate of the variance rather than the raw second moment).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        if not group["eps"] >= 0.0:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        if not group["momentum"] >= 0.0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if not group["alpha"] >= 0.0:
            raise ValueError(f"Invalid alpha value: {group['alpha']}")

    def _update(self, p: Any, grad: np.ndarray, group: dict) -> None:
        alpha, momentum = group["alpha"], group["momentum"]
        g = -grad if group["maximize"] else grad
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.data
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {"step": np.zeros((), np.int64),
                                     "square_avg": np.zeros_like(p.data)}
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha
            grad_avg += (1 - alpha) * g
            denominator = np.sqrt(square_avg - grad_avg * grad_avg) + group["eps"]
        else:
            denominator = np.sqrt(square_avg) + group["eps"]
        if momentum > 0:
            buffer = state["momentum_buffer"]
            buffer *= momentum
            buffer += g / denominator
            p.data -= group["lr"] * buffer
        else:
            p.data -= group["lr"] * g / denominator
