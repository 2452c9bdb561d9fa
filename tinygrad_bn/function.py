"""`Function`: one differentiable operation on arrays, forward and backward side by side.

This is the unit of the tensor engine, as ``torch.autograd.Function`` is PyTorch's. A subclass
writes two static methods on plain numpy arrays:

* ``forward(ctx, *arrays, **options)`` computes the output and saves on ``ctx`` whatever the
  backward pass will need;
* ``backward(ctx, grad_output)`` receives ∂L/∂output and returns ∂L/∂input for each input
  array, in order (``None`` where an input needs no gradient).

``MyOp.apply(*tensors, **options)`` runs the forward and, when gradients are being tracked,
records the new node in the graph: its ``parents`` are the input tensors, its ``op`` the
Function's name and its context the saved arrays. Every tensor op of the library is a Function
(see ops.py), so reading one op teaches them all.

Read next: ops.py (the primitive ops), then tensor.py (the Tensor they build).
"""
from __future__ import annotations

import contextlib
import math
import threading
from typing import Any, Iterator

import numpy as np

__all__ = ["Context", "Function", "no_grad", "is_grad_enabled"]


class _GradMode(threading.local):
    # Per thread, as in PyTorch: a no_grad in one thread must not stop graph building in
    # another. Each thread starts from the class attribute, True; setting it is thread-local.
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True unless inside a ``no_grad()`` block (of this thread: grad mode is per thread)."""
    return _grad_mode.enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager: operations inside record no graph (evaluation, optimizer updates).

    It applies to the calling thread only, as in PyTorch; other threads keep building graphs.

    Example:
        >>> with no_grad():
        ...     prediction = model(x)      # no graph is built, nothing to backprop
    """
    previous = _grad_mode.enabled
    _grad_mode.enabled = False
    try:
        yield
    finally:
        _grad_mode.enabled = previous


class Context:
    """What a Function's forward leaves for its backward.

    ``save_for_backward(*arrays)`` stores arrays, read back as ``saved_tensors`` (the arrays
    themselves, not copies: `Function.apply` notes the tick of the saving in ``saved_at`` so
    that backward can refuse arrays changed in place since);
    ``needs_input_grad`` tells forward and backward which inputs want a gradient, so they may
    skip work; ``function`` is the Function class itself (how backward finds its rule);
    any other attribute (an axis, a shape) can be set freely.
    """

    saved_at: float = math.inf  # set by Function.apply on recorded nodes that save arrays

    def __init__(self, function: type | None = None, needs_input_grad: tuple = ()) -> None:
        self.function = function
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple = ()

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved_tensors = arrays


class Function:
    """Base class of differentiable operations; see the module docstring.

    Example (a custom op):
        >>> class Cube(Function):
        ...     @staticmethod
        ...     def forward(ctx, x):          # y = x³
        ...         ctx.save_for_backward(x)
        ...         return x ** 3
        ...     @staticmethod
        ...     def backward(ctx, grad_output):   # ∂L/∂x = ∂L/∂y · 3x²
        ...         (x,) = ctx.saved_tensors
        ...         return (grad_output * 3 * x ** 2,)
        >>> y = Cube.apply(Tensor([2.0], requires_grad=True))
    """

    @staticmethod
    def forward(ctx: Context, *arrays: np.ndarray, **options: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> "Tensor":
        """Run ``forward`` on the inputs' arrays and return the result as a graph node.

        This runs once per operation of every step, so it is kept lean: one plain loop over
        the inputs (three comprehensions cost more on Python 3.11, a function call apiece), and
        one Tensor constructor call without checks.
        """
        arrays, needs_input_grad = [], []
        for x in inputs:
            if not isinstance(x, Tensor):  # a number or an array: wrap them all, then start over
                inputs = tuple([t if isinstance(t, Tensor) else Tensor(t) for t in inputs])
                return cls.apply(*inputs, **options)
            arrays.append(x._data)
            needs_input_grad.append(x.requires_grad)
        ctx = Context(cls, tuple(needs_input_grad))
        data = cls.forward(ctx, *arrays, **options)
        if not isinstance(data, np.ndarray):  # (isinstance: jit's traced arrays pass as they are)
            data = np.asarray(data)  # numpy turns 0-d results into scalars; keep arrays
        if not (True in needs_input_grad and _grad_mode.enabled):  # (`in`: cheaper than any())
            return Tensor._make(data, False)
        # The new node: its parents are the inputs, and backward finds its rule through the
        # context (node → ctx → ctx.function.backward).
        out = Tensor._make(data, True, ctx, inputs, cls.__name__)
        if ctx.saved_tensors:
            # When the arrays were saved: backward refuses them if an input or the output
            # changed in place after this tick (tensor.py, `data`). Marking the tensors
            # `_SAVED` makes `.data` keep a copy when it next hands their arrays out.
            ctx.saved_at = next(_ticks)
            for t in inputs:
                if type(t._snapshot) is tuple:  # handed out since an earlier saving: settle
                    _settle_snapshot(t)
                t._snapshot = _SAVED
            out._snapshot = _SAVED
        return out


# Imported last on purpose: tensor.py builds on Function, and Function.apply builds Tensors.
from .tensor import _SAVED, Tensor, _settle_snapshot, _ticks  # noqa: E402
