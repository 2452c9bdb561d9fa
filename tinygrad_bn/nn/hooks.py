"""The full backward hook of a module: ∂L/∂inputs and ∂L/∂outputs of one call, in one place.

``module.register_full_backward_hook(hook)`` promises ``hook(module, grad_input, grad_output)``
once per call, after the gradients of *all* the call's inputs are known. The engine only offers
per-tensor hooks (``Tensor.register_hook``), and the inputs' gradients arrive at different
moments, so the call's tensors are routed through one extra node on each side:

    inputs ─ HookPack ─ packed ─ HookUnpack → the inputs forward() sees
    forward()'s outputs ─ HookPack ─ packed ─ HookUnpack → what the caller receives

``packed`` is every tensor flattened and concatenated. Its gradient is the concatenation of the
gradients of all the tensors, and it is complete only when each of them is; a tensor hook on the
output side's ``packed`` therefore sees all of ``grad_output``, and one on the input side sees
all of ``grad_input``, and can replace it before any of it reaches the layers below. Without
registered backward hooks none of this is built (Module.__call__ checks first).

Read next: ../monitor.py, which records statistics through these hooks.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..function import Context, Function
from ..tensor import Tensor

__all__ = ["BackwardHook"]


class HookPack(Function):
    """packed = concat(flatten(x₁), …, flatten(xₙ));  ∂L/∂xᵢ = the i-th piece of ∂L/∂packed,
    reshaped (and cast back) to xᵢ."""

    @staticmethod
    def forward(ctx: Context, *arrays: np.ndarray) -> np.ndarray:
        ctx.shapes = [a.shape for a in arrays]
        ctx.dtypes = [a.dtype for a in arrays]
        return np.concatenate([a.reshape(-1) for a in arrays])

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple:
        return tuple(split(grad_output, ctx.shapes, ctx.dtypes))


class HookUnpack(Function):
    """xᵢ = piece i of packed, reshaped;  ∂L/∂packed = zeros except ∂L/∂xᵢ in piece i."""

    @staticmethod
    def forward(ctx: Context, packed: np.ndarray, *, start: int, shape: tuple,
                dtype: Any) -> np.ndarray:
        ctx.start, ctx.size = start, int(np.prod(shape))
        ctx.packed_shape, ctx.packed_dtype = packed.shape, packed.dtype
        return packed[start:start + ctx.size].reshape(shape).astype(dtype)

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> tuple:
        grad = np.zeros(ctx.packed_shape, dtype=ctx.packed_dtype)
        grad[ctx.start:ctx.start + ctx.size] = grad_output.reshape(-1)
        return (grad,)


def split(flat: np.ndarray, shapes: list, dtypes: list) -> list:
    """Cut a packed array back into pieces of the given shapes and dtypes."""
    pieces, start = [], 0
    for shape, dtype in zip(shapes, dtypes):
        size = int(np.prod(shape))
        pieces.append(flat[start:start + size].reshape(shape).astype(dtype))
        start += size
    return pieces


def _route(tensors: list, on_gradient: Callable[[np.ndarray], Any]) -> list:
    """Pass ``tensors`` through HookPack/HookUnpack; ``on_gradient`` sees the packed gradient."""
    packed = HookPack.apply(*tensors)
    packed.register_hook(on_gradient)
    routed, start = [], 0
    for t in tensors:
        routed.append(HookUnpack.apply(packed, start=start, shape=t.shape, dtype=t.dtype))
        start += t.numel()
    return routed


def _differentiable(values: tuple) -> list:
    return [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]


class BackwardHook:
    """The bookkeeping of one module call with full backward hooks (see the module docstring).

    ``setup_input_hook(args)`` returns the arguments forward() should see; ``setup_output_hook
    (output)`` the output the caller should receive. ``grad_input`` and ``grad_output`` are
    tuples of numpy arrays (None where an argument is not a tensor that requires grad).
    """

    def __init__(self, module: Any, hooks: list) -> None:
        self.module, self.hooks = module, hooks
        self.n_args = 0
        self.input_positions: list = []
        self.input_tensors: list = []
        self.grad_output: tuple | None = None

    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_args = len(args)
        self.input_positions = _differentiable(args)
        if not self.input_positions:
            return args
        self.input_tensors = [args[i] for i in self.input_positions]
        routed = _route(self.input_tensors, self._on_grad_input)
        new_args = list(args)
        for position, tensor in zip(self.input_positions, routed):
            new_args[position] = tensor
        return tuple(new_args)

    def setup_output_hook(self, output: Any) -> Any:
        outputs = output if isinstance(output, tuple) else (output,)
        positions = _differentiable(outputs)
        if not positions:
            return output
        tensors = [outputs[i] for i in positions]

        def on_grad_output(grad: np.ndarray) -> None:
            pieces = split(grad, [t.shape for t in tensors], [t.dtype for t in tensors])
            full: list = [None] * len(outputs)
            for position, piece in zip(positions, pieces):
                full[position] = piece
            self.grad_output = tuple(full)
            if not self.input_positions:  # no input wants a gradient: report now, as PyTorch
                self._call_hooks((None,) * self.n_args)

        routed = _route(tensors, on_grad_output)
        new_outputs = list(outputs)
        for position, tensor in zip(positions, routed):
            new_outputs[position] = tensor
        return tuple(new_outputs) if isinstance(output, tuple) else new_outputs[0]

    def _on_grad_input(self, grad: np.ndarray) -> np.ndarray | None:
        pieces = split(grad, [t.shape for t in self.input_tensors],
                       [t.dtype for t in self.input_tensors])
        grad_input: list = [None] * self.n_args
        for position, piece in zip(self.input_positions, pieces):
            grad_input[position] = piece
        replaced = self._call_hooks(tuple(grad_input))
        if replaced is None:
            return None
        flat = [replaced[p].reshape(-1) for p in self.input_positions]
        return np.concatenate(flat).astype(grad.dtype)

    def _call_hooks(self, grad_input: tuple) -> tuple | None:
        replaced = None
        for hook in self.hooks:
            result = hook(self.module, grad_input, self.grad_output)
            if result is None:
                continue
            result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
            result = tuple(None if r is None else np.asarray(r.data if isinstance(r, Tensor) else r)
                           for r in result)
            if len(result) != len(grad_input):
                raise ValueError(f"a full backward hook of {type(self.module).__name__} returned "
                                 f"{len(result)} gradients for {len(grad_input)} inputs")
            for old, new in zip(grad_input, result):
                if old is not None and (new is None or new.shape != old.shape):
                    shape = None if new is None else new.shape
                    raise ValueError(f"a full backward hook of {type(self.module).__name__} "
                                     f"returned a gradient of shape {shape} for an input "
                                     f"of shape {old.shape}")
            grad_input = replaced = result
        return replaced
