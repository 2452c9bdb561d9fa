"""`Tensor`: a numpy array that remembers how it was computed, and backpropagates.

How a backward pass runs (``loss.backward()`` below):

1. `topological_order` (graph.py) lists every node the loss depends on, parents first.
2. The loss gets gradient 1 (∂L/∂L). Walking the list from the loss back to the inputs, each
   node created by an op hands its gradient g = ∂L/∂node to its Function's ``backward``, which
   returns ∂L/∂parent for each parent (ops.py pairs every forward with that rule).
3. A parent used by several ops receives several contributions; they are *added* (the
   multivariable chain rule). Leaves — tensors you created, such as parameters — add the result
   to their ``.grad``; every other node keeps the gradient of this pass in its ``.grad`` too, so
   a drawing of the graph can show it.

A backward rule needs the arrays its forward saw. Each tensor counts its in-place changes in
``_version`` (assigning ``.data`` is one, ``t.data += 1`` and an optimizer step included) and
notes when the last one happened; backward refuses to use an array that changed after its op
saved it (docs/autodiff.md, "In-place changes and the version counter").

Python numbers mixed with tensors are "weak" scalars, as in numpy 2 and PyTorch: a float32
tensor times 2.0 stays float32. Data types otherwise follow numpy's promotion rules.

Read next: nn/ (layers built from these ops), then optim/.
"""
from __future__ import annotations

import itertools
import numbers
from typing import Any, Sequence, Union

import numpy as np

from . import ops
from .function import Context
from .graph import topological_order
from .hooks import RemovableHandle
from .random import generator

__all__ = ["Tensor", "cat", "stack", "where", "increment_version"]

ShapeLike = Union[int, Sequence[int]]
Axis = Union[int, Sequence[int], None]


def _to_array(data: Any, dtype: Any) -> np.ndarray:
    """Convert constructor input to an array, with PyTorch's default types.

    Python floats become float32 and Python ints int64; numpy arrays keep their type.
    """
    if isinstance(data, Tensor):
        data = data._data
    array = np.array(data, dtype=dtype)  # a copy, as torch.tensor makes one
    from_python = not isinstance(data, (np.ndarray, np.generic))
    if from_python and dtype is None and array.dtype == np.float64:
        array = array.astype(np.float32)  # Python floats → float32, PyTorch's default
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Tensor needs numeric data, got {type(data).__name__} "
                        f"(numpy dtype {array.dtype})")
    return array


def _shape(shape: ShapeLike | tuple) -> tuple:
    if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
        shape = tuple(shape[0])  # reshape((2, 3)) as well as reshape(2, 3)
    return tuple(int(n) for n in shape)


def _axes(axis: Axis, ndim: int) -> tuple | None:
    """Normalise an axis argument to a sorted tuple of non-negative axes (None: all axes)."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    normalised = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        normalised.append(int(a) % ndim)
    return tuple(sorted(normalised))


# One clock for the whole process, shared by every thread: each in-place change and each
# recorded node that saved arrays takes the next tick, so that "changed after the node saved
# it" is one integer comparison per input in backward, with nothing to record per input at the
# forward pass (a list of the inputs' versions per node cost twice as much). Only the order of
# the ticks matters; `next` on an itertools.count is atomic, so threads may share it.
_ticks = itertools.count(1)
# The state of `Tensor._snapshot` while a graph that saved the tensor awaits its backward pass:
# saved, and its array not handed out through `.data` since (a write needs a reference to it).
_SAVED = "saved"


def increment_version(tensor: Tensor) -> None:
    """Record an in-place change of ``tensor.data`` made without assigning it (e.g.
    ``tensor.data[...] = values``), so that a backward pass needing the old values refuses to
    run. The library calls it wherever it writes into an array in place; assigning
    ``tensor.data`` (also with ``+=``) counts by itself.
    """
    tensor._version += 1
    tensor._changed_at = next(_ticks)


def _same_values(array: np.ndarray, copy: np.ndarray) -> bool:
    """True if ``array`` still holds ``copy``'s values (NaN equals NaN: reading is no write)."""
    return bool(np.array_equal(array, copy, equal_nan=array.dtype.kind in "fc"))


def _settle_snapshot(tensor: Tensor) -> None:
    """A new op saves ``tensor`` while a snapshot from an earlier exposure is live: turn what
    the snapshot tells into a version change, so that one snapshot covers one saving at a time.

    The array was handed out at tick ``_exposed_at``, after every earlier saving of the tensor
    (a snapshot is taken at the first exposure after a saving) and before this one. If it no
    longer holds the copied values, it was written in between: every op that saved it before
    the exposure saw the old values, and no op saved it between the exposure and now — so
    stamping the change at the exposure's tick refuses exactly the stale ones.
    """
    array, copy = tensor._snapshot
    tensor._snapshot = None
    if not _same_values(array, copy):
        tensor._version += 1
        tensor._changed_at = max(tensor._changed_at, tensor._exposed_at)


def _check_saved_arrays(node: Tensor) -> None:
    """Raise RuntimeError if an array that ``node``'s op saved for backward changed in place.

    Called only when an input or the output changed, or had its array handed out through
    ``.data``, after the op saved its arrays (backward compares the ticks first). A tensor
    whose array was *replaced* (``t.data = new``) is fine: the op kept the old array, which
    nobody changed; a handed-out array still holding the values copied when it was handed out
    was only read.
    """
    ctx = node._ctx
    saved = [a for a in ctx.saved_tensors if isinstance(a, np.ndarray)]
    roles = [(f"input {i}", parent) for i, parent in enumerate(node.parents)]
    for role, tensor in roles + [("the output", node)]:
        if tensor._changed_at > ctx.saved_at and _shares(tensor._data, saved):
            what = f"is at version {tensor._version} and was changed"
        elif (tensor._exposed_at > ctx.saved_at and type(tensor._snapshot) is tuple
              and _shares(tensor._snapshot[0], saved)
              and not _same_values(*tensor._snapshot)):
            what = "was written in place through its .data array"
        else:
            continue
        raise RuntimeError(
            f"one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: {role} of {node.op}, a {tensor.dtype} tensor of shape "
            f"{tensor.shape}, {what} after {node.op} saved it for backward. {node.op}'s "
            "backward needs the values the forward pass saw: change tensors after backward() "
            "(optimizer.step() after loss.backward()), or run the forward pass again.")


def _shares(array: np.ndarray, saved: list) -> bool:
    return any(np.may_share_memory(array, other) for other in saved)


class Tensor:
    """An n-dimensional array in a computation graph.

    Args:
        data: a number, (nested) list, numpy array or Tensor. The data is copied.
        requires_grad: if True, backward fills ``.grad`` with ∂L/∂self (floating types only).
        dtype: a numpy dtype; default as in PyTorch (floats → float32, ints → int64).
        name: keyword-only; a name shown when the graph is drawn (``t.name = "logits"`` later
            works too).

    Example:
        >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        >>> y = (x * x).sum()          # y = Σ x²
        >>> y.backward()
        >>> x.grad                     # ∂y/∂x = 2x
        array([[2., 4.],
               [6., 8.]], dtype=float32)
    """

    # `_module_call` is (module, inputs) on a tensor that a Module returned, None otherwise, so
    # that the graph renderer can group the ops each layer produced. `name` ("" for none) is
    # given where a tensor is built — nn.functional.batch_norm names μ_B, σ²_B, ẑ, … — and the
    # graph drawings show it, as a Value's `label`. `_backward_hooks` is None until
    # `register_hook` is called, so backward pays one attribute test per node for hooks.
    # __slots__ rather than a per-object __dict__: a step creates a few dozen tensors, and slots
    # make each one smaller and its attributes quicker to reach.
    # `_data` is the array behind the `data` property; `_version` counts its in-place changes
    # and `_changed_at` is the tick of the last one (0: never changed). `_snapshot` watches for
    # writes into the array that no assignment announces (`t.data[...] = 0`): None when no
    # graph awaiting backward saved the tensor, `_SAVED` when one did, and, once `.data` has
    # handed the array out since, (array, a copy of it) taken at tick `_exposed_at`.
    __slots__ = ("_data", "grad", "requires_grad", "op", "parents", "name", "_ctx",
                 "_module_call", "_version", "_changed_at", "_backward_hooks", "_snapshot",
                 "_exposed_at", "__weakref__")
    # Tell numpy to leave `array * tensor` to Tensor.__rmul__ instead of looping over elements.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, *,
                 name: str = ""):
        array = _to_array(data, dtype)
        if requires_grad and array.dtype.kind != "f":
            raise RuntimeError("only tensors of floating point dtype can require gradients, "
                               f"got {array.dtype}")
        self._data: np.ndarray = array
        self._version: int = 0     # in-place changes of the data so far (see `data`)
        self._changed_at: int = 0  # when the last one happened, on the clock `_ticks`
        self._snapshot: Any = None  # see __slots__
        self._exposed_at: int = 0
        self.grad: np.ndarray | None = None
        self.requires_grad: bool = bool(requires_grad)
        self.op: str = ""          # name of the Function that made this tensor ("" for a leaf)
        self.parents: tuple = ()   # the tensors it was computed from, in argument order
        self.name: str = name      # shown by the graph drawings ("" for none)
        self._ctx: Context | None = None
        self._module_call: tuple | None = None
        self._backward_hooks: dict | None = None

    @staticmethod
    def _make(data: np.ndarray, requires_grad: bool, ctx: Context | None = None,
              parents: tuple = (), op: str = "") -> Tensor:
        """Wrap an op's result without copying or checking it (the hot path of every op)."""
        out = object.__new__(Tensor)
        out._data, out.requires_grad, out.op, out.parents, out._ctx = (
            data, requires_grad, op, parents, ctx)
        out.grad = out._snapshot = out._module_call = out._backward_hooks = None
        out._version = out._changed_at = out._exposed_at = 0
        out.name = ""
        return out

    # --- attributes -----------------------------------------------------------------------

    @property
    def data(self) -> np.ndarray:
        """The values, a numpy array (shared, not copied).

        Writing into it between a forward pass that saved this tensor and the backward pass
        makes that backward raise (docs/autodiff.md §10): the first time the array is handed
        out after such a saving, a copy is kept, and backward compares.
        """
        if self._snapshot is _SAVED:
            self._snapshot = (self._data, self._data.copy())
            self._exposed_at = next(_ticks)
        return self._data

    @data.setter
    def data(self, array: np.ndarray) -> None:
        # Every assignment counts as an in-place change, including `t.data += 1` and an
        # optimizer's `p.data -= lr * g` (Python assigns the result back), so that backward can
        # tell that an array it saved is no longer what the forward pass saw.
        self._data = array
        self._version += 1                 # what increment_version does, without the call:
        self._changed_at = next(_ticks)    # optimizers assign every parameter every step

    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a tracked op (inputs and parameters)."""
        return self._ctx is None

    def numel(self) -> int:
        return self._data.size

    def __len__(self) -> int:
        return len(self._data)

    def item(self) -> float | int | bool:
        if self._data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self._data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied — like torch's ``.numpy()``); writes into it
        are watched as through ``.data``."""
        return self.data

    def peek(self) -> np.ndarray:
        """The underlying array, for code that only *reads* it.

        ``.data`` keeps a copy the first time it hands out an array that a graph awaiting
        backward saved, so that backward can tell a write into it; the library's own reads
        on the training path (losses' checks, BatchNorm's statistics, the monitor) use this
        instead and pay nothing. Never write through it: such a write is not seen.
        """
        return self._data

    def tolist(self) -> Any:
        return self._data.tolist()

    def detach(self) -> Tensor:
        """The same data as a new leaf that is cut off from the graph."""
        return Tensor._make(self.data, False)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` becomes None, as in PyTorch)."""
        self.grad = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self._data.astype(dtype)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __float__(self) -> float:
        return float(self.item())

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="Tensor(")
        extra = ""
        if self._data.dtype not in (np.float32, np.int64, np.bool_):
            extra += f", dtype={self._data.dtype}"
        if self.op:
            extra += f", op={self.op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # --- backpropagation ------------------------------------------------------------------

    def backward(self, gradient: Any = None) -> None:
        """Compute ∂self/∂leaf for every leaf that requires grad, adding it to ``leaf.grad``.

        Args:
            gradient: ∂L/∂self, needed unless self has exactly one element (then it is 1).

        Calling backward twice on the same graph is allowed (the graph is kept): leaf
        gradients then accumulate — twice the gradient — until zeroed, as in PyTorch with
        ``retain_graph=True``; every non-leaf node holds the gradient of the latest pass.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input of "
                               "its graph has requires_grad=True (or it was built under no_grad)")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for one-element "
                                   f"outputs; this tensor has shape {self.shape}: pass "
                                   "backward(gradient=...) with ∂L/∂output of that shape")
            gradient = np.ones_like(self._data)
        else:
            gradient = np.array(gradient._data if isinstance(gradient, Tensor) else gradient,
                                dtype=self._data.dtype)
            if gradient.shape != self.shape:
                raise ValueError(f"gradient has shape {gradient.shape} but the tensor has shape "
                                 f"{self.shape}")

        grads = {self: gradient}      # ∂L/∂node, summed over every path found so far
        given_to_leaves = set()       # arrays already stored in a leaf's .grad this pass
        for node in reversed(topological_order(self)):
            # Every op of this graph that saved `node` comes after it in the order and has been
            # checked by now (the node's own op, below): stop watching its array, so that the
            # optimizer step reads `.data` for free.
            g = grads.pop(node, None)
            if g is None:
                node._snapshot = None
                continue  # the node does not lead to self through tracked ops
            if not isinstance(g, np.ndarray):
                g = np.array(g)  # numpy gives 0-d results as scalars; .grad is always an array
            if node._backward_hooks:  # all contributions are summed by now: g is the total
                g = node._run_backward_hooks(g)
            ctx = node._ctx
            if ctx is None:  # a leaf: accumulate into .grad, owning its array
                node._snapshot = None
                # (`g.base` is set for a view of another array; cheaper to ask than g.flags)
                if id(g) in given_to_leaves or g.base is not None:
                    g = g.copy()
                given_to_leaves.add(id(g))
                # asanyarray: an ndarray subclass (jit's traced arrays) must stay what it is
                node.grad = g if node.grad is None else np.asanyarray(node.grad + g)
                continue
            node.grad = g
            # Refuse saved arrays changed in place, or handed out by `.data`, since the forward
            # pass: two integer comparisons per input (`saved_at` is infinite for ops that saved
            # nothing); the arrays are compared only when one says yes.
            saved_at, parents = ctx.saved_at, node.parents
            if node._changed_at > saved_at or node._exposed_at > saved_at:
                _check_saved_arrays(node)
            for parent in parents:
                if parent._changed_at > saved_at or parent._exposed_at > saved_at:
                    _check_saved_arrays(node)
            node._snapshot = None
            for parent, grad in zip(parents, ctx.function.backward(ctx, g)):
                if grad is None or not parent.requires_grad:
                    continue
                dtype = parent._data.dtype  # (`is` first: usually the very same object)
                if grad.dtype is not dtype and grad.dtype != dtype:  # a mixed-dtype op, e.g.
                    grad = grad.astype(dtype)  # float32 · float64: ∂L/∂x has x's dtype (PyTorch)
                # The chain rule across paths: contributions from several consumers add up.
                grads[parent] = grads[parent] + grad if parent in grads else grad

    def local_backward(self, grad_output: np.ndarray) -> tuple:
        """One step of the chain rule: ∂L/∂parent for each parent, given ∂L/∂self.

        This is what `backward` runs at each node (its Function's ``backward``), without
        touching any ``.grad``; the graph explorer (viz.explore) records a backward pass with
        it. An entry is None where a parent needs no gradient. A leaf has no parents: ``()``.
        """
        if self._ctx is None:
            return ()
        grads = self._ctx.function.backward(self._ctx, np.asarray(grad_output))
        return tuple(None if grad is None or not parent.requires_grad else np.asarray(grad)
                     for parent, grad in zip(self.parents, grads))

    def draw(self, **options: Any) -> Any:
        """The graph behind this tensor as a `graphviz.Digraph` (Jupyter shows it inline).

        Takes the options of `tinygrad_bn.viz.draw_graph` (module=, rankdir=, show_grad=, …).
        """
        # Imported here: viz draws Tensors, so tensor.py cannot import it at the top.
        from .viz import draw_graph
        return draw_graph(self, **options)

    def register_hook(self, hook: Any) -> RemovableHandle:
        """Call ``hook(grad)`` whenever backward computes ∂L/∂self; it may return a replacement.

        ``grad`` is the *total* gradient arriving at this tensor (every path summed), as a numpy
        array like ``.grad``. If the hook returns an array or Tensor, that value is used instead
        — it flows on to the tensor's parents, or, for a leaf, is what accumulates in ``.grad``.
        Several hooks run in registration order, each seeing the previous one's result.
        Returns a handle whose ``remove()`` unregisters the hook.

        Example:
            >>> x = Tensor([1.0, 2.0], requires_grad=True)
            >>> handle = x.register_hook(lambda grad: grad * 10)
            >>> (x * x).sum().backward()
            >>> x.grad                      # 10 · 2x
            array([20., 40.], dtype=float32)
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if not callable(hook):
            raise TypeError(f"register_hook needs a function, got {type(hook).__name__}")
        if self._backward_hooks is None:
            self._backward_hooks = {}
        return RemovableHandle(self._backward_hooks, hook)

    def has_hooks(self) -> bool:
        """True if a hook registered with `register_hook` is still in place."""
        return bool(self._backward_hooks)

    def _run_backward_hooks(self, grad: np.ndarray) -> np.ndarray:
        # list(): a hook may remove itself (or another) while the hooks run.
        for hook in list(self._backward_hooks.values()):
            result = hook(grad)
            if result is None:
                continue
            result = np.array(result._data if isinstance(result, Tensor) else result,
                              dtype=self._data.dtype)
            if result.shape != self.shape:
                raise ValueError(f"a backward hook returned a gradient of shape {result.shape} "
                                 f"for a tensor of shape {self.shape}")
            grad = result
        return grad

    # --- arithmetic (weak Python scalars become arrays of this tensor's type) --------------

    def _operand(self, other: Any) -> Tensor:
        if isinstance(other, Tensor):
            return other
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            if self._data.dtype.kind == "f" or isinstance(other, numbers.Integral):
                return Tensor._make(np.asarray(other, dtype=self._data.dtype), False)
            return Tensor._make(np.asarray(other), False)  # int tensor ⊗ float: numpy's float64
        return Tensor(other)

    def __add__(self, other: Any) -> Tensor:
        return ops.Add.apply(self, self._operand(other))

    def __radd__(self, other: Any) -> Tensor:
        return ops.Add.apply(self._operand(other), self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(self, self._operand(other))

    def __rsub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(self._operand(other), self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(self, self._operand(other))

    def __rmul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(self._operand(other), self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(self, self._operand(other))

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(self._operand(other), self)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pow__(self, exponent: float | Tensor) -> Tensor:
        if isinstance(exponent, Tensor):  # aᵇ with a tensor exponent: it gets a gradient too
            return ops.PowTensor.apply(self, exponent)
        if isinstance(exponent, bool) or not isinstance(exponent, numbers.Real):
            raise TypeError(f"Tensor ** k needs a number or Tensor exponent, got "
                            f"{type(exponent).__name__}")
        return ops.Pow.apply(self, exponent=exponent)

    def __rpow__(self, base: Any) -> Tensor:
        return ops.PowTensor.apply(self._operand(base), self)

    def matmul(self, other: Any) -> Tensor:
        """Matrix product, 2-D or batched; a 1-D operand is treated as in numpy (and torch)."""
        other = other if isinstance(other, Tensor) else Tensor(other)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(f"matmul: both operands need at least one dimension, got shapes "
                             f"{self.shape} and {other.shape}")
        # A vector is a one-row (left) or one-column (right) matrix whose extra axis is dropped.
        a = self.reshape(1, -1) if self.ndim == 1 else self
        b = other.reshape(-1, 1) if other.ndim == 1 else other
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {self.shape} and {other.shape} are not aligned: "
                             f"{a.shape[-1]} columns against {b.shape[-2]} rows")
        out = ops.MatMul.apply(a, b)
        if self.ndim == 1:
            out = out.reshape(out.shape[:-2] + out.shape[-1:])
        if other.ndim == 1:
            out = out.reshape(out.shape[:-1])
        return out

    __matmul__ = matmul

    def __rmatmul__(self, other: Any) -> Tensor:
        return Tensor(other).matmul(self)

    # --- elementwise functions --------------------------------------------------------------

    def exp(self) -> Tensor:
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return ops.ReLU.apply(self)

    def abs(self) -> Tensor:
        return ops.Abs.apply(self)

    __abs__ = abs

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Limit every element to [min, max]; either bound may be None (at least one is given)."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return ops.Clamp.apply(self, min=min, max=max)

    def where(self, condition: Any, other: Any) -> Tensor:
        """self where ``condition`` is true, else ``other`` (PyTorch's ``x.where(cond, y)``)."""
        return where(condition, self, other)

    # --- reductions ---------------------------------------------------------------------------

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.Max.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def _count(self, axis: Axis) -> int:
        axes = _axes(axis, self.ndim)
        if axes is None:
            return self._data.size
        return int(np.prod([self.shape[a] for a in axes]))

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """mean(x) = Σ x / n — a composite op: its gradient, g / n, comes from Sum and Mul.

        The mean of nothing (n = 0) is nan, as in PyTorch and numpy.
        """
        count = self._count(axis)
        return self.sum(axis, keepdims) * (1.0 / count if count else float("nan"))

    def var(self, axis: Axis = None, keepdims: bool = False, correction: int = 1) -> Tensor:
        """var(x) = Σ (x − mean x)² / (n − correction);  correction=1 is the unbiased estimate.

        A composite op (mean, subtract, square, sum), so its graph shows each step.
        """
        centred = self - self.mean(axis, keepdims=True)
        # As PyTorch, divide by max(0, n − correction): inf or nan, with a warning, when
        # n ≤ correction.
        divisor = float(max(self._count(axis) - correction, 0))
        return (centred * centred).sum(axis, keepdims) / divisor

    def log_softmax(self, axis: int = -1) -> Tensor:
        return ops.LogSoftmax.apply(self, axis=_axes(axis, self.ndim)[0])

    def softmax(self, axis: int = -1) -> Tensor:
        """softmax(x) = exp(log_softmax(x)), which is stable for large x."""
        return self.log_softmax(axis).exp()

    # --- shape -------------------------------------------------------------------------------

    def reshape(self, *shape: int) -> Tensor:
        return ops.Reshape.apply(self, shape=_shape(shape))

    def view(self, *shape: int) -> Tensor:
        """The same as `reshape` (numpy decides whether the result shares memory)."""
        return self.reshape(*shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge the axes start_dim … end_dim into one, e.g. (N, C, H, W) → (N, C·H·W) with
        ``flatten(1)``."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = _axes(start_dim, self.ndim)[0], _axes(end_dim, self.ndim)[0]
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for "
                             f"a tensor of shape {self.shape}")
        merged = int(np.prod(self.shape[start:end + 1]))
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1:])

    def permute(self, *dims: int) -> Tensor:
        dims = _shape(dims)
        if sorted(d % self.ndim for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: {dims} is not an ordering of the {self.ndim} axes of a "
                             f"tensor of shape {self.shape}")
        return ops.Permute.apply(self, dims=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        dims = list(range(self.ndim))
        a, b = _axes(dim0, self.ndim)[0], _axes(dim1, self.ndim)[0]
        dims[a], dims[b] = dims[b], dims[a]
        return ops.Permute.apply(self, dims=tuple(dims))

    @property
    def T(self) -> Tensor:
        """All axes reversed (the matrix transpose for 2-D tensors)."""
        return ops.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, Tensor):
            index = index._data
        elif isinstance(index, tuple):
            index = tuple(i._data if isinstance(i, Tensor) else i for i in index)
        elif isinstance(index, list):
            index = np.asarray(index)
        return ops.GetItem.apply(self, index=index)

    # --- comparisons: boolean tensors, outside the graph -------------------------------------
    # == and != keep Python's identity semantics (graph code keeps tensors in sets and dicts);
    # use eq() for an elementwise comparison.

    def _compare(self, other: Any, compare: Any) -> Tensor:
        other_data = other._data if isinstance(other, Tensor) else other
        return Tensor._make(np.asarray(compare(self._data, other_data)), False)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, np.less)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, np.less_equal)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater_equal)

    def eq(self, other: Any) -> Tensor:
        return self._compare(other, np.equal)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the largest value along ``axis`` (in the flattened tensor when None).

        An int64 tensor outside the graph: an index has no gradient. Ties go to the first
        largest value, as in numpy and PyTorch. Example: the predicted class of (N, C) logits
        is ``logits.argmax(axis=1)``.
        """
        if axis is None:
            index = np.argmax(self._data)
            return Tensor._make(np.asarray(index, dtype=np.int64).reshape(
                (1,) * self.ndim if keepdims else ()), False)
        axis = _axes(axis, self.ndim)[0]
        index = np.argmax(self._data, axis=axis, keepdims=keepdims)
        return Tensor._make(np.asarray(index, dtype=np.int64), False)

    __hash__ = object.__hash__

    # --- constructors -------------------------------------------------------------------------

    @staticmethod
    def zeros(shape: ShapeLike, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        return Tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def ones(shape: ShapeLike, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def randn(shape: ShapeLike, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        """Standard normal samples from the library's generator (see `manual_seed`)."""
        data = generator().standard_normal(shape).astype(dtype)
        return Tensor(data, requires_grad=requires_grad)

    @staticmethod
    def rand(shape: ShapeLike, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
        """Uniform samples in [0, 1) from the library's generator."""
        return Tensor.uniform(shape, 0.0, 1.0, dtype=dtype, requires_grad=requires_grad)

    @staticmethod
    def uniform(shape: ShapeLike, low: float = 0.0, high: float = 1.0, dtype: Any = np.float32,
                requires_grad: bool = False) -> Tensor:
        """Uniform samples in [low, high) from the library's generator."""
        if not low < high:
            raise ValueError(f"uniform needs low < high, got low={low}, high={high}")
        data = generator().uniform(low, high, shape).astype(dtype)
        return Tensor(data, requires_grad=requires_grad)



# --- functions of several tensors (torch.cat, torch.stack, torch.where) ---------------------------

def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing axis ``dim``; the other axes must agree."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    first = tensors[0]
    axis = _axes(dim, first.ndim)[0] if first.ndim else 0
    for k, t in enumerate(tensors):
        if t.ndim != first.ndim or t.shape[:axis] + t.shape[axis + 1:] != \
                first.shape[:axis] + first.shape[axis + 1:]:
            raise ValueError(f"cat: tensor {k} has shape {t.shape}, which does not fit tensor 0 "
                             f"of shape {first.shape} outside dimension {dim}")
    return ops.Cat.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join equal-shaped tensors along a new axis ``dim``: each gets a length-1 axis there, then
    they are concatenated (so the gradient comes from Reshape and Cat)."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    shape = tensors[0].shape
    for k, t in enumerate(tensors):
        if t.shape != shape:
            raise ValueError(f"stack: tensor {k} has shape {t.shape}, tensor 0 has {shape}; "
                             f"stack needs equal shapes")
    axis = _axes(dim, len(shape) + 1)[0]
    new_shape = shape[:axis] + (1,) + shape[axis:]
    return cat([t.reshape(new_shape) for t in tensors], dim=axis)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """``input`` where ``condition`` is true, ``other`` elsewhere (broadcasting all three).

    Python numbers take the type of the tensor beside them, as in arithmetic.
    """
    condition = np.asarray(condition._data if isinstance(condition, Tensor) else condition,
                           dtype=bool)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError("where: input or other must be a Tensor")
    if not isinstance(input, Tensor):
        input = other._operand(input)
    elif not isinstance(other, Tensor):
        other = input._operand(other)
    return ops.Where.apply(input, other, condition=condition)
