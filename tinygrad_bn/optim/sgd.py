"""`SGD`: stochastic gradient descent, p ← p − η·∂L/∂p, with PyTorch's exact options."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent: for every parameter p with a gradient,

        p ← p − η·∂L/∂p

    — for BatchNorm that is γ ← γ − η·∂L/∂γ and β ← β − η·∂L/∂β, like any other weight.

    With the options, exactly as PyTorch (g = ∂L/∂p, or −∂L/∂p when ``maximize``):

        g ← g + λ·p                         weight_decay λ (L2 penalty)
        b ← g                               momentum μ, first step (no dampening)
        b ← μ·b + (1 − τ)·g                 later steps, dampening τ
        g ← g + μ·b  (nesterov)  or  g ← b
        p ← p − η·g

    Parameters whose ``.grad`` is None are skipped (they took no part in the loss).

    Args:
        params: parameters, or a list of parameter-group dicts.
        lr: learning rate η (required).
        momentum, dampening, weight_decay, nesterov, maximize: as above.
    """

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        if not group["momentum"] >= 0.0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update_group(self, group: dict) -> None:
        # The group's options are read once, not once per parameter (see Optimizer).
        lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
        dampening, nesterov, maximize = group["dampening"], group["nesterov"], group["maximize"]
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue  # took no part in the loss
            g = -grad if maximize else grad
            if decay != 0:
                g = g + decay * p.data
            if momentum != 0:
                state = self.state.setdefault(p, {})
                buffer = state.get("momentum_buffer")
                if buffer is None:
                    buffer = state["momentum_buffer"] = np.array(g, dtype=p.dtype)  # a copy
                else:
                    buffer *= momentum
                    buffer += (1 - dampening) * g
                g = g + momentum * buffer if nesterov else buffer
            # In place: the parameter keeps its array; only the product lr·g is a temporary.
            p.data -= lr * g
