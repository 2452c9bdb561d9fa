"""Stateless neural-network functions (PyTorch's ``torch.nn.functional``), with their math.

The modules in this package hold parameters and call these. Three of them are *fused* ops —
one `Function` with a hand-derived backward instead of a chain of primitives — because they
sit on every training step: `linear`, `batch_norm` (with ``fused=True``) and the binary
cross-entropy losses. Each one's backward is checked against the composed version and against
finite differences in the tests.

Read next: batchnorm.py, which explains the batch-norm math in full.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..function import Context, Function, no_grad
from ..ops import stable_sigmoid
from ..random import generator
from ..tensor import Tensor

__all__ = [
    "linear", "batch_norm", "relu", "sigmoid", "tanh", "dropout",
    "binary_cross_entropy_with_logits", "binary_cross_entropy", "mse_loss", "cross_entropy",
    "LinearFunction", "BatchNormFunction", "BCEWithLogitsFunction", "BCEFunction",
]

REDUCTIONS = ("mean", "sum", "none")


# --- linear -------------------------------------------------------------------------------------

class LinearFunction(Function):
    """y = x Wᵀ + b over the last axis of x (any leading axes).

    With x flattened to rows X (n, in) and g = ∂L/∂y as rows G (n, out):
    ∂L/∂X = G W,   ∂L/∂W = Gᵀ X,   ∂L/∂b = Σₙ G.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray, *bias: np.ndarray) -> np.ndarray:
        rows = x.reshape(-1, x.shape[-1])
        out = rows @ weight.T
        if bias:
            out += bias[0]  # in place: `out` is a fresh array
        ctx.save_for_backward(rows, weight)
        ctx.x_shape = x.shape
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        rows, weight = ctx.saved_tensors
        g_rows = g.reshape(-1, weight.shape[0])
        need = ctx.needs_input_grad
        grad_x = (g_rows @ weight).reshape(ctx.x_shape) if need[0] else None
        grad_w = g_rows.T @ rows if need[1] else None
        if len(need) == 2:
            return grad_x, grad_w
        return grad_x, grad_w, (g_rows.sum(axis=0) if need[2] else None)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b, with weight of shape (out_features, in_features)."""
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {input.shape} does not fit a weight of shape "
                         f"{weight.shape} (expected the last axis of the input to be "
                         f"{weight.shape[1]})")
    if bias is None:
        return LinearFunction.apply(input, weight)
    return LinearFunction.apply(input, weight, bias)


# --- batch normalisation ------------------------------------------------------------------------

class BatchNormFunction(Function):
    """Batch normalisation with batch statistics, as one op with its closed-form backward.

    Forward, per channel, with μ and σ² the batch mean and biased batch variance of x:
        x̂ = (x − μ) / √(σ² + ε),      y = γ·x̂ + β.

    Backward, with g = ∂L/∂y, n values per channel and istd = 1/√(σ² + ε):
        ∂L/∂β = Σ g,    ∂L/∂γ = Σ g·x̂,
        ∂L/∂x = γ·istd·(g − mean(g) − x̂·mean(g·x̂))
    (the derivation is in docs/batchnorm.md). μ and σ² are passed in, computed once by
    `batch_norm`, which also feeds them to the running averages; they must be x's own batch
    statistics for this backward to hold.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray, bias: np.ndarray, *,
                mean: np.ndarray, var: np.ndarray, eps: float, axes: tuple) -> np.ndarray:
        istd = 1.0 / np.sqrt(var + eps)
        x_hat = (x - mean) * istd
        shape = mean.shape  # (1, C) or (1, C, 1): broadcasts against x
        ctx.save_for_backward(x_hat, istd, weight.reshape(shape))
        ctx.axes = axes
        return x_hat * weight.reshape(shape) + bias.reshape(shape)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        x_hat, istd, gamma = ctx.saved_tensors
        axes = ctx.axes
        n = x_hat.size // gamma.size
        grad_beta = g.sum(axis=axes, keepdims=True)
        grad_gamma = (g * x_hat).sum(axis=axes, keepdims=True)
        grad_x = None
        if ctx.needs_input_grad[0]:
            # mean(g) = Σg/n and mean(g·x̂) = Σ g·x̂ / n: reuse the two sums above.
            grad_x = (gamma * istd) * (g - grad_beta / n - x_hat * (grad_gamma / n))
        return grad_x, grad_gamma.reshape(-1), grad_beta.reshape(-1)


def _channel_axes(x: Tensor) -> tuple:
    """The axes batch norm averages over: the batch axis, and the length axis of (N, C, L)."""
    return (0,) if x.ndim == 2 else (0, 2)


def _normalize_composed(x: Tensor, weight: Tensor | None, bias: Tensor | None,
                        mean: Tensor, var: Tensor, eps: float, shape: tuple) -> Tensor:
    """γ·(x − μ)/√(σ² + ε) + β from primitive ops, so a drawn graph shows every step."""
    x_hat = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        x_hat = x_hat * weight.reshape(shape)
    if bias is not None:
        x_hat = x_hat + bias.reshape(shape)
    return x_hat


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, *, fused: bool = True) -> Tensor:
    """Normalise each channel of an (N, C) or (N, C, L) input, then scale by γ and shift by β.

    Training (``training=True``): normalise with the batch mean and *biased* batch variance and,
    if running buffers are given, update them in place with the batch mean and the *unbiased*
    variance: ``running = (1 − momentum)·running + momentum·batch`` (PyTorch's convention;
    this momentum is not the optimizer's). Evaluation: normalise with the running buffers.

    ``fused=True`` runs one op with the closed-form backward (`BatchNormFunction`);
    ``fused=False`` composes primitive ops (mean → centre → variance → normalise → ·γ → +β)
    so that the graph shows each step. Both give the same numbers.
    """
    if input.ndim not in (2, 3):
        raise ValueError(f"batch_norm expects a 2-D (N, C) or 3-D (N, C, L) input, got shape "
                         f"{input.shape}")
    axes = _channel_axes(input)
    channels = input.shape[1]
    shape = (1, channels) if input.ndim == 2 else (1, channels, 1)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in evaluation mode needs running_mean and running_var")
        mean = Tensor._make(running_mean.data.reshape(shape), False)
        var = Tensor._make(running_var.data.reshape(shape), False)
        return _normalize_composed(input, weight, bias, mean, var, eps, shape)

    n = input.data.size // channels
    if n <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"of shape {input.shape}")
    if fused:
        mean = input.data.mean(axis=axes, keepdims=True)
        centred = input.data - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
        gamma = weight if weight is not None else Tensor._make(np.ones(channels, mean.dtype), False)
        beta = bias if bias is not None else Tensor._make(np.zeros(channels, mean.dtype), False)
        out = BatchNormFunction.apply(input, gamma, beta, mean=mean, var=var, eps=eps, axes=axes)
    else:
        mean_t = input.mean(axes, keepdims=True)                  # μ_B
        centred_t = input - mean_t                                # x − μ_B
        var_t = (centred_t * centred_t).mean(axes, keepdims=True)  # σ²_B, biased
        out = _normalize_composed(input, weight, bias, mean_t, var_t, eps, shape)
        mean, var = mean_t.data, var_t.data

    if running_mean is not None and running_var is not None:
        with no_grad():
            unbiased = var.reshape(-1) * (n / (n - 1))  # the running variance is unbiased
            running_mean.data *= 1.0 - momentum
            running_mean.data += momentum * mean.reshape(-1)
            running_var.data *= 1.0 - momentum
            running_var.data += momentum * unbiased
    return out


# --- activations and dropout --------------------------------------------------------------------

def relu(input: Tensor) -> Tensor:
    """max(0, x), elementwise."""
    return input.relu()


def sigmoid(input: Tensor) -> Tensor:
    """σ(x) = 1 / (1 + e⁻ˣ), elementwise."""
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    """tanh x, elementwise."""
    return input.tanh()


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1 − p) (training only).

    The scaling keeps the expected value of each element unchanged, so nothing needs to
    change at evaluation time, when dropout does nothing.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = generator().random(input.shape) >= p
    return input * Tensor._make((keep / (1.0 - p)).astype(input.dtype), False)


# --- losses -------------------------------------------------------------------------------------

def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _as_target(target: Any, input: Tensor) -> Tensor:
    """Targets as tensors of the input's float type, with exactly the input's shape."""
    if not isinstance(target, Tensor):
        target = Tensor._make(np.asarray(target, dtype=input.dtype), False)
    if target.shape != input.shape:
        raise ValueError(f"target shape {target.shape} does not match input shape "
                         f"{input.shape}; reshape one of them (an (N, 1) output against an "
                         f"(N,) target is a classic silent bug, so it is refused)")
    return target


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _reduce_array(loss: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _reduction_scale(g: np.ndarray, size: int, reduction: str) -> Any:
    """∂L/∂(elementwise loss): g/n for a mean, g for a sum or no reduction."""
    return g / size if reduction == "mean" else g


class BCEWithLogitsFunction(Function):
    """ℓ = −[y·log σ(x) + (1 − y)·log(1 − σ(x))], computed from the logit x.

    Stable form: ℓ = max(x, 0) − x·y + log(1 + e^(−|x|)), finite even at x = ±1000.
    Backward: ∂ℓ/∂x = σ(x) − y,  ∂ℓ/∂y = −x.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, y: np.ndarray, *, reduction: str) -> np.ndarray:
        ctx.save_for_backward(x, y)
        ctx.reduction = reduction
        loss = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
        return _reduce_array(loss, reduction)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        x, y = ctx.saved_tensors
        scale = _reduction_scale(g, x.size, ctx.reduction)
        grad_x = (stable_sigmoid(x) - y) * scale if ctx.needs_input_grad[0] else None
        grad_y = -x * scale if ctx.needs_input_grad[1] else None
        return grad_x, grad_y


def binary_cross_entropy_with_logits(input: Tensor, target: Any,
                                     reduction: str = "mean") -> Tensor:
    """Binary cross-entropy on logits (sigmoid and log-loss fused, numerically stable)."""
    _check_reduction(reduction)
    return BCEWithLogitsFunction.apply(input, _as_target(target, input), reduction=reduction)


class BCEFunction(Function):
    """ℓ = −[y·log p + (1 − y)·log(1 − p)] on probabilities p ∈ [0, 1].

    As in PyTorch, each log is clamped at −100 so p = 0 or 1 gives a finite loss, and the
    backward ∂ℓ/∂p = (p − y) / (p(1 − p)) divides by at least 1e-12.  ∂ℓ/∂y = log(1−p) − log p.
    """

    @staticmethod
    def forward(ctx: Context, p: np.ndarray, y: np.ndarray, *, reduction: str) -> np.ndarray:
        with np.errstate(divide="ignore"):  # log 0 = −inf, clamped just below
            log_p = np.maximum(np.log(p), -100.0)
            log_not_p = np.maximum(np.log1p(-p), -100.0)
        ctx.save_for_backward(p, y, log_p, log_not_p)
        ctx.reduction = reduction
        return _reduce_array(-(y * log_p + (1 - y) * log_not_p), reduction)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        p, y, log_p, log_not_p = ctx.saved_tensors
        scale = _reduction_scale(g, p.size, ctx.reduction)
        grad_p = None
        if ctx.needs_input_grad[0]:
            grad_p = (p - y) / np.maximum(p * (1 - p), 1e-12) * scale
        grad_y = (log_not_p - log_p) * scale if ctx.needs_input_grad[1] else None
        return grad_p, grad_y


def binary_cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy on probabilities (use the with-logits form for stability)."""
    _check_reduction(reduction)
    target = _as_target(target, input)
    if np.any((input.data < 0) | (input.data > 1)) or np.any(np.isnan(input.data)):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1 "
                         "(pass logits to binary_cross_entropy_with_logits instead)")
    return BCEFunction.apply(input, target, reduction=reduction)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error: ℓ = (x − y)²  (composite: its gradient 2(x − y) comes from the ops)."""
    _check_reduction(reduction)
    diff = input - _as_target(target, input)
    return _reduce(diff * diff, reduction)


def cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of (N, C) logits against int64 class indices (N,): ℓₙ = −log softmax(xₙ)[yₙ].

    Composite: log_softmax, then picking each row's target entry (integer indexing).
    """
    _check_reduction(reduction)
    classes = target.data if isinstance(target, Tensor) else np.asarray(target)
    if input.ndim != 2:
        raise ValueError(f"cross_entropy expects (N, C) logits, got shape {input.shape}")
    if classes.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy expects integer class indices as target, got dtype "
                         f"{classes.dtype}")
    if classes.shape != (input.shape[0],):
        raise ValueError(f"cross_entropy: target shape {classes.shape} does not match input "
                         f"shape {input.shape} (expected ({input.shape[0]},))")
    if classes.size and (classes.min() < 0 or classes.max() >= input.shape[1]):
        raise ValueError(f"cross_entropy: target class indices must be in [0, {input.shape[1]}), "
                         f"got values from {classes.min()} to {classes.max()}")
    picked = input.log_softmax(axis=1)[np.arange(input.shape[0]), classes]
    return _reduce(-picked, reduction)
