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
``_version`` (assigning ``.data`` is one, ``t.data += 1`` and an optimizer step included), and
backward refuses to use an array that changed since the forward (docs/autodiff.md, "In-place
changes and the version counter").

Python numbers mixed with tensors are "weak" scalars, as in numpy 2 and PyTorch: a float32
tensor times 2.0 stays float32. Data types otherwise follow numpy's promotion rules.

Read next: nn/ (layers built from these ops), then optim/.
"""
from __future__ import annotations

import numbers
from typing import Any, Sequence, Union

import numpy as np

from . import ops
from .function import Context
from .graph import topological_order
from .hooks import RemovableHandle
from .random import generator

__all__ = ["Tensor", "increment_version"]

ShapeLike = Union[int, Sequence[int]]
Axis = Union[int, Sequence[int], None]


def _to_array(data: Any, dtype: Any) -> np.ndarray:
    """Convert constructor input to an array, with PyTorch's default types.

    Python floats become float32 and Python ints int64; numpy arrays keep their type.
    """
    if isinstance(data, Tensor):
        data = data.data
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


def increment_version(tensor: Tensor) -> None:
    """Record an in-place change of ``tensor.data`` made without assigning it (e.g.
    ``tensor.data[...] = values``), so that a backward pass needing the old values refuses to
    run. The library calls it wherever it writes into an array in place; assigning
    ``tensor.data`` (also with ``+=``) counts by itself.
    """
    tensor._version += 1


def _check_saved_arrays(node: Tensor) -> None:
    """Raise RuntimeError if an array that ``node``'s op saved for backward changed in place.

    Called only when the version of an input or of the output moved since the forward pass
    (backward compares those integers first). A tensor whose array was *replaced* (``t.data =
    new``) is fine: the op kept the old array, which nobody changed.
    """
    ctx = node._ctx
    saved = [a for a in ctx.saved_tensors if isinstance(a, np.ndarray)]
    checks = [(f"input {i}", parent, expected)
              for i, (parent, expected) in enumerate(zip(node.parents, ctx.input_versions))]
    for role, tensor, expected in checks + [("the output", node, 0)]:
        if tensor._version == expected:
            continue
        if any(np.may_share_memory(tensor._data, array) for array in saved):
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: {role} of {node.op}, a {tensor.dtype} tensor of shape "
                f"{tensor.shape}, is at version {tensor._version}; expected version {expected} "
                f"instead. {node.op}'s backward needs the values the forward pass saw: change "
                "tensors after backward() (optimizer.step() after loss.backward()), or run the "
                "forward pass again.")


class Tensor:
    """An n-dimensional array in a computation graph.

    Args:
        data: a number, (nested) list, numpy array or Tensor. The data is copied.
        requires_grad: if True, backward fills ``.grad`` with ∂L/∂self (floating types only).
        dtype: a numpy dtype; default as in PyTorch (floats → float32, ints → int64).

    Example:
        >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        >>> y = (x * x).sum()          # y = Σ x²
        >>> y.backward()
        >>> x.grad                     # ∂y/∂x = 2x
        array([[2., 4.],
               [6., 8.]], dtype=float32)
    """

    # `_module_call` is (module, inputs) on a tensor that a Module returned, None otherwise, so
    # that the graph renderer can group the ops each layer produced. `_backward_hooks` is None
    # until `register_hook` is called, so backward pays one attribute test per node for hooks.
    # __slots__ rather than a per-object __dict__: a step creates a few dozen tensors, and slots
    # make each one smaller and its attributes quicker to reach.
    # `_data` is the array behind the `data` property; `_version` counts its in-place changes.
    __slots__ = ("_data", "grad", "requires_grad", "op", "parents", "_ctx", "_module_call",
                 "_version", "_backward_hooks", "__weakref__")
    # Tell numpy to leave `array * tensor` to Tensor.__rmul__ instead of looping over elements.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None):
        array = _to_array(data, dtype)
        if requires_grad and array.dtype.kind != "f":
            raise RuntimeError("only tensors of floating point dtype can require gradients, "
                               f"got {array.dtype}")
        self._data: np.ndarray = array
        self._version: int = 0     # in-place changes of the data so far (see `data`)
        self.grad: np.ndarray | None = None
        self.requires_grad: bool = bool(requires_grad)
        self.op: str = ""          # name of the Function that made this tensor ("" for a leaf)
        self.parents: tuple = ()   # the tensors it was computed from, in argument order
        self._ctx: Context | None = None
        self._module_call: tuple | None = None
        self._backward_hooks: dict | None = None

    @staticmethod
    def _make(data: np.ndarray, requires_grad: bool, ctx: Context | None = None,
              parents: tuple = (), op: str = "") -> Tensor:
        """Wrap an op's result without copying or checking it (the hot path of every op)."""
        out = object.__new__(Tensor)
        out._data, out.grad, out.requires_grad, out._version = data, None, requires_grad, 0
        out.op, out.parents, out._ctx, out._module_call = op, parents, ctx, None
        out._backward_hooks = None
        return out

    # --- attributes -----------------------------------------------------------------------

    @property
    def data(self) -> np.ndarray:
        """The values, a numpy array (shared, not copied)."""
        return self._data

    @data.setter
    def data(self, array: np.ndarray) -> None:
        # Every assignment counts as an in-place change, including `t.data += 1` and an
        # optimizer's `p.data -= lr * g` (Python assigns the result back), so that backward can
        # tell that an array it saved is no longer what the forward pass saw.
        self._data = array
        self._version += 1

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
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied — like torch's ``.numpy()``)."""
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same data as a new leaf that is cut off from the graph."""
        return Tensor._make(self.data, False)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` becomes None, as in PyTorch)."""
        self.grad = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extra = ""
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extra += f", dtype={self.data.dtype}"
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
            if self.data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for one-element "
                                   f"outputs; this tensor has shape {self.shape}: pass "
                                   "backward(gradient=...) with ∂L/∂output of that shape")
            gradient = np.ones_like(self.data)
        else:
            gradient = np.array(gradient.data if isinstance(gradient, Tensor) else gradient,
                                dtype=self.data.dtype)
            if gradient.shape != self.shape:
                raise ValueError(f"gradient has shape {gradient.shape} but the tensor has shape "
                                 f"{self.shape}")

        grads = {self: gradient}      # ∂L/∂node, summed over every path found so far
        given_to_leaves = set()       # arrays already stored in a leaf's .grad this pass
        for node in reversed(topological_order(self)):
            g = grads.pop(node, None)
            if g is None:
                continue  # the node does not lead to self through tracked ops
            if not isinstance(g, np.ndarray):
                g = np.array(g)  # numpy gives 0-d results as scalars; .grad is always an array
            if node._backward_hooks:  # all contributions are summed by now: g is the total
                g = node._run_backward_hooks(g)
            ctx = node._ctx
            if ctx is None:  # a leaf: accumulate into .grad, owning its array
                # (`g.base` is set for a view of another array; cheaper to ask than g.flags)
                if id(g) in given_to_leaves or g.base is not None:
                    g = g.copy()
                given_to_leaves.add(id(g))
                # asanyarray: an ndarray subclass (jit's traced arrays) must stay what it is
                node.grad = g if node.grad is None else np.asanyarray(node.grad + g)
                continue
            node.grad = g
            if ctx.saved_tensors and (node._version or ctx.input_versions != [
                    parent._version for parent in node.parents]):
                _check_saved_arrays(node)  # something changed in place: was it saved?
            for parent, grad in zip(node.parents, ctx.function.backward(ctx, g)):
                if grad is None or not parent.requires_grad:
                    continue
                if grad.dtype != parent._data.dtype:  # a mixed-dtype op, e.g. float32 · float64:
                    grad = grad.astype(parent._data.dtype)  # as in PyTorch, ∂L/∂x has x's dtype
                # The chain rule across paths: contributions from several consumers add up.
                grads[parent] = grads[parent] + grad if parent in grads else grad

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
            result = np.array(result.data if isinstance(result, Tensor) else result,
                              dtype=self.data.dtype)
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

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, bool) or not isinstance(exponent, numbers.Real):
            raise TypeError(f"Tensor ** k needs a number exponent, got {type(exponent).__name__}")
        return ops.Pow.apply(self, exponent=exponent)

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

    # --- reductions ---------------------------------------------------------------------------

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.Max.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def _count(self, axis: Axis) -> int:
        axes = _axes(axis, self.ndim)
        if axes is None:
            return self.data.size
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
        # PyTorch divides by max(0, n − correction): inf or nan (with a warning) when n ≤ correction.
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
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        elif isinstance(index, list):
            index = np.asarray(index)
        return ops.GetItem.apply(self, index=index)

    # --- comparisons: boolean tensors, outside the graph -------------------------------------
    # == and != keep Python's identity semantics (graph code keeps tensors in sets and dicts);
    # use eq() for an elementwise comparison.

    def _compare(self, other: Any, compare: Any) -> Tensor:
        other_data = other.data if isinstance(other, Tensor) else other
        return Tensor._make(np.asarray(compare(self.data, other_data)), False)

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
            index = np.argmax(self.data)
            return Tensor._make(np.asarray(index, dtype=np.int64).reshape(
                (1,) * self.ndim if keepdims else ()), False)
        axis = _axes(axis, self.ndim)[0]
        index = np.argmax(self.data, axis=axis, keepdims=keepdims)
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

