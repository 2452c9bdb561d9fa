"""The issue-14 ops (convolution, pooling, new activations, joining and padding) checked against
central finite differences in float64, over shape tables with stride/padding/dilation edge
cases; plus their float32 gradients keep float32 and their bad input gives a clear error."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor, gradcheck
from tinygrad_bn.nn import functional as F

rng = np.random.default_rng(14)


def anything(shape):
    return rng.normal(size=shape)


def away_from_zero(shape):
    return rng.uniform(0.3, 2.0, shape) * rng.choice([-1.0, 1.0], size=shape)


def positive(shape):
    return rng.uniform(0.5, 2.0, shape)


def distinct(shape):
    """A random permutation of well-separated values: no ties for max pooling, and a
    finite-difference step cannot change which element is the largest."""
    return rng.permutation(np.arange(int(np.prod(shape)), dtype=np.float64)).reshape(shape) / 4


# (input shape, weight shape, stride, padding, dilation, bias)
CONV = [
    ((1, 1, 4, 4), (1, 1, 3, 3), 1, 0, 1, True),
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1, 1, True),             # "same" padding
    ((2, 2, 6, 5), (3, 2, 3, 2), 2, 0, 1, False),            # stride 2, non-square kernel
    ((1, 2, 7, 7), (2, 2, 3, 3), 2, 1, 2, True),             # stride + padding + dilation
    ((1, 2, 5, 6), (2, 2, 2, 3), (1, 2), (2, 0), (1, 2), True),  # pairs for every argument
    ((2, 1, 3, 3), (2, 1, 3, 3), 1, 0, 1, True),             # kernel covers the image: 1×1 out
    ((1, 2, 4, 4), (3, 2, 1, 1), 3, 0, 1, True),             # 1×1 kernel, stride skips pixels
    ((1, 1, 5, 5), (1, 1, 2, 2), 3, 1, 1, False),            # stride larger than the kernel
]

# (input shape, kernel, stride, padding, dilation) for max pooling
MAXPOOL = [
    ((1, 1, 4, 4), 2, None, 0, 1),
    ((2, 2, 5, 5), 3, 2, 1, 1),          # overlapping windows, padding
    ((1, 2, 6, 5), (2, 3), (2, 1), (1, 1), 1),
    ((1, 1, 7, 7), 2, 1, 0, 2),          # dilation
    ((1, 1, 5, 4), 3, 3, 1, 1),          # windows that see mostly padding
]

# (input shape, kernel, stride, padding, count_include_pad) for average pooling
AVGPOOL = [
    ((1, 1, 4, 4), 2, None, 0, True),
    ((2, 2, 5, 5), 3, 2, 1, True),
    ((2, 2, 5, 5), 3, 2, 1, False),
    ((1, 2, 6, 5), (2, 3), (1, 2), (1, 1), False),
    ((1, 1, 3, 3), 3, 1, 1, True),
]


def _ids(table):
    return [str(row) for row in table]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, bias", CONV,
                         ids=_ids(CONV))
def test_conv2d(x_shape, w_shape, stride, padding, dilation, bias):
    inputs = [Tensor(anything(x_shape), requires_grad=True),
              Tensor(anything(w_shape), requires_grad=True)]
    if bias:
        inputs.append(Tensor(anything(w_shape[:1]), requires_grad=True))
    assert gradcheck(lambda x, w, *b: F.conv2d(x, w, *b, stride=stride, padding=padding,
                                               dilation=dilation), *inputs)


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", MAXPOOL, ids=_ids(MAXPOOL))
def test_max_pool2d(shape, kernel, stride, padding, dilation):
    x = Tensor(distinct(shape), requires_grad=True)
    assert gradcheck(lambda t: F.max_pool2d(t, kernel, stride, padding, dilation), x)


@pytest.mark.parametrize("shape, kernel, stride, padding, count_pad", AVGPOOL, ids=_ids(AVGPOOL))
def test_avg_pool2d(shape, kernel, stride, padding, count_pad):
    x = Tensor(anything(shape), requires_grad=True)
    assert gradcheck(lambda t: F.avg_pool2d(t, kernel, stride, padding,
                                            count_include_pad=count_pad), x)


ELEMENTWISE = [
    ("pow tensor", lambda a, b: a ** b, [((2, 3), positive), ((2, 3), anything)]),
    ("pow tensor broadcast", lambda a, b: a ** b, [((3, 1), positive), ((1, 4), anything)]),
    ("rpow", lambda b: 2.0 ** b, [((2, 3), anything)]),
    ("abs", lambda a: a.abs(), [((2, 3), away_from_zero)]),
    ("leaky_relu", lambda a: F.leaky_relu(a), [((3, 4), away_from_zero)]),
    ("leaky_relu 0.2", lambda a: F.leaky_relu(a, 0.2), [((3, 4), away_from_zero)]),
    ("gelu exact", lambda a: F.gelu(a), [((3, 4), anything)]),
    ("gelu tanh", lambda a: F.gelu(a, approximate="tanh"), [((3, 4), anything)]),
    ("softplus", lambda a: F.softplus(a), [((3, 4), anything)]),
    ("softplus beta 2 threshold 1",
     lambda a: F.softplus(a, beta=2.0, threshold=1.0), [((3, 4), away_from_zero)]),
    ("clamp both", lambda a: a.clamp(-0.5, 0.5), [((3, 4), anything)]),
    ("clamp min", lambda a: a.clamp(min=0.1), [((3, 4), anything)]),
    ("where", lambda a, b: tg.where(Tensor(np.array([[True], [False]])), a, b),
     [((2, 3), anything), ((3,), anything)]),
    ("where scalar other", lambda a: a.where(a.data > 0, 0.0), [((2, 3), away_from_zero)]),
    ("cat dim0", lambda a, b: tg.cat([a, b]), [((2, 3), anything), ((1, 3), anything)]),
    ("cat dim-1 three", lambda a, b, c: tg.cat([a, b, c], dim=-1),
     [((2, 1), anything), ((2, 3), anything), ((2, 2), anything)]),
    ("stack dim1", lambda a, b: tg.stack([a, b], dim=1),
     [((2, 3), anything), ((2, 3), anything)]),
    ("stack reused", lambda a: tg.stack([a, a * 2]), [((3,), anything)]),
    ("pad last axis", lambda a: F.pad(a, (1, 2)), [((2, 3), anything)]),
    ("pad two axes value", lambda a: F.pad(a, (1, 0, 2, 1), value=3.0),
     [((1, 2, 3), anything)]),
    ("view", lambda a: a.view(3, 2) * Tensor(np.arange(6.0).reshape(3, 2)),
     [((2, 3), anything)]),
    ("flatten 1", lambda a: a.flatten(1), [((2, 3, 2), anything)]),
    ("flatten middle", lambda a: F.flatten(a, 1, 2), [((2, 3, 2, 2), anything)]),
]


@pytest.mark.parametrize("name, fn, specs", ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_elementwise_and_shape_ops(name, fn, specs):
    inputs = [Tensor(sampler(shape), requires_grad=True) for shape, sampler in specs]
    assert gradcheck(fn, *inputs), name


def test_norm_functions_gradcheck():
    x = Tensor(anything((3, 4, 2, 2)), requires_grad=True)
    w, b = Tensor(anything((4,)), requires_grad=True), Tensor(anything((4,)), requires_grad=True)
    assert gradcheck(lambda t, g, h: F.group_norm(t, 2, g, h), x, w, b)
    ln_w = Tensor(anything((2, 2)), requires_grad=True)
    assert gradcheck(lambda t, g: F.layer_norm(t, (2, 2), g), x, ln_w)


FLOAT32_CASES = [
    ("conv2d", lambda x: F.conv2d(x, Tensor(np.ones((2, 2, 3, 3), np.float32)), padding=1)),
    ("max_pool2d", lambda x: F.max_pool2d(x, 2)),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)),
    ("gelu", lambda x: F.gelu(x)),
    ("gelu tanh", lambda x: F.gelu(x, "tanh")),
    ("softplus", lambda x: F.softplus(x)),
    ("leaky_relu", lambda x: F.leaky_relu(x)),
    ("abs", lambda x: x.abs()),
    ("clamp", lambda x: x.clamp(-1, 1)),
    ("pow", lambda x: x.abs() ** Tensor(np.full((4, 4), 1.5, np.float32))),
    ("pad", lambda x: F.pad(x, (1, 1))),
    ("cat", lambda x: tg.cat([x, x], 1)),
    ("where", lambda x: x.where(x.data > 0, 0.0)),
    ("group_norm", lambda x: F.group_norm(x, 1)),
]


@pytest.mark.parametrize("name, fn", FLOAT32_CASES, ids=[c[0] for c in FLOAT32_CASES])
def test_float32_in_float32_out(name, fn):
    x = Tensor(anything((2, 2, 4, 4)).astype(np.float32), requires_grad=True)
    out = fn(x)
    assert out.dtype == np.float32, name
    out.sum().backward()
    assert x.grad.dtype == np.float32, name


def test_float_of_a_one_element_tensor():
    assert float(Tensor([[2.5]])) == 2.5
    with pytest.raises(ValueError, match="one element"):
        float(Tensor([1.0, 2.0]))


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(Tensor(np.zeros((1, 2, 4, 4))), Tensor(np.zeros((1, 3, 3, 3)))),
     r"weight of shape \(1, 3, 3, 3\) does not fit input of shape \(1, 2, 4, 4\)"),
    (lambda: F.conv2d(Tensor(np.zeros((2, 4, 4))), Tensor(np.zeros((1, 2, 3, 3)))),
     "4-D"),
    (lambda: F.conv2d(Tensor(np.zeros((1, 1, 2, 2))), Tensor(np.zeros((1, 1, 3, 3)))),
     "too small"),
    (lambda: F.conv2d(Tensor(np.zeros((1, 1, 4, 4))), Tensor(np.zeros((1, 1, 3, 3))), stride=0),
     "stride must be at least 1"),
    (lambda: F.conv2d(Tensor(np.zeros((1, 2, 4, 4))), Tensor(np.zeros((1, 1, 3, 3))), groups=2),
     "groups=1"),
    (lambda: F.max_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, padding=2), "half of kernel"),
    (lambda: F.avg_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, ceil_mode=True), "ceil_mode"),
    (lambda: tg.cat([Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 4)))]), "tensor 1"),
    (lambda: tg.stack([Tensor(np.zeros(2)), Tensor(np.zeros(3))]), "equal shapes"),
    (lambda: F.pad(Tensor(np.zeros(2)), (1,)), "even length"),
    (lambda: F.gelu(Tensor(np.zeros(2)), approximate="erf"), "approximate"),
    (lambda: Tensor(np.zeros(2)).clamp(), "at least one"),
])
def test_bad_arguments_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()
