"""`stable_sigmoid`: σ(x) = 1/(1 + e⁻ˣ) in one formula for both signs, equal to the textbook
two-branch definition to the last bit, without overflow warnings at any input."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tinygrad_bn.ops import stable_sigmoid

EDGES = [0.0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 20.0, -20.0, 88.0, -88.0, 89.0, -89.0, 100.0,
         -100.0, 709.0, -709.0, 710.0, -710.0, 1e4, -1e4, np.inf, -np.inf]


def _two_branches(x: np.ndarray) -> np.ndarray:
    """1/(1 + e⁻ˣ) for x ≥ 0 and eˣ/(1 + eˣ) for x < 0, each branch where it cannot overflow."""
    with np.errstate(over="ignore", invalid="ignore"):   # in the branch np.where discards
        return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_equal_to_the_two_branch_definition_to_the_last_bit(dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate([np.array(EDGES), rng.standard_normal(2000) * 30,
                        rng.standard_normal(500)]).astype(dtype)
    y = stable_sigmoid(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, _two_branches(x))
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_array_equal(stable_sigmoid(x.reshape(-1, 2)), y.reshape(-1, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_overflow_warning_and_no_nan_at_the_edges(dtype):
    x = np.array([100.0, -100.0, 1e4, -1e4, np.inf, -np.inf], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # an overflow warning would fail the test
        y = stable_sigmoid(x)
    assert not np.any(np.isnan(y))
    np.testing.assert_array_equal(y[[0, 2, 4]], 1.0)
    np.testing.assert_array_equal(y[[3, 5]], 0.0)
    # The far negative tail keeps its relative precision where the type can hold it.
    exact = math.exp(-100.0) / (1.0 + math.exp(-100.0))
    assert abs(float(y[1]) - exact) <= (1e-15 if dtype == np.float64 else 1e-44)
    assert np.isnan(stable_sigmoid(np.array([np.nan], dtype)))[0]
