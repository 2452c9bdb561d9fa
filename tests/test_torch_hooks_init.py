"""Hooks and nn.init against PyTorch 2.13, live, in float64 (skipped without torch).

The scenarios are written once, for both libraries, in tests/fixtures/hooks_init_cases.py:
every value each kind of hook receives, every replacement it returns, the gradients that
result, removal, and a first layer whose input needs no gradient; the exact fans and gains;
the sample moments of each initialiser; and seeded reproducibility in both libraries.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_hooks import load_cases  # noqa: E402  (after the skip, on purpose)
from test_init import check_moments  # noqa: E402

CASES = load_cases()


@pytest.mark.parametrize("seed", [12, 13])
def test_hooks_see_and_replace_the_same_values(seed):
    inputs = CASES.hook_inputs(seed)
    expected = CASES.run_hooks("torch", inputs)
    ours = CASES.run_hooks("tinygrad_bn", inputs)
    assert set(ours) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-10, atol=1e-12, err_msg=name)


def test_fans_and_gains_are_torchs():
    np.testing.assert_array_equal(CASES.fans("tinygrad_bn"), CASES.fans("torch"))
    np.testing.assert_array_equal(CASES.gains("tinygrad_bn"), CASES.gains("torch"))


@pytest.mark.parametrize("seed", [0, 1])
def test_init_distributions_match(seed):
    check_moments(CASES.moments("tinygrad_bn", seed), CASES.moments("torch", seed))


def test_both_libraries_repeat_a_seeded_init():
    for lib in ("tinygrad_bn", "torch"):
        np.testing.assert_array_equal(CASES.moments(lib, 5), CASES.moments(lib, 5))
        assert not np.array_equal(CASES.moments(lib, 5), CASES.moments(lib, 6))
