"""Gradient checking: compare backward with central finite differences, in float64.

For a function f and a small step ε, the derivative of output element j with respect to input
element i is approximately

    ∂fⱼ/∂xᵢ ≈ (fⱼ(x + ε·eᵢ) − fⱼ(x − ε·eᵢ)) / 2ε        (error O(ε²))

`gradcheck` builds this whole Jacobian numerically and compares it, entry by entry, with the one
backward computes (one backward pass per output element, seeded with a one-hot gradient).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .tensor import Tensor

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Raised by `gradcheck` when backward and finite differences disagree."""


def _numerical_jacobian(fn: Callable, inputs: list, k: int, n_out: int, eps: float) -> np.ndarray:
    """Central-difference Jacobian of fn's flattened output with respect to inputs[k]."""
    x = inputs[k].data
    flat = x.reshape(-1)  # a view: writing into it perturbs the input in place
    jacobian = np.zeros((n_out, flat.size))
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        plus = np.array(fn(*inputs).data, dtype=np.float64).reshape(-1)  # a copy
        flat[i] = original - eps
        minus = np.array(fn(*inputs).data, dtype=np.float64).reshape(-1)
        flat[i] = original
        jacobian[:, i] = (plus - minus) / (2 * eps)
    return jacobian


def _analytical_jacobian(fn: Callable, inputs: list, checked: list, out_shape: tuple) -> list:
    """One backward pass per output element gives one row of each input's Jacobian."""
    n_out = int(np.prod(out_shape))
    jacobians = [np.zeros((n_out, inputs[k].data.size)) for k in checked]
    for j in range(n_out):
        for k in checked:
            inputs[k].grad = None
        out = fn(*inputs)
        if not out.requires_grad:
            continue  # the output does not depend on any input: the Jacobian is zero
        seed = np.zeros(out_shape)
        seed.reshape(-1)[j] = 1.0
        out.backward(seed)
        for row, k in zip(jacobians, checked):
            if inputs[k].grad is not None:
                row[j] = inputs[k].grad.reshape(-1)
    return jacobians


def gradcheck(fn: Callable[..., Tensor], *inputs: Tensor, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3) -> bool:
    """Check backward against finite differences for every input that requires grad.

    Args:
        fn: takes the inputs (Tensors) and returns a Tensor of any shape.
        inputs: the points to check at; those with ``requires_grad=True`` are checked (all
            floating inputs when none requires grad). They are copied to float64 and left
            untouched, gradients included.
        eps: the finite-difference step. atol, rtol: tolerances, |a − n| ≤ atol + rtol·|n|.

    Returns:
        True; a mismatch raises `GradcheckError` naming the input, the element (as an index
        into that input and into the output), the expected and the received derivative.
    """
    if not inputs or not all(isinstance(x, Tensor) for x in inputs):
        raise TypeError("gradcheck(fn, *inputs) needs one or more Tensor inputs")
    checked = [k for k, x in enumerate(inputs) if x.requires_grad]
    if not checked:
        checked = [k for k, x in enumerate(inputs) if x.dtype.kind == "f"]
    if not checked:
        raise ValueError("gradcheck: no floating-point input to check")
    copies = [Tensor(x.data.astype(np.float64) if x.dtype.kind == "f" else x.data,
                     requires_grad=k in checked) for k, x in enumerate(inputs)]

    out_shape = fn(*copies).shape
    n_out = int(np.prod(out_shape))
    analytical = _analytical_jacobian(fn, copies, checked, out_shape)
    for k, received in zip(checked, analytical):
        expected = _numerical_jacobian(fn, copies, k, n_out, eps)
        bad = ~(np.abs(received - expected) <= atol + rtol * np.abs(expected))
        if bad.any():
            j, i = (int(v) for v in np.argwhere(bad)[0])
            element = np.unravel_index(i, inputs[k].shape)
            out_element = np.unravel_index(j, out_shape)
            raise GradcheckError(
                f"gradient of input {k} (shape {inputs[k].shape}) at element "
                f"{tuple(int(e) for e in element)}, for output element "
                f"{tuple(int(e) for e in out_element)}: expected {expected[j, i]:.8g} "
                f"(finite differences), received {received[j, i]:.8g} (backward); "
                f"{int(bad.sum())} of {bad.size} Jacobian entries differ")
    return True
