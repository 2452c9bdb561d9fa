"""PyTorch is the reference: every Tensor op gives torch's values and gradients, in float64.

What this module proves, case by case (one table row per op and shape):

* the forward result of each Tensor op equals PyTorch's (shape and values);
* after ``out.backward(gradient=G)`` with a random upstream gradient G of the output's shape,
  every input's ``.grad`` equals the one PyTorch computes for the same G — so each backward is
  the true vector-Jacobian product, including broadcasting, batched and 1-D matmul, reductions
  over any axes, repeated integer indices and the cross-entropy gather ``x[arange(N), t]``;
* Python scalars mixed with float tensors, and the constructor, give PyTorch's dtypes (the one
  deliberate difference, an int tensor with a Python float, is pinned by its own test);
* the scalar engine `Value` gives the values and gradients of PyTorch 0-d float64 tensors.

Tolerances are rtol=1e-10, atol=1e-12: both libraries compute in float64, so any difference
beyond rounding is a wrong formula, not noise. The module is skipped when torch is missing.
"""
from __future__ import annotations

import operator
import zlib
from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinygrad_bn import Tensor, Value  # noqa: E402  (after the skip, on purpose)

RTOL, ATOL = 1e-10, 1e-12


# --- the table: one Case per op and shapes ----------------------------------------------------

class Case(NamedTuple):
    """One comparison: ``ours`` on Tensors against ``theirs`` on torch tensors."""

    name: str                     # pytest id and failure-message prefix: op and shapes
    ours: Callable[..., Any]      # Tensor inputs → Tensor output
    theirs: Callable[..., Any]    # torch inputs → torch output
    inputs: tuple                 # one (shape, domain) per input; see _sample for domains


def _same(name: str, fn: Callable[..., Any], *inputs: tuple) -> Case:
    """A case whose function is spelled the same way in both libraries (x + y, x.exp())."""
    return Case(name, fn, fn, inputs)


def _shape_id(shape: tuple) -> str:
    return "(" + ",".join(str(n) for n in shape) + ")"


def _torch_dim(axis: Any, ndim: int) -> tuple | int:
    """Our axis=None means every axis; torch's amax wants them listed."""
    return tuple(range(ndim)) if axis is None else axis


# Domains keep every op on the smooth part of its domain: log, sqrt and x**0.5 get positive
# inputs, divisors and x**-1 stay away from 0, relu and max get continuous random data (no
# exact zeros or ties), "large" logits check that softmax does not overflow.
def _sample(rng: np.random.Generator, shape: tuple, domain: str) -> np.ndarray:
    if domain == "any":
        return rng.standard_normal(shape)
    if domain == "pos":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "nonzero":
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        return sign * rng.uniform(0.5, 2.0, shape)
    if domain == "large":
        return 50.0 * rng.standard_normal(shape)
    raise ValueError(f"unknown domain {domain!r}")


BINARY_SHAPES = [((3, 1), (1, 4)), ((5,), (2, 5)), ((2, 5), (5,)), ((), (2, 3)), ((2, 3), ()),
                 ((2, 3), (2, 3))]
BINARY_OPS = [("add", "+", operator.add), ("sub", "-", operator.sub),
              ("mul", "*", operator.mul), ("div", "/", operator.truediv)]


def _binary_cases() -> list:
    cases = []
    for name, symbol, fn in BINARY_OPS:
        for a, b in BINARY_SHAPES:
            b_domain = "nonzero" if symbol == "/" else "any"
            label = f"{name}{_shape_id(a)}{symbol}{_shape_id(b)}"
            cases.append(_same(label, fn, (a, "any"), (b, b_domain)))
    # The same tensor on both sides: two contributions to one .grad must add up.
    cases.append(_same("mul-self x*x(2,3)", lambda x: x * x, ((2, 3), "any")))
    cases.append(_same("add-self x+x(2,3)", lambda x: x + x, ((2, 3), "any")))
    cases.append(_same("div-self x/x(2,3)", lambda x: x / x, ((2, 3), "nonzero")))
    return cases


def _scalar_cases() -> list:
    """Tensor with a Python number on either side, and unary minus."""
    ops = [
        ("x+3", lambda x: x + 3, "any"), ("3+x", lambda x: 3 + x, "any"),
        ("x-3", lambda x: x - 3, "any"), ("3-x", lambda x: 3 - x, "any"),
        ("x*2.5", lambda x: x * 2.5, "any"), ("2.5*x", lambda x: 2.5 * x, "any"),
        ("x/2", lambda x: x / 2, "any"), ("2/x", lambda x: 2 / x, "nonzero"),
        ("x/0.25", lambda x: x / 0.25, "any"), ("1.5/x", lambda x: 1.5 / x, "nonzero"),
        ("-x", lambda x: -x, "any"),
    ]
    cases = []
    for label, fn, domain in ops:
        for shape in [(2, 3), ()]:
            cases.append(_same(f"scalar {label} x{_shape_id(shape)}", fn, (shape, domain)))
    return cases


def _pow_cases() -> list:
    cases = []
    for k, domain in [(2, "any"), (3, "any"), (0.5, "pos"), (-1, "nonzero"), (2.0, "any"),
                      (-0.5, "pos")]:
        for shape in [(2, 3), ()]:
            fn = (lambda kk: lambda x: x ** kk)(k)
            cases.append(_same(f"pow x{_shape_id(shape)}**{k}", fn, (shape, domain)))
    return cases


MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((3, 4), (2, 4, 5)),
                 ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 5)), ((3, 4), (4,)),
                 ((4,), (4,)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,))]


def _matmul_cases() -> list:
    return [_same(f"matmul{_shape_id(a)}@{_shape_id(b)}", operator.matmul, (a, "any"),
                  (b, "any")) for a, b in MATMUL_SHAPES]


REDUCE_AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]


def _reduction_cases() -> list:
    shape = (2, 3, 4)
    cases = []
    for axis in REDUCE_AXES:
        for keep in (False, True):
            dim = _torch_dim(axis, len(shape))
            tail = f"x{_shape_id(shape)} axis={axis} keepdims={keep}"
            cases.append(Case(f"sum {tail}",
                              lambda x, a=axis, k=keep: x.sum(a, keepdims=k),
                              lambda x, d=dim, k=keep: x.sum(dim=d, keepdim=k),
                              ((shape, "any"),)))
            cases.append(Case(f"mean {tail}",
                              lambda x, a=axis, k=keep: x.mean(a, keepdims=k),
                              lambda x, d=dim, k=keep: x.mean(dim=d, keepdim=k),
                              ((shape, "any"),)))
            cases.append(Case(f"max {tail}",
                              lambda x, a=axis, k=keep: x.max(a, keepdims=k),
                              lambda x, d=dim, k=keep: torch.amax(x, dim=d, keepdim=k),
                              ((shape, "any"),)))
            for c in (0, 1):
                cases.append(Case(f"var {tail} correction={c}",
                                  lambda x, a=axis, k=keep, c=c: x.var(a, k, correction=c),
                                  lambda x, d=dim, k=keep, c=c: torch.var(
                                      x, dim=d, keepdim=k, correction=c),
                                  ((shape, "any"),)))
    # The defaults: no arguments at all (var's default correction is 1, as in torch).
    cases.append(Case("sum x(3,4) default", lambda x: x.sum(), lambda x: x.sum(),
                      (((3, 4), "any"),)))
    cases.append(Case("mean x(3,4) default", lambda x: x.mean(), lambda x: x.mean(),
                      (((3, 4), "any"),)))
    cases.append(Case("max x(3,4) default", lambda x: x.max(), lambda x: x.max(),
                      (((3, 4), "any"),)))
    cases.append(Case("var x(3,4) default", lambda x: x.var(), lambda x: x.var(),
                      (((3, 4), "any"),)))
    return cases


def _unary_cases() -> list:
    ops = [("exp", "any"), ("log", "pos"), ("sqrt", "pos"), ("tanh", "any"),
           ("sigmoid", "any"), ("relu", "any")]
    cases = []
    for name, domain in ops:
        for shape in [(2, 3), (), (2, 3, 4)]:
            fn = (lambda n: lambda x: getattr(x, n)())(name)
            cases.append(_same(f"{name} x{_shape_id(shape)}", fn, (shape, domain)))
    # Saturated sigmoid / tanh: large |x| must give torch's (tiny, non-nan) gradients.
    cases.append(_same("sigmoid x(2,3) large", lambda x: x.sigmoid(), ((2, 3), "large")))
    cases.append(_same("tanh x(2,3) large", lambda x: x.tanh(), ((2, 3), "large")))
    return cases


def _softmax_cases() -> list:
    cases = []
    for shape, axis, domain in [((3, 5), 0, "any"), ((3, 5), 1, "any"), ((3, 5), -1, "any"),
                                ((2, 3, 4), 1, "any"), ((2, 3, 4), -3, "any"),
                                ((2, 3, 4), -1, "large"), ((5,), 0, "any")]:
        tail = f"x{_shape_id(shape)} axis={axis}" + (" large" if domain == "large" else "")
        cases.append(Case(f"log_softmax {tail}",
                          lambda x, a=axis: x.log_softmax(a),
                          lambda x, a=axis: torch.log_softmax(x, dim=a),
                          ((shape, domain),)))
        cases.append(Case(f"softmax {tail}",
                          lambda x, a=axis: x.softmax(a),
                          lambda x, a=axis: torch.softmax(x, dim=a),
                          ((shape, domain),)))
    cases.append(Case("log_softmax x(3,5) default", lambda x: x.log_softmax(),
                      lambda x: torch.log_softmax(x, dim=-1), (((3, 5), "any"),)))
    cases.append(Case("softmax x(3,5) default", lambda x: x.softmax(),
                      lambda x: torch.softmax(x, dim=-1), (((3, 5), "any"),)))
    return cases


def _shape_op_cases() -> list:
    x34, x234 = (((3, 4), "any"),), (((2, 3, 4), "any"),)
    return [
        _same("reshape x(3,4) -> 2,6", lambda x: x.reshape(2, 6), *x34),
        _same("reshape x(3,4) -> (2,6)", lambda x: x.reshape((2, 6)), *x34),
        _same("reshape x(3,4) -> 4,-1", lambda x: x.reshape(4, -1), *x34),
        _same("reshape x(3,4) -> -1", lambda x: x.reshape(-1), *x34),
        _same("reshape x(2,3,4) -> (6,4)", lambda x: x.reshape((6, 4)), *x234),
        _same("reshape x() -> (1,1)", lambda x: x.reshape(1, 1), ((), "any")),
        _same("transpose x(3,4) 0,1", lambda x: x.transpose(0, 1), *x34),
        _same("transpose x(2,3,4) 0,2", lambda x: x.transpose(0, 2), *x234),
        _same("transpose x(2,3,4) -1,1", lambda x: x.transpose(-1, 1), *x234),
        _same("transpose x(2,3,4) 1,1", lambda x: x.transpose(1, 1), *x234),
        _same("permute x(2,3,4) 2,0,1", lambda x: x.permute(2, 0, 1), *x234),
        _same("permute x(2,3,4) 1,0,2", lambda x: x.permute(1, 0, 2), *x234),
        _same("permute x(2,3,4) -1,0,1", lambda x: x.permute(-1, 0, 1), *x234),
        _same("permute x(3,4) 1,0", lambda x: x.permute(1, 0), *x34),
        _same("T x(3,4)", lambda x: x.T, *x34),
    ]


def _getitem_cases() -> list:
    """Each index is written once; torch gets numpy arrays converted to tensors."""
    targets = np.array([1, 0, 3, 3, 2])
    ours_gather = (np.arange(5), targets)
    torch_gather = (torch.arange(5), torch.from_numpy(targets))
    x34, x234 = (((3, 4), "any"),), (((2, 3, 4), "any"),)
    cases = [
        _same("getitem x(3,4)[1]", lambda x: x[1], *x34),
        _same("getitem x(3,4)[-1]", lambda x: x[-1], *x34),
        _same("getitem x(3,4)[1:3]", lambda x: x[1:3], *x34),
        _same("getitem x(3,4)[:, ::2]", lambda x: x[:, ::2], *x34),
        Case("getitem x(3,4)[::-1, 1:]", lambda x: x[::-1, 1:],  # torch has no negative step
             lambda x: torch.flip(x, [0])[:, 1:], x34),
        _same("getitem x(3,4)[2, 3]", lambda x: x[2, 3], *x34),
        _same("getitem x(2,3,4)[..., 1]", lambda x: x[..., 1], *x234),
        _same("getitem x(2,3,4)[1, :, 1:3]", lambda x: x[1, :, 1:3], *x234),
        _same("getitem x(2,3,4)[:, None, 0]", lambda x: x[:, None, 0], *x234),
        _same("getitem x(3,4)[[0,0,2]]", lambda x: x[[0, 0, 2]], *x34),
        _same("getitem x(3,4)[[2,0,2], 1:]", lambda x: x[[2, 0, 2], 1:], *x34),
        _same("getitem x(3,4)[:, [3,3,3,0]]", lambda x: x[:, [3, 3, 3, 0]], *x34),
        Case("getitem x(3,4)[ndarray [1,1,0]]",
             lambda x: x[np.array([1, 1, 0])],
             lambda x: x[torch.tensor([1, 1, 0])], x34),
        Case("getitem x(5,4)[arange(5), targets] (cross-entropy gather)",
             lambda x: x[ours_gather], lambda x: x[torch_gather], (((5, 4), "any"),)),
        Case("getitem x(5,4)[[0,0,4], [1,1,2]] (repeated pairs)",
             lambda x: x[np.array([0, 0, 4]), np.array([1, 1, 2])],
             lambda x: x[torch.tensor([0, 0, 4]), torch.tensor([1, 1, 2])],
             (((5, 4), "any"),)),
        Case("getitem x(3,4)[bool mask]",
             lambda x: x[np.array([True, False, True])],
             lambda x: x[torch.tensor([True, False, True])], x34),
    ]
    return cases


def _composite_cases() -> list:
    """Ops chained the way a model uses them; each output is reduced to a scalar loss."""
    targets = np.array([2, 0, 1, 1])

    def ours_cross_entropy(logits: Tensor) -> Tensor:
        picked = logits.log_softmax(axis=1)[np.arange(4), targets]
        return -picked.mean()

    def torch_cross_entropy(logits: Any) -> Any:
        return torch.nn.functional.cross_entropy(logits, torch.from_numpy(targets))

    def batchnorm(x: Any, gamma: Any, beta: Any) -> Any:
        mean = x.mean(0, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(0, keepdims=True)
        return (centred / (var + 1e-5) ** 0.5 * gamma + beta).tanh()

    def mlp(x: Any, w1: Any, b1: Any, w2: Any) -> Any:
        return ((x @ w1 + b1).relu() @ w2).sigmoid()

    return [
        Case("cross-entropy logits(4,3)", ours_cross_entropy, torch_cross_entropy,
             (((4, 3), "any"),)),
        _same("batchnorm-tanh x(6,3) gamma(3,) beta(3,)", batchnorm,
              ((6, 3), "any"), ((3,), "any"), ((3,), "any")),
        _same("mlp x(5,3)@w1(3,4)+b1(4,) relu @w2(4,2) sigmoid", mlp,
              ((5, 3), "any"), ((3, 4), "any"), ((4,), "any"), ((4, 2), "any")),
    ]


CASES = (_binary_cases() + _scalar_cases() + _pow_cases() + _matmul_cases()
         + _reduction_cases() + _unary_cases() + _softmax_cases() + _shape_op_cases()
         + _getitem_cases() + _composite_cases())


# --- the check shared by every row --------------------------------------------------------------

def _describe(case: Case) -> str:
    shapes = ", ".join(_shape_id(shape) for shape, _ in case.inputs)
    return f"{case.name} [input shapes {shapes}]"


def _assert_close(ours: np.ndarray, theirs: np.ndarray, where: str) -> None:
    assert ours.shape == theirs.shape, f"{where}: shape {ours.shape}, torch {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=where)


def test_case_names_are_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_forward_and_backward_match_torch(case: Case) -> None:
    where = _describe(case)
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))  # fixed data per case
    arrays = [_sample(rng, shape, domain) for shape, domain in case.inputs]
    ours_in = [Tensor(a, requires_grad=True) for a in arrays]
    torch_in = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]

    ours_out = case.ours(*ours_in)
    torch_out = case.theirs(*torch_in)
    assert ours_out.dtype == np.float64, f"{where}: output dtype {ours_out.dtype}"
    _assert_close(ours_out.data, torch_out.detach().numpy(), f"{where}: forward")

    upstream = np.asarray(rng.standard_normal(ours_out.shape))  # G = ∂L/∂out
    ours_out.backward(gradient=upstream)
    torch_out.backward(torch.from_numpy(upstream.copy()))
    for i, (ours_x, torch_x) in enumerate(zip(ours_in, torch_in)):
        label = f"{where}: grad of input {i}"
        assert ours_x.grad is not None, f"{label} is None"
        assert ours_x.grad.dtype == np.float64, f"{label} has dtype {ours_x.grad.dtype}"
        _assert_close(np.asarray(ours_x.grad), torch_x.grad.numpy(), label)


@pytest.mark.parametrize("name, symbol, fn", BINARY_OPS, ids=[op[0] for op in BINARY_OPS])
@pytest.mark.parametrize("needs", ["a", "b"])
def test_binary_op_with_one_operand_requiring_grad(name: str, symbol: str, fn: Callable,
                                                   needs: str) -> None:
    """Only the operand with requires_grad=True gets a gradient; the other stays None."""
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((3, 1)), rng.uniform(0.5, 2.0, (1, 4))
    where = f"{name} a(3,1) {symbol} b(1,4), only {needs} requires grad"
    ours = [Tensor(a, requires_grad=needs == "a"), Tensor(b, requires_grad=needs == "b")]
    theirs = [torch.tensor(a, requires_grad=needs == "a"),
              torch.tensor(b, requires_grad=needs == "b")]
    upstream = rng.standard_normal((3, 4))
    fn(*ours).backward(gradient=upstream)
    fn(*theirs).backward(torch.from_numpy(upstream))
    for i, (ours_x, torch_x) in enumerate(zip(ours, theirs)):
        if torch_x.grad is None:
            assert ours_x.grad is None, f"{where}: input {i} got a gradient it did not ask for"
        else:
            _assert_close(ours_x.grad, torch_x.grad.numpy(), f"{where}: grad of input {i}")


# --- dtypes ---------------------------------------------------------------------------------------

def _f32(values: Any = ((1.0, 2.0), (3.0, 4.0))) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def _f64(values: Any = ((1.0, 2.0), (3.0, 4.0))) -> np.ndarray:
    return np.array(values, dtype=np.float64)


DTYPE_CASES = [
    # (id, makes our tensor, makes the same torch tensor)
    ("Tensor([1.0])", lambda: Tensor([1.0]), lambda: torch.tensor([1.0])),
    ("Tensor([1])", lambda: Tensor([1]), lambda: torch.tensor([1])),
    ("Tensor(1.5)", lambda: Tensor(1.5), lambda: torch.tensor(1.5)),
    ("Tensor([[1, 2], [3, 4]])", lambda: Tensor([[1, 2], [3, 4]]),
     lambda: torch.tensor([[1, 2], [3, 4]])),
    ("Tensor([True])", lambda: Tensor([True]), lambda: torch.tensor([True])),
    ("Tensor(float64 ndarray)", lambda: Tensor(_f64()), lambda: torch.tensor(_f64())),
    ("float32 * 2.0", lambda: Tensor(_f32()) * 2.0, lambda: torch.tensor(_f32()) * 2.0),
    ("2.0 * float32", lambda: 2.0 * Tensor(_f32()), lambda: 2.0 * torch.tensor(_f32())),
    ("float32 * 2", lambda: Tensor(_f32()) * 2, lambda: torch.tensor(_f32()) * 2),
    ("float64 + 0.1", lambda: Tensor(_f64()) + 0.1, lambda: torch.tensor(_f64()) + 0.1),
    ("float32 + 0.1", lambda: Tensor(_f32()) + 0.1, lambda: torch.tensor(_f32()) + 0.1),
    ("3 - float32", lambda: 3 - Tensor(_f32()), lambda: 3 - torch.tensor(_f32())),
    ("2 / float32", lambda: 2 / Tensor(_f32()), lambda: 2 / torch.tensor(_f32())),
    ("float32 / 2", lambda: Tensor(_f32()) / 2, lambda: torch.tensor(_f32()) / 2),
    ("float32 ** 2", lambda: Tensor(_f32()) ** 2, lambda: torch.tensor(_f32()) ** 2),
    ("float32 ** 0.5", lambda: Tensor(_f32()) ** 0.5, lambda: torch.tensor(_f32()) ** 0.5),
    ("float32.mean()", lambda: Tensor(_f32()).mean(), lambda: torch.tensor(_f32()).mean()),
    ("float32.var()", lambda: Tensor(_f32()).var(), lambda: torch.tensor(_f32()).var()),
    ("float32.softmax()", lambda: Tensor(_f32()).softmax(),
     lambda: torch.tensor(_f32()).softmax(-1)),
    ("float32 @ float32", lambda: Tensor(_f32()) @ Tensor(_f32()),
     lambda: torch.tensor(_f32()) @ torch.tensor(_f32())),
    ("float32 + float64", lambda: Tensor(_f32()) + Tensor(_f64()),
     lambda: torch.tensor(_f32()) + torch.tensor(_f64())),
    ("int64 + 1", lambda: Tensor([1, 2]) + 1, lambda: torch.tensor([1, 2]) + 1),
    ("int64 * 3", lambda: Tensor([1, 2]) * 3, lambda: torch.tensor([1, 2]) * 3),
]


@pytest.mark.parametrize("make_ours, make_torch", [case[1:] for case in DTYPE_CASES],
                         ids=[case[0] for case in DTYPE_CASES])
def test_dtype_matches_torch(make_ours: Callable, make_torch: Callable) -> None:
    ours, theirs = make_ours(), make_torch()
    torch_name = str(theirs.dtype).removeprefix("torch.")
    assert ours.dtype == np.dtype(torch_name), f"ours {ours.dtype}, torch {theirs.dtype}"
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)


def test_int_tensor_with_python_float_follows_numpy_not_torch() -> None:
    """The one deliberate difference: an int64 tensor mixed with a Python float.

    torch gives its default float32; we follow numpy (``np.array([1, 2]) * 0.5`` is float64),
    as tensor.py says ("data types otherwise follow numpy's promotion rules") and
    test_tensor.py pins. If this test fails, the library changed sides: update both.
    """
    assert (torch.tensor([1, 2]) * 0.5).dtype == torch.float32
    assert (Tensor([1, 2]) * 0.5).dtype == np.float64
    assert (Tensor([1, 2]) + 0.5).dtype == np.float64


def test_float32_gradients_stay_float32() -> None:
    """A float32 graph mixed with Python floats leaves float32 gradients, as torch does."""
    data = _f32([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    ours = Tensor(data, requires_grad=True)
    theirs = torch.tensor(data, requires_grad=True)
    (2.0 * ours.tanh() / 3.0 + 0.5).softmax(1).var().backward()
    (2.0 * theirs.tanh() / 3.0 + 0.5).softmax(1).var().backward()
    assert ours.grad.dtype == np.float32
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-4, atol=1e-6)


# --- the scalar engine ------------------------------------------------------------------------

VALUE_EXPRESSIONS = [
    # (id, f(a, b, c); the same code runs on Values and on 0-d torch tensors)
    ("a*b + b**3 - a/b", lambda a, b, c: a * b + b ** 3 - a / b),
    ("(2a+1).tanh()*b.exp() - 3/a", lambda a, b, c: (a * 2 + 1).tanh() * b.exp() - 3 / a),
    ("log(sigmoid(ab) + relu(c))", lambda a, b, c: ((a * b).sigmoid() + c.relu()).log()),
    ("sqrt(a²+b²) - (2-a)·(-b) + a**0.5",
     lambda a, b, c: (a ** 2 + b ** 2).sqrt() - (2 - a) * -b + a ** 0.5),
    ("a·a + exp(a)·a (reuse)", lambda a, b, c: a * a + a.exp() * a),
    ("relu(b-a)·a (inactive relu)", lambda a, b, c: (b - a).relu() * a + c),
    ("1/(1+exp(-c)) - sigmoid(c) + c**-1", lambda a, b, c: 1 / (1 + (-c).exp())
     - c.sigmoid() + c ** -1),
    ("neuron tanh(a·w + b) chain", lambda a, b, c: ((a * 0.3 + b * -1.2 + c).tanh() * 4.0
                                                    - 1.0) ** 2 / 2.0),
]


@pytest.mark.parametrize("expression", [e[1] for e in VALUE_EXPRESSIONS],
                         ids=[e[0] for e in VALUE_EXPRESSIONS])
@pytest.mark.parametrize("a, b, c", [(1.3, -0.7, 0.4), (0.2, 2.1, 1.7)],
                         ids=["a=1.3,b=-0.7,c=0.4", "a=0.2,b=2.1,c=1.7"])
def test_value_matches_torch_scalars(expression: Callable, a: float, b: float,
                                     c: float) -> None:
    ours = [Value(a), Value(b), Value(c)]
    theirs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, b, c)]
    ours_out = expression(*ours)
    torch_out = expression(*theirs)
    where = f"Value expression at a={a}, b={b}, c={c}"
    np.testing.assert_allclose(ours_out.data, torch_out.item(), rtol=RTOL, atol=ATOL,
                               err_msg=f"{where}: forward")
    ours_out.backward()
    torch_out.backward()
    for name, ours_x, torch_x in zip("abc", ours, theirs):
        expected = 0.0 if torch_x.grad is None else torch_x.grad.item()
        np.testing.assert_allclose(ours_x.grad, expected, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{where}: ∂out/∂{name}")
