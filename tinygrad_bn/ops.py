"""The primitive tensor operations, each a `Function` with its forward and backward together.

Every backward receives g = ∂L/∂out (same shape as the output) and returns ∂L/∂input for each
input. Each docstring gives the forward formula and the backward rule. Composite operations
(mean, var, softmax, losses …) are written in tensor.py and nn/ as combinations of these and
need no backward of their own.

Broadcasting: when numpy stretched an input to the output's shape, the input influenced many
output elements, so its gradient is the *sum* over the stretched axes. `unbroadcast` does that
for every binary op: the adjoint of broadcasting is summation.

Read next: tensor.py, which wraps these ops as methods and runs backward.
"""
from __future__ import annotations

import numpy as np

from .function import Context, Function

__all__ = [
    "unbroadcast", "stable_sigmoid", "stable_log_softmax",
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "MatMul", "Sum", "Max", "Exp", "Log", "Sqrt", "Tanh",
    "Sigmoid", "ReLU", "LogSoftmax", "Reshape", "Permute", "GetItem",
]


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` down to ``shape``, undoing numpy broadcasting.

    Broadcasting adds leading axes and stretches axes of length 1; both are undone by summing
    over them: e.g. a bias of shape (4,) added to a batch (32, 4) gets Σ over the 32 rows.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    stretched = tuple(i + extra for i, n in enumerate(shape)
                      if n == 1 and grad.shape[i + extra] != 1)
    summed = grad.sum(axis=tuple(range(extra)) + stretched, keepdims=True)
    return summed.reshape(shape)


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e⁻ˣ), written with e^(−|x|) ≤ 1 so that it never overflows.

    For x < 0 it uses the same function rearranged: σ(x) = eˣ / (1 + eˣ).
    """
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def stable_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """log softmax(x) = x − log Σⱼ eˣʲ along ``axis``, computed as (x − m) − log Σ e^(x − m) with
    m = max x, so that large logits do not overflow."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _broadcast_error(symbol: str, a: np.ndarray, b: np.ndarray) -> ValueError:
    return ValueError(f"cannot broadcast shapes {a.shape} and {b.shape} for '{symbol}'")


# --- elementwise binary ops -------------------------------------------------------------------

class Add(Function):
    """y = a + b;  ∂L/∂a = g,  ∂L/∂b = g  (each summed over its broadcast axes)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.shapes = (a.shape, b.shape)
        try:
            return a + b
        except ValueError:
            raise _broadcast_error("+", a, b) from None

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        a_shape, b_shape = ctx.shapes
        return unbroadcast(g, a_shape), unbroadcast(g, b_shape)


class Sub(Function):
    """y = a − b;  ∂L/∂a = g,  ∂L/∂b = −g."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.shapes = (a.shape, b.shape)
        try:
            return a - b
        except ValueError:
            raise _broadcast_error("-", a, b) from None

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        a_shape, b_shape = ctx.shapes
        grad_b = unbroadcast(-g, b_shape) if ctx.needs_input_grad[1] else None
        return unbroadcast(g, a_shape), grad_b


class Mul(Function):
    """y = a · b;  ∂L/∂a = g · b,  ∂L/∂b = g · a."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        try:
            return a * b
        except ValueError:
            raise _broadcast_error("*", a, b) from None

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        grad_a = unbroadcast(g * b, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(g * a, b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """y = a / b;  ∂L/∂a = g / b,  ∂L/∂b = −g · a / b²."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        try:
            return a / b
        except ValueError:
            raise _broadcast_error("/", a, b) from None

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        grad_a = unbroadcast(g / b, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(-g * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


# --- elementwise unary ops --------------------------------------------------------------------

class Neg(Function):
    """y = −x;  ∂L/∂x = −g."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        return -x

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        return (-g,)


class Pow(Function):
    """y = xᵏ for a number k;  ∂L/∂x = g · k · xᵏ⁻¹."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, exponent: float) -> np.ndarray:
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        return x ** exponent

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (x,) = ctx.saved_tensors
        k = ctx.exponent
        return (g * k * x ** (k - 1),)


class Exp(Function):
    """y = eˣ;  ∂L/∂x = g · y."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (y,) = ctx.saved_tensors
        return (g * y,)


class Log(Function):
    """y = ln x;  ∂L/∂x = g / x.  (ln of a negative is nan with a numpy warning, as in numpy.)"""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (x,) = ctx.saved_tensors
        return (g / x,)


class Sqrt(Function):
    """y = √x;  ∂L/∂x = g / (2y)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (y,) = ctx.saved_tensors
        return (g / (2 * y),)


class Tanh(Function):
    """y = tanh x;  ∂L/∂x = g · (1 − y²)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (y,) = ctx.saved_tensors
        return (g * (1 - y * y),)


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e⁻ˣ);  ∂L/∂x = g · y · (1 − y)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        y = stable_sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (y,) = ctx.saved_tensors
        return (g * y * (1 - y),)


class ReLU(Function):
    """y = max(0, x);  ∂L/∂x = g where x > 0, else 0."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        y = np.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (y,) = ctx.saved_tensors
        return (g * (y > 0),)


# --- matrix product ---------------------------------------------------------------------------

class MatMul(Function):
    """Y = A @ B (2-D or batched);  ∂L/∂A = G @ Bᵀ,  ∂L/∂B = Aᵀ @ G.

    Batched inputs broadcast over their leading axes like any binary op, so those axes are
    summed back with `unbroadcast`.
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul: MatMul needs operands of 2 or more dimensions, got shapes "
                             f"{a.shape} and {b.shape} (Tensor.matmul handles 1-D ones)")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                             f"{a.shape[-1]} columns against {b.shape[-2]} rows")
        try:
            return a @ b
        except ValueError:
            raise ValueError(f"matmul: cannot broadcast the batch axes of shapes {a.shape} and "
                             f"{b.shape}") from None

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        grad_a = unbroadcast(g @ b.swapaxes(-1, -2), a.shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(a.swapaxes(-1, -2) @ g, b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


# --- reductions -------------------------------------------------------------------------------

class Sum(Function):
    """y = Σ x over ``axis``;  ∂L/∂x = g copied back along the summed axes."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, axis: tuple | None, keepdims: bool) -> np.ndarray:
        ctx.x_shape = x.shape
        ctx.kept_shape = np.sum(x, axis=axis, keepdims=True).shape if not keepdims else None
        return np.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        if ctx.kept_shape is not None:
            g = g.reshape(ctx.kept_shape)  # put the reduced axes back as length 1
        return (np.broadcast_to(g, ctx.x_shape),)


class Max(Function):
    """y = max x over ``axis``;  ∂L/∂x = g at the maximum, 0 elsewhere.

    Ties share the gradient equally (like ``torch.amax``), so the gradient stays a fair
    subgradient and finite differences agree with it.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, axis: tuple | None, keepdims: bool) -> np.ndarray:
        y = np.max(x, axis=axis, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.axis = axis
        return y if keepdims else np.max(x, axis=axis, keepdims=False)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        x, y = ctx.saved_tensors
        # The mask in x's dtype: a bool mask divided by its count would be float64.
        is_max = (x == y).astype(x.dtype)
        share = is_max / is_max.sum(axis=ctx.axis, keepdims=True)
        return (g.reshape(y.shape) * share,)


class LogSoftmax(Function):
    """y = x − log Σⱼ eˣʲ along ``axis``;  ∂L/∂x = g − softmax(x) · Σⱼ gⱼ.

    Computed by `stable_log_softmax`, so large logits do not overflow.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, axis: int) -> np.ndarray:
        y = stable_log_softmax(x, axis)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (y,) = ctx.saved_tensors
        return (g - np.exp(y) * np.sum(g, axis=ctx.axis, keepdims=True),)


# --- shape ops: they move numbers around, so backward moves the gradient back ----------------

class Reshape(Function):
    """y = x viewed with a new shape;  ∂L/∂x = g reshaped to x's shape."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, shape: tuple) -> np.ndarray:
        ctx.x_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                             f"into shape {shape}") from None

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        return (g.reshape(ctx.x_shape),)


class Permute(Function):
    """y = x with its axes reordered by ``dims``;  ∂L/∂x = g with the inverse order."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, dims: tuple) -> np.ndarray:
        ctx.inverse = tuple(np.argsort(dims))
        return np.transpose(x, dims)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        return (np.transpose(g, ctx.inverse),)


class GetItem(Function):
    """y = x[index];  ∂L/∂x = zeros with g added at the indexed places.

    With integer-array indices the same element may be picked twice; ``np.add.at`` then adds
    both gradients instead of keeping only the last, which plain assignment would do.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, index) -> np.ndarray:
        ctx.x_shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        grad = np.zeros_like(g, shape=ctx.x_shape)  # g's type (and, under jit/, traced)
        np.add.at(grad, ctx.index, g)
        return (grad,)
