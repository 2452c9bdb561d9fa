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

import math

import numpy as np

from .function import Context, Function

__all__ = [
    "unbroadcast", "stable_sigmoid", "stable_log_softmax",
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "MatMul", "Sum", "Max", "Exp", "Log", "Sqrt", "Tanh",
    "Sigmoid", "ReLU", "LogSoftmax", "Reshape", "Permute", "GetItem",
    "PowTensor", "Abs", "LeakyReLU", "GELU", "Softplus", "Clamp", "Where", "Cat", "Pad",
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

    For x ≥ 0 that is 1 / (1 + e⁻ˣ); for x < 0 the same function rearranged, eˣ / (1 + eˣ).
    Both are e^min(x, 0) / (1 + e^(−|x|)), whose exponents are never positive; the numerator
    e^min(x, 0) is 1 where x ≥ 0 and e^(−|x|) where x < 0, i.e. max(e^(−|x|), [x ≥ 0]).
    One formula for both signs: no np.where, so five array operations fewer than computing
    both branches and picking (the values are the same to the last bit).
    """
    z = np.exp(-np.abs(x))                     # e^(−|x|) ≤ 1
    numerator = np.maximum(z, x >= 0)          # 1 where x ≥ 0, eˣ where x < 0
    return numerator / (1 + z)


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


# --- more elementwise ops (activations and friends) -------------------------------------------

class PowTensor(Function):
    """y = aᵇ with both a and b tensors;  ∂L/∂a = g · b · aᵇ⁻¹,  ∂L/∂b = g · y · ln a.

    At a = 0 with b ≥ 0 the exponent's derivative is taken as 0 (y does not change with b
    there), as PyTorch does; for a < 0, ln a is nan, as it is in PyTorch.
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        try:
            y = a ** b
        except ValueError:
            raise _broadcast_error("**", a, b) from None
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        a, b, y = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast(g * b * a ** (b - 1), a.shape)
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.log(a)
            zero_base = (a == 0) & (b >= 0)
            grad_b = unbroadcast(np.where(zero_base, 0, g * y * log_a), b.shape)
        return grad_a, grad_b


class Abs(Function):
    """y = |x|;  ∂L/∂x = g · sign(x)  (sign(0) = 0, PyTorch's choice of subgradient)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (x,) = ctx.saved_tensors
        return (g * np.sign(x),)


class LeakyReLU(Function):
    """y = x for x > 0, else α·x;  ∂L/∂x = g for x > 0, else α·g  (α = ``negative_slope``)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, negative_slope: float) -> np.ndarray:
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.slope = negative_slope
        return np.where(positive, x, x * negative_slope)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (positive,) = ctx.saved_tensors
        return (np.where(positive, g, g * ctx.slope),)


# erf, elementwise: numpy has no erf, and the standard library's is exact to the last bit.
_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


class GELU(Function):
    """Gaussian error linear unit, y = x·Φ(x), with Φ the standard normal CDF.

    Exact (``approximate="none"``):
        Φ(x) = ½(1 + erf(x/√2));   ∂L/∂x = g · (Φ(x) + x·φ(x)),  φ(x) = e^(−x²/2)/√(2π).
    Tanh approximation (``approximate="tanh"``), with u = √(2/π)(x + 0.044715x³), t = tanh u:
        y = ½x(1 + t);   ∂L/∂x = g · (½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, approximate: str) -> np.ndarray:
        ctx.approximate = approximate
        if approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x))
            ctx.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        cdf = 0.5 * (1 + _erf(x / math.sqrt(2.0)).astype(x.dtype))
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        x, saved = ctx.saved_tensors
        if ctx.approximate == "tanh":
            t = saved
            du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
            return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du),)
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return (g * (saved + x * pdf),)


class Softplus(Function):
    """y = (1/β)·log(1 + e^(βx)), and y = x where βx > ``threshold`` (PyTorch's linear tail);
    ∂L/∂x = g · σ(βx), and g on the linear tail.

    ``np.logaddexp(0, βx)`` = log(e⁰ + e^(βx)) never overflows.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, beta: float, threshold: float) -> np.ndarray:
        bx = x * beta
        linear = bx > threshold
        ctx.save_for_backward(bx, linear)
        return np.where(linear, x, np.logaddexp(0, bx) / beta)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        bx, linear = ctx.saved_tensors
        return (np.where(linear, g, g * stable_sigmoid(bx)),)


class Clamp(Function):
    """y = min(max(x, lo), hi);  ∂L/∂x = g where lo ≤ x ≤ hi, else 0 (bounds included, as in
    PyTorch). Either bound may be None (no bound on that side)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, min: float | None,
                max: float | None) -> np.ndarray:
        inside = np.ones(x.shape, dtype=bool)
        if min is not None:
            inside &= x >= min
        if max is not None:
            inside &= x <= max
        ctx.save_for_backward(inside)
        return np.clip(x, min, max).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        (inside,) = ctx.saved_tensors
        return (g * inside,)


class Where(Function):
    """y = a where ``condition``, else b;  ∂L/∂a = g where condition, ∂L/∂b = g elsewhere
    (each summed over its broadcast axes). The condition is an option: it has no gradient."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray, *,
                condition: np.ndarray) -> np.ndarray:
        ctx.shapes, ctx.condition = (a.shape, b.shape), condition
        try:
            return np.where(condition, a, b)
        except ValueError:
            raise ValueError(f"where: cannot broadcast condition {condition.shape} with shapes "
                             f"{a.shape} and {b.shape}") from None

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        a_shape, b_shape = ctx.shapes
        zero = np.zeros((), dtype=g.dtype)
        grad_a = unbroadcast(np.where(ctx.condition, g, zero), a_shape)
        grad_b = unbroadcast(np.where(ctx.condition, zero, g), b_shape)
        return grad_a, grad_b


# --- joining and padding ------------------------------------------------------------------------

class Cat(Function):
    """y = the inputs joined along ``axis``;  ∂L/∂xₖ = the slice of g where xₖ landed."""

    @staticmethod
    def forward(ctx: Context, *arrays: np.ndarray, axis: int) -> np.ndarray:
        ctx.axis = axis
        ctx.ends = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        return tuple(np.split(g, ctx.ends, axis=ctx.axis))


class Pad(Function):
    """y = x surrounded by a constant: ``widths`` is one (before, after) pair per axis;
    ∂L/∂x = g with the padding cut off again (the padded values do not depend on x)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, widths: tuple, value: float) -> np.ndarray:
        ctx.inner = tuple(slice(before, before + n) for (before, _), n in zip(widths, x.shape))
        return np.pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        return (g[ctx.inner],)
