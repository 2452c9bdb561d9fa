"""nn.init: PyTorch's fans and gains exactly, its distributions within sampling error, seeded.

PyTorch's values are stored in tests/fixtures/hooks_init_golden.npz (see hooks_init_cases.py);
tests/test_torch_hooks_init.py repeats the comparison live.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_bn import Tensor, manual_seed, nn
from tinygrad_bn.nn import init

from test_hooks import FIXTURES, load_cases

CASES = load_cases()


@pytest.fixture(scope="module")
def golden() -> dict:
    with np.load(FIXTURES / "hooks_init_golden.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def test_fans_and_gains_equal_torch_exactly(golden):
    np.testing.assert_array_equal(CASES.fans("tinygrad_bn"), golden["init__fans"])
    np.testing.assert_array_equal(CASES.gains("tinygrad_bn"), golden["init__gains"])


def check_moments(ours: np.ndarray, reference: np.ndarray) -> None:
    """Sample statistics of two independent draws from the same distribution agree: means
    within 5 standard errors, standard deviations within 2 %, a uniform's range within 0.1 %."""
    n = math.prod(CASES.MOMENT_SHAPE)
    for (name, function, _), row, ref in zip(CASES.MOMENT_CASES, ours, reference):
        mean, std, low, high = row
        assert abs(mean - ref[0]) < 5 * math.sqrt(2.0 / n) * ref[1], name
        assert abs(std - ref[1]) < 0.02 * ref[1], name
        if "uniform" in function:
            np.testing.assert_allclose([low, high], ref[2:], rtol=1e-3, err_msg=name)


def test_distributions_match_torch(golden):
    check_moments(CASES.moments("tinygrad_bn"), golden["init__moments"])


@pytest.mark.parametrize("shape", [(30, 20), (16, 4, 3, 3)])
def test_std_follows_the_formulas(shape):
    weight = nn.Parameter(np.empty(shape, dtype=np.float64))
    fan_in, fan_out = init.fan_in_and_fan_out(weight)
    manual_seed(3)
    expected = {
        "xavier_normal_": math.sqrt(2.0 / (fan_in + fan_out)),
        "kaiming_normal_": math.sqrt(2.0) / math.sqrt(fan_in),
    }
    for name, std in expected.items():
        getattr(init, name)(weight)
        assert abs(weight.data.std() - std) < 0.1 * std, name   # few samples: loose
    init.kaiming_uniform_(weight, mode="fan_out", nonlinearity="tanh")
    bound = math.sqrt(3.0) * (5.0 / 3.0) / math.sqrt(fan_out)
    assert np.abs(weight.data).max() <= bound


def test_in_place_returns_the_tensor_keeps_dtype_and_is_seeded():
    weight = nn.Linear(4, 3).weight
    array = weight.data
    manual_seed(7)
    assert init.kaiming_uniform_(weight) is weight
    first = weight.data.copy()
    assert weight.data is array and weight.dtype == np.float32
    manual_seed(7)
    init.kaiming_uniform_(weight)
    np.testing.assert_array_equal(weight.data, first)
    manual_seed(8)
    init.kaiming_uniform_(weight)
    assert not np.array_equal(weight.data, first)


def test_constant_zeros_ones():
    t = Tensor(np.empty((2, 3)))
    assert init.constant_(t, 2.5).data.tolist() == [[2.5] * 3] * 2
    assert init.zeros_(t).data.sum() == 0 and init.ones_(t).data.sum() == 6


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(Tensor.zeros(5))
    with pytest.raises(ValueError, match="mode 'fan_middle'"):
        init.kaiming_normal_(Tensor.zeros((2, 2)), mode="fan_middle")
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", "0.1")
    with pytest.raises(TypeError, match="Tensors and Parameters"):
        init.zeros_(np.zeros(3))


def test_an_empty_weight_warns_and_is_left_alone():
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(Tensor.zeros((0, 3)))
