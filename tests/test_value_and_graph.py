"""The scalar engine and the graph shapes that break naive autodiff engines.

Covers Value's ops against finite differences, float-like behaviour at extremes, and for both
engines: a reused node, a diamond, a 100 000-op chain, backward twice, identical results of
Value and Tensor on the same expressions.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_bn import Tensor, Value, topological_order

SCALAR_EXPRESSIONS = {
    "polynomial": lambda a, b: a * a * b + 3.0 * b - a / 2.0,
    "division": lambda a, b: (a + 1.0) / (b * b + 1.0),
    "reflected": lambda a, b: 3.0 - a + 2.0 / (b * b + 1.0) - (-a),
    "power": lambda a, b: (a * a + 1.0) ** 1.5 + b ** 3,
    "exp-log": lambda a, b: (a.exp() + b * b).log(),
    "sqrt": lambda a, b: (a * a + b * b + 1.0).sqrt(),
    "tanh-sigmoid": lambda a, b: a.tanh() * b.sigmoid(),
    "relu": lambda a, b: (a * b).relu() + (a - b).relu(),
}


def finite_difference(fn, a: float, b: float, eps: float = 1e-6) -> tuple:
    da = (fn(Value(a + eps), Value(b)).data - fn(Value(a - eps), Value(b)).data) / (2 * eps)
    db = (fn(Value(a), Value(b + eps)).data - fn(Value(a), Value(b - eps)).data) / (2 * eps)
    return da, db


@pytest.mark.parametrize("name", sorted(SCALAR_EXPRESSIONS))
@pytest.mark.parametrize("a, b", [(0.7, -1.3), (-0.4, 2.1), (1.9, 0.6)])
def test_value_gradients_match_finite_differences(name, a, b):
    fn = SCALAR_EXPRESSIONS[name]
    va, vb = Value(a), Value(b)
    fn(va, vb).backward()
    da, db = finite_difference(fn, a, b)
    assert va.grad == pytest.approx(da, rel=1e-6, abs=1e-7), name
    assert vb.grad == pytest.approx(db, rel=1e-6, abs=1e-7), name


@pytest.mark.parametrize("name", sorted(SCALAR_EXPRESSIONS))
def test_value_and_tensor_agree_on_values_and_gradients(name):
    fn = SCALAR_EXPRESSIONS[name]
    va, vb = Value(0.8), Value(-1.1)
    v_out = fn(va, vb)
    v_out.backward()
    ta = Tensor(np.float64(0.8), requires_grad=True)
    tb = Tensor(np.float64(-1.1), requires_grad=True)
    t_out = fn(ta, tb)
    t_out.backward()
    assert t_out.item() == pytest.approx(v_out.data, rel=1e-12)
    assert ta.grad.item() == pytest.approx(va.grad, rel=1e-12, abs=1e-15)
    assert tb.grad.item() == pytest.approx(vb.grad, rel=1e-12, abs=1e-15)


def test_value_attributes():
    a = Value(2.0, label="a")
    b = a * 3
    assert (a.data, a.grad, a.op, a.parents, a.label) == (2.0, 0.0, "", (), "a")
    assert b.op == "*" and b.parents[0] is a and b.parents[1].data == 3.0
    assert "label='a'" in repr(a)


def test_value_is_safe_at_extremes():
    assert Value(1000.0).sigmoid().data == 1.0
    assert Value(-1000.0).sigmoid().data == 0.0
    assert Value(1000.0).tanh().data == 1.0
    assert Value(-1000.0).tanh().data == -1.0
    with pytest.warns(RuntimeWarning):
        assert math.isinf(Value(1000.0).exp().data)
    with pytest.warns(RuntimeWarning):
        assert math.isnan(Value(-1.0).log().data)
    with pytest.warns(RuntimeWarning):
        assert math.isnan((Value(-8.0) ** 0.5).data)
    with pytest.warns(RuntimeWarning):
        assert math.isinf((Value(0.0) ** -1).data)
    s = Value(-1000.0)
    s.sigmoid().backward()
    assert s.grad == 0.0


def test_value_rejects_non_numbers():
    with pytest.raises(TypeError, match="real number"):
        Value("3")
    with pytest.raises(TypeError, match="number exponent"):
        Value(2.0) ** Value(3.0)


def test_value_leaf_gradients_accumulate_across_backward_calls():
    a = Value(3.0)
    b = a * a
    b.backward()
    b.backward()
    assert a.grad == 12.0  # 2 · 2a
    assert b.grad == 1.0   # an intermediate (here the root) is recomputed, not accumulated
    a.zero_grad()
    assert a.grad == 0.0


# --- graph shapes, for both engines ---------------------------------------------------------------

def scalar_tensor(x: float) -> Tensor:
    return Tensor(np.float64(x), requires_grad=True)


@pytest.mark.parametrize("make", [Value, scalar_tensor], ids=["Value", "Tensor"])
def test_reused_node(make):
    a = make(5.0)
    b = a + a
    c = b + b
    c.backward()
    assert float(a.grad) == 4.0


@pytest.mark.parametrize("make", [Value, scalar_tensor], ids=["Value", "Tensor"])
def test_diamond(make):
    a = make(3.0)
    left, right = a * 2.0, a * a  # two paths from a to d
    d = left * right              # d = 2a · a² = 2a³,  ∂d/∂a = 6a² = 54
    d.backward()
    assert float(a.grad) == pytest.approx(54.0)


@pytest.mark.parametrize("make", [Value, scalar_tensor], ids=["Value", "Tensor"])
def test_chain_of_100_000_ops_backprops_without_recursion_error(make):
    a = make(1.0)
    x = a
    for _ in range(100_000):
        x = x * 1.0 + 0.0  # 200 000 ops, each with derivative 1
    x.backward()
    assert float(a.grad) == 1.0


def test_sum_of_many_values_does_not_hit_the_recursion_limit():
    values = [Value(float(i)) for i in range(5000)]
    total = sum(values)
    total.backward()
    assert all(v.grad == 1.0 for v in values)


def test_topological_order_is_deterministic_and_parents_first():
    a, b, c = Value(1.0, "a"), Value(2.0, "b"), Value(3.0, "c")
    out = a * b + c
    order = topological_order(out)
    assert [n.label for n in order[:2]] == ["a", "b"]
    assert order[-1] is out and len(order) == 5
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        for parent in node.parents:
            assert position[id(parent)] < position[id(node)]
    assert [id(n) for n in topological_order(out)] == [id(n) for n in order]


class _Node:
    """A bare graph node: only what topological_order reads."""

    def __init__(self, *parents):
        self.parents = parents


def _recursive_post_order(root) -> list:
    """The order topological_order promises, written the obvious (recursive) way."""
    order, seen = [], set()

    def visit(node):
        seen.add(id(node))
        for parent in node.parents:
            if id(parent) not in seen:
                visit(parent)
        order.append(node)

    visit(root)
    return order


@pytest.mark.parametrize("seed", range(40))
def test_topological_order_is_the_recursive_post_order_on_random_graphs(seed):
    # Random DAGs with leaves, repeated operands (a · a), shared subgraphs and 0–3 parents per
    # node: the iterative walk must give exactly a recursive DFS's post-order, the order the
    # renderer's node ids and the explorer rely on.
    rng = np.random.default_rng(seed)
    nodes = [_Node() for _ in range(int(rng.integers(1, 6)))]
    for _ in range(int(rng.integers(1, 60))):
        count = int(rng.integers(0, 4))
        nodes.append(_Node(*(nodes[int(i)] for i in rng.integers(0, len(nodes), count))))
    root = _Node(*nodes[-3:])
    assert topological_order(root) == _recursive_post_order(root)
