"""Every tensor op's backward, checked against central finite differences in float64.

One table lists (op, input shapes); each row runs through the library's own `gradcheck`.
Hypothesis then drives random shapes and values through the elementwise ops.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_bn import Function, GradcheckError, Tensor, gradcheck

rng = np.random.default_rng(1234)

BROADCAST_PAIRS = [((3, 1), (1, 4)), ((5,), (2, 5)), ((), (2, 3)), ((2, 3), (2, 3)),
                   ((2, 1, 3), (4, 1))]


def positive(shape):
    return rng.uniform(0.5, 2.0, shape)


def anything(shape):
    return rng.normal(size=shape)


def away_from_zero(shape):
    values = rng.uniform(0.3, 2.0, shape)
    return values * rng.choice([-1.0, 1.0], size=shape)


# (name, function of tensors, list of (shape, sampler)) — each row one gradcheck.
CASES = []
for a_shape, b_shape in BROADCAST_PAIRS:
    pair = [(a_shape, anything), (b_shape, anything)]
    tag = f"{a_shape}x{b_shape}"
    CASES += [
        (f"add {tag}", lambda a, b: a + b, pair),
        (f"sub {tag}", lambda a, b: a - b, pair),
        (f"mul {tag}", lambda a, b: a * b, pair),
        (f"div {tag}", lambda a, b: a / b, [(a_shape, anything), (b_shape, away_from_zero)]),
    ]
CASES += [
    ("radd", lambda a: 3.0 + a, [((2, 3), anything)]),
    ("rsub", lambda a: 3.0 - a, [((2, 3), anything)]),
    ("rmul", lambda a: 2.5 * a, [((2, 3), anything)]),
    ("rdiv", lambda a: 2.0 / a, [((2, 3), away_from_zero)]),
    ("neg", lambda a: -a, [((2, 3), anything)]),
    ("pow 2", lambda a: a ** 2, [((2, 3), anything)]),
    ("pow 3", lambda a: a ** 3, [((4,), anything)]),
    ("pow 0.5", lambda a: a ** 0.5, [((2, 3), positive)]),
    ("pow -1.5", lambda a: a ** -1.5, [((2, 3), positive)]),
    ("exp", lambda a: a.exp(), [((2, 3), anything)]),
    ("log", lambda a: a.log(), [((2, 3), positive)]),
    ("sqrt", lambda a: a.sqrt(), [((2, 3), positive)]),
    ("tanh", lambda a: a.tanh(), [((2, 3), anything)]),
    ("sigmoid", lambda a: a.sigmoid(), [((2, 3), anything)]),
    ("relu", lambda a: a.relu(), [((3, 4), away_from_zero)]),
    ("matmul 2d", lambda a, b: a @ b, [((3, 4), anything), ((4, 2), anything)]),
    ("matmul batched", lambda a, b: a @ b, [((2, 3, 4), anything), ((2, 4, 5), anything)]),
    ("matmul batch-broadcast", lambda a, b: a @ b, [((3, 4), anything), ((2, 4, 5), anything)]),
    ("matmul vec@mat", lambda a, b: a @ b, [((4,), anything), ((4, 3), anything)]),
    ("matmul mat@vec", lambda a, b: a @ b, [((3, 4), anything), ((4,), anything)]),
    ("sum all", lambda a: a.sum(), [((2, 3), anything)]),
    ("sum axis0", lambda a: a.sum(0), [((2, 3), anything)]),
    ("sum axis-1 keepdims", lambda a: a.sum(-1, keepdims=True), [((2, 3), anything)]),
    ("sum axes(0,2)", lambda a: a.sum((0, 2)), [((2, 3, 4), anything)]),
    ("mean all", lambda a: a.mean(), [((2, 3), anything)]),
    ("mean axis1 keepdims", lambda a: a.mean(1, keepdims=True), [((2, 3), anything)]),
    ("max all", lambda a: a.max(), [((2, 3), anything)]),
    ("max axis0", lambda a: a.max(0), [((3, 4), anything)]),
    ("max axis1 keepdims", lambda a: a.max(1, keepdims=True), [((3, 4), anything)]),
    ("var all unbiased", lambda a: a.var(), [((2, 3), anything)]),
    ("var axis0 biased", lambda a: a.var(0, correction=0), [((4, 3), anything)]),
    ("var axis1 keepdims", lambda a: a.var(1, keepdims=True), [((2, 5), anything)]),
    ("log_softmax", lambda a: a.log_softmax(), [((3, 4), anything)]),
    ("log_softmax axis0", lambda a: a.log_softmax(axis=0), [((3, 4), anything)]),
    ("softmax", lambda a: a.softmax(-1), [((2, 5), anything)]),
    ("reshape", lambda a: a.reshape(3, 2) * Tensor(np.arange(6.0).reshape(3, 2)),
     [((2, 3), anything)]),
    ("reshape tuple", lambda a: a.reshape((6,)), [((2, 3), anything)]),
    ("transpose", lambda a: a.transpose(0, 2), [((2, 3, 4), anything)]),
    ("permute", lambda a: a.permute(2, 0, 1), [((2, 3, 4), anything)]),
    ("T", lambda a: a.T, [((2, 3), anything)]),
    ("getitem slice", lambda a: a[1:, ::2], [((3, 4), anything)]),
    ("getitem int", lambda a: a[1], [((3, 4), anything)]),
    ("getitem repeated", lambda a: a[[0, 0, 2]], [((3, 4), anything)]),
    ("getitem cross-entropy pattern",
     lambda a: a[np.arange(3), np.array([1, 1, 0])], [((3, 4), anything)]),
    ("reused operand", lambda a: a * a + a, [((2, 2), anything)]),
]


@pytest.mark.parametrize("name, fn, specs", CASES, ids=[c[0] for c in CASES])
def test_backward_matches_finite_differences(name, fn, specs):
    inputs = [Tensor(sampler(shape), requires_grad=True, dtype=np.float64)
              for shape, sampler in specs]
    assert gradcheck(fn, *inputs), name


def test_gradcheck_leaves_no_gradients_on_inputs():
    x = Tensor(anything((2, 3)), requires_grad=True, dtype=np.float64)
    gradcheck(lambda t: (t * t).sum(), x)
    assert x.grad is None


class WrongSquare(Function):
    """y = x², with a deliberately wrong backward (forgets the factor 2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return (grad_output * x,)


def test_wrong_backward_fails_gradcheck_naming_the_element():
    x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, dtype=np.float64)
    with pytest.raises(GradcheckError) as info:
        gradcheck(WrongSquare.apply, x)
    message = str(info.value)
    assert "input 0" in message and "(0, 0)" in message
    assert "expected 2" in message and "received 1" in message


class RightSquare(WrongSquare):
    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return (grad_output * 2 * x,)


def test_custom_function_with_correct_backward_passes():
    x = Tensor(anything((3,)), requires_grad=True, dtype=np.float64)
    assert gradcheck(RightSquare.apply, x)


ELEMENTWISE = {
    "exp": (lambda t: t.exp(), -3, 3),
    "tanh": (lambda t: t.tanh(), -5, 5),
    "sigmoid": (lambda t: t.sigmoid(), -8, 8),
    "log": (lambda t: t.log(), 0.2, 5),
    "sqrt": (lambda t: t.sqrt(), 0.2, 5),
    "square": (lambda t: t * t, -5, 5),
    "reciprocal": (lambda t: 1.0 / t, 0.3, 5),
}


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(ELEMENTWISE)),
       shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
       data=st.data())
def test_elementwise_ops_on_random_shapes_and_values(name, shape, data):
    fn, low, high = ELEMENTWISE[name]
    values = data.draw(hnp.arrays(np.float64, shape,
                                  elements=st.floats(low, high, allow_nan=False)))
    assert gradcheck(fn, Tensor(values, requires_grad=True))


@settings(max_examples=30, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       op=st.sampled_from(["+", "-", "*"]))
def test_binary_ops_on_random_broadcast_shapes(shapes, op):
    a_shape, b_shape = shapes.input_shapes
    a = Tensor(anything(a_shape), requires_grad=True, dtype=np.float64)
    b = Tensor(anything(b_shape), requires_grad=True, dtype=np.float64)
    fns = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}
    assert gradcheck(fns[op], a, b)


# --- gradients keep their input's dtype -------------------------------------------------------
# A float64 gradient for a float32 input spreads through the whole graph (every later op is
# promoted), so each op's gradient is checked to keep float32 as well as float64.

def _nn_cases():
    from tinygrad_bn.nn import functional as F
    targets = np.array([0, 2, 1])
    return [
        ("linear", lambda x, w, b: F.linear(x, w, b), [((3, 4), anything), ((2, 4), anything),
                                                       ((2,), anything)]),
        ("linear (N, L, in)", lambda x, w: F.linear(x, w), [((2, 3, 4), anything),
                                                            ((5, 4), anything)]),
        ("batch_norm fused", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
         [((5, 3), anything), ((3,), anything), ((3,), anything)]),
        ("batch_norm composed",
         lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, fused=False),
         [((4, 3, 2), anything), ((3,), anything), ((3,), anything)]),
        ("bce with logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y),
         [((4, 1), anything), ((4, 1), positive)]),
        ("bce", lambda p, y: F.binary_cross_entropy(p, y),
         [((5,), lambda s: rng.uniform(0.1, 0.9, s)), ((5,), lambda s: rng.uniform(0, 1, s))]),
        ("mse", lambda x, y: F.mse_loss(x, y), [((3, 2), anything), ((3, 2), anything)]),
        ("cross_entropy", lambda x: F.cross_entropy(x, targets), [((3, 4), anything)]),
        ("cross_entropy none", lambda x: F.cross_entropy(x, targets, reduction="none"),
         [((3, 4), anything)]),
    ]


DTYPE_CASES = CASES + _nn_cases()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, fn, specs", DTYPE_CASES, ids=[c[0] for c in DTYPE_CASES])
def test_gradients_keep_the_input_dtype(name, fn, specs, dtype):
    inputs = [Tensor(sampler(shape), requires_grad=True, dtype=dtype) for shape, sampler in specs]
    out = fn(*inputs)
    out.backward(gradient=np.ones(out.shape, dtype=out.dtype))
    for i, x in enumerate(inputs):
        assert x.grad is not None, f"{name}: input {i} got no gradient"
        assert x.grad.dtype == dtype, f"{name}: input {i} is {dtype.__name__} but its " \
                                      f"gradient is {x.grad.dtype}"
