"""`Adam` and `AdamW`: adaptive moment estimation, with PyTorch's semantics (L2 or decoupled
weight decay, bias correction, AMSGrad)."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam: per-parameter step sizes from running averages of g and g².

    For each parameter p with gradient g = ∂L/∂p, at step t (as ``torch.optim.Adam``):

        g ← g + λ·p                           weight_decay λ (L2, added to the gradient)
        m ← β₁·m + (1 − β₁)·g                 first moment
        v ← β₂·v + (1 − β₂)·g²                second moment
        v_max ← max(v_max, v)                 amsgrad only: v̂ below uses v_max
        m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)  bias correction (m and v start at 0)
        p ← p − η·m̂ / (√v̂ + ε)

    With ``decoupled_weight_decay`` (AdamW) the decay is not added to g but applied to the
    weights directly, p ← p·(1 − η·λ), before the update — so it is not rescaled by √v̂.

    Args:
        params: parameters or parameter-group dicts. lr: η. betas: (β₁, β₂). eps: ε.
        weight_decay: λ. amsgrad: keep the running maximum of v (a never-growing step size).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        if not group["eps"] >= 0.0:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        for i, beta in enumerate(group["betas"]):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")

    def _update(self, p: Any, grad: np.ndarray, group: dict) -> None:
        beta1, beta2 = group["betas"]
        lr, decay = group["lr"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        if decay != 0:
            if group["decoupled_weight_decay"]:
                p.data *= 1 - lr * decay
            else:
                g = g + decay * p.data
        state = self.state.get(p)
        if state is None:
            # The step count is a 0-d array, not an int, so that the bias corrections below
            # are numpy calls a compiled step (jit/) records and replays.
            state = self.state[p] = {"step": np.zeros((), np.int64),
                                     "exp_avg": np.zeros_like(p.data),
                                     "exp_avg_sq": np.zeros_like(p.data)}
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        t += 1  # in place: the state holds this very array
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        # Float64 like Python numbers, then p's type: what a weak Python scalar becomes.
        step_size = (lr / (1 - beta1 ** t)).astype(p.data.dtype)
        bias_correction2 = np.sqrt(1 - beta2 ** t).astype(p.data.dtype)
        denominator = np.sqrt(v) / bias_correction2 + group["eps"]
        p.data -= step_size * m / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p ← p·(1 − η·λ), then Adam's
    update without λ in the gradient. Default weight_decay 0.01, as in PyTorch."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
