"""The scalar engine: one number per node, the whole idea of backpropagation on one screen.

A `Value` wraps a Python float. Every operation creates a new `Value` that remembers its
``parents`` and, right beside the forward result, the *local derivatives*
∂out/∂parent. Backward then needs only one rule for every op — the chain rule:

    parent.grad += (∂out/∂parent) · out.grad

Storing numbers instead of closures keeps the graph free of reference cycles, so Python's
garbage collector never has garbage to chase (micrograd's closures make it the main cost).

Every scalar op has one or two operands, so a node keeps them in two slots, ``_a`` and ``_b``,
with their local derivatives in ``_da`` and ``_db`` (``parents`` reads them back as a tuple).
Why not tuples: a graph of n nodes is then n Python objects instead of 3n, a third as many to
allocate and free, and for the garbage collector to walk when it does walk a graph (graph.py's
`collector_paused` keeps it off graphs being built and walked). A stored ``parents`` tuple
would spare the topological sort the property call, but measured on a scalar MLP step, building
and freeing the tuples cost what the sort gained.

Read next: function.py and tensor.py, the same idea on numpy arrays.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Union

import numpy as np

from .graph import collector_paused, topological_order

__all__ = ["Value"]

Number = Union[int, float]


def _ieee(op, x: float, fallback) -> float:
    """Apply ``op`` to ``x``; where Python's math raises, return what IEEE floats give instead.

    ``math.exp(1000)`` raises OverflowError and ``math.log(-1)`` raises ValueError, while a
    float computation should give ``inf`` and ``nan`` (numpy warns and carries on). The fast
    path is plain ``math``; only the rare failing case goes through numpy.
    """
    try:
        return op(x)
    except (OverflowError, ValueError, ZeroDivisionError):
        with np.errstate(all="warn"):
            return float(fallback(np.float64(x)))


def _power(x: float, k: float) -> float:
    """x**k for floats, IEEE style: (-8)**0.5 is nan (not complex), 0**-1 is inf."""
    try:
        result = math.pow(x, k)
    except (OverflowError, ValueError, ZeroDivisionError):
        with np.errstate(all="warn"):
            return float(np.power(np.float64(x), np.float64(k)))
    return result


class Value:
    """A scalar node of a computation graph.

    Args:
        data: the number this node holds.
        label: an optional name, shown when the graph is drawn.

    Example:
        >>> a, b = Value(2.0, "a"), Value(-3.0, "b")
        >>> c = a * b + a          # c = ab + a
        >>> c.backward()
        >>> a.grad, b.grad         # ∂c/∂a = b + 1, ∂c/∂b = a
        (-2.0, 2.0)
    """

    __slots__ = ("data", "grad", "op", "label", "_a", "_da", "_b", "_db")

    def __init__(self, data: Number, label: str = ""):
        if type(data) is not float:  # the checks below are skipped in the common case
            if isinstance(data, Value):
                data = data.data
            if isinstance(data, bool) or not isinstance(data, numbers.Real):
                raise TypeError(f"Value needs a real number, got {type(data).__name__}: "
                                f"{data!r}")
            data = float(data)
        self.data = data
        self.grad = 0.0
        self.op = ""
        self.label = label
        self._a, self._da = None, 0.0  # a leaf: no parents
        self._b, self._db = None, 0.0

    @property
    def parents(self) -> tuple:
        """The nodes this one was computed from, in operand order (empty for a leaf)."""
        if self._a is None:
            return ()
        if self._b is None:
            return (self._a,)
        return (self._a, self._b)

    # --- primitive operations: forward value and local derivatives side by side -------------
    # _node(result, op, a, ∂out/∂a, b, ∂out/∂b) builds the output node (see below the class).
    # The hot three — +, · and relu, nearly every node of a network — write out what _node
    # does instead of calling it: a Python call costs about as much as filling the node, and
    # a scalar MLP step makes tens of thousands of these nodes.

    def __add__(self, other: Value | Number) -> Value:
        """out = a + b;  ∂out/∂a = 1,  ∂out/∂b = 1."""
        if not isinstance(other, Value):
            other = Value(other)
        out = _new(Value)  # what _node does, written out: see "the hot three" above
        out.data = self.data + other.data
        out.grad = 0.0
        out.op = "+"
        out.label = ""
        out._a, out._da = self, 1.0
        out._b, out._db = other, 1.0
        return out

    def __mul__(self, other: Value | Number) -> Value:
        """out = a · b;  ∂out/∂a = b,  ∂out/∂b = a."""
        if not isinstance(other, Value):
            other = Value(other)
        out = _new(Value)
        out.data = self.data * other.data
        out.grad = 0.0
        out.op = "*"
        out.label = ""
        out._a, out._da = self, other.data
        out._b, out._db = other, self.data
        return out

    def __pow__(self, k: Number) -> Value:
        """out = xᵏ for a number k;  ∂out/∂x = k·xᵏ⁻¹."""
        if isinstance(k, Value) or not isinstance(k, numbers.Real):
            raise TypeError("Value ** k needs a number exponent k (int or float), "
                            f"got {type(k).__name__}")
        k = float(k)
        return _node(_power(self.data, k), f"**{k:g}", self, k * _power(self.data, k - 1.0))

    def exp(self) -> Value:
        """out = eˣ;  ∂out/∂x = eˣ = out."""
        out = _ieee(math.exp, self.data, np.exp)
        return _node(out, "exp", self, out)

    def log(self) -> Value:
        """out = ln x;  ∂out/∂x = 1/x.  (ln of a negative number is nan, as for floats.)"""
        return _node(_ieee(math.log, self.data, np.log), "log", self, _power(self.data, -1.0))

    def sqrt(self) -> Value:
        """out = √x;  ∂out/∂x = 1/(2√x)."""
        out = _ieee(math.sqrt, self.data, np.sqrt)
        return _node(out, "sqrt", self, 0.5 * _power(out, -1.0))

    def tanh(self) -> Value:
        """out = tanh x;  ∂out/∂x = 1 − tanh² x."""
        out = math.tanh(self.data)  # math.tanh saturates to ±1; it never overflows
        return _node(out, "tanh", self, 1.0 - out * out)

    def sigmoid(self) -> Value:
        """out = σ(x) = 1/(1 + e⁻ˣ);  ∂out/∂x = σ(x)·(1 − σ(x))."""
        # e^(−|x|) never overflows; the two branches are the same function rearranged.
        z = math.exp(-abs(self.data))
        out = 1.0 / (1.0 + z) if self.data >= 0 else z / (1.0 + z)
        return _node(out, "sigmoid", self, out * (1.0 - out))

    def relu(self) -> Value:
        """out = max(0, x);  ∂out/∂x = 1 if x > 0 else 0."""
        out = _new(Value)
        if self.data > 0:
            out.data, out._da = self.data, 1.0
        else:
            out.data, out._da = 0.0, 0.0
        out.grad = 0.0
        out.op = "relu"
        out.label = ""
        out._a = self
        out._b, out._db = None, 0.0
        return out

    def __neg__(self) -> Value:
        """out = −a;  ∂out/∂a = −1."""
        return _node(-self.data, "neg", self, -1.0)

    def __sub__(self, other: Value | Number) -> Value:
        """out = a − b;  ∂out/∂a = 1,  ∂out/∂b = −1."""
        other = other if isinstance(other, Value) else Value(other)
        return _node(self.data - other.data, "-", self, 1.0, other, -1.0)

    def __truediv__(self, other: Value | Number) -> Value:
        """out = a / b;  ∂out/∂a = 1/b,  ∂out/∂b = −a/b²."""
        other = other if isinstance(other, Value) else Value(other)
        inverse = _power(other.data, -1.0)  # 1/b, and inf for b = 0 as floats give
        return _node(self.data * inverse, "/", self, inverse, other,
                     -self.data * inverse * inverse)

    # --- reflected forms: a number on the left, as in 3 − a ----------------------------------
    # (− and / are primitives of their own rather than a + (−b) and a · b⁻¹, so that a drawn
    # graph shows one node for x − μ where the notes write one step.)

    def __radd__(self, other: Number) -> Value:      # 3 + a
        return self + other

    def __rmul__(self, other: Number) -> Value:      # 3 · a
        return self * other

    def __rsub__(self, other: Number) -> Value:      # 3 − a
        return _as_value(other) - self

    def __rtruediv__(self, other: Number) -> Value:  # 2 / a
        return _as_value(other) / self

    # --- backpropagation ------------------------------------------------------------------

    def backward(self) -> None:
        """Fill ``.grad`` of every node that this value depends on with ∂self/∂node.

        Leaf gradients *accumulate* across calls (call ``zero_grad`` on the leaves, or set
        ``.grad = 0``, between steps), exactly like Tensor leaves and PyTorch. Gradients of
        intermediate nodes are recomputed from zero on each call, so calling backward twice
        doubles the leaf gradients and leaves the intermediate ones as they were.
        """
        with collector_paused():  # the sort's list and set hold every node: don't rescan them
            order = topological_order(self)
            for node in order:
                if node._a is not None:  # not a leaf
                    node.grad = 0.0
            self.grad += 1.0  # ∂self/∂self
            for node in reversed(order):
                if node._a is not None:
                    # The chain rule, once per parent (a and b may be the same node: a · a).
                    node._a.grad += node._da * node.grad
                    if node._b is not None:
                        node._b.grad += node._db * node.grad

    def zero_grad(self) -> None:
        """Reset this node's gradient to 0."""
        self.grad = 0.0

    @property
    def local_derivatives(self) -> tuple:
        """∂self/∂parent for each parent, in operand order: what backward multiplies by."""
        if self._a is None:
            return ()
        if self._b is None:
            return (self._da,)
        return (self._da, self._db)

    def draw(self, **options: Any) -> Any:
        """The graph behind this value as a `graphviz.Digraph` (Jupyter shows it inline).

        Takes the options of `tinygrad_bn.viz.draw_graph` (rankdir=, show_grad=, …).
        """
        # Imported here: viz draws Values, so value.py cannot import it at the top.
        from .viz import draw_graph
        return draw_graph(self, **options)

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g}{label})"


_new = object.__new__  # a bare instance: the slots are filled by the caller


def _node(data: float, op: str, a: Value, da: float, b: Value | None = None,
          db: float = 0.0) -> Value:
    """The result of an op: ``data`` = op(a[, b]), remembering ∂data/∂a = da and ∂data/∂b = db.

    It skips Value.__init__ and its checks (``data`` is already a float): this runs once per
    node, tens of thousands of times per step of a scalar network.
    """
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out.op = op
    out.label = ""
    out._a = a
    out._da = da
    out._b = b
    out._db = db
    return out


def _as_value(x: Value | Number) -> Value:
    return x if isinstance(x, Value) else Value(x)
