"""PyTorch's answers for the issue-14 ops, stored: checked here without torch installed.

tests/fixtures/torch_conv_golden.npz was written by tests/fixtures/make_torch_conv_golden.py
(convolution with stride/padding/dilation, max and average pooling, pow, abs, leaky_relu, gelu,
softplus, clamp, where, cat, stack, pad, flatten, layer/group/batch norm over (N, C, H, W)).
For each case: the same inputs and upstream gradient go through the library, and the output
and every input gradient must equal torch's to 1e-10 (both in float64).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor
from tinygrad_bn.nn import functional as F

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RTOL, ATOL = 1e-10, 1e-12

_spec = importlib.util.spec_from_file_location("make_torch_conv_golden",
                                               FIXTURES / "make_torch_conv_golden.py")
table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table)  # the case table only: the script imports torch lazily

OURS = {
    "conv_basic": lambda x, w, b: F.conv2d(x, w, b),
    "conv_pad1": lambda x, w, b: F.conv2d(x, w, b, padding=1),
    "conv_stride2_nobias": lambda x, w: F.conv2d(x, w, stride=2),
    "conv_stride2_pad1_dil2": lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, dilation=2),
    "conv_pairs": lambda x, w, b: F.conv2d(x, w, b, stride=(1, 2), padding=(2, 0),
                                           dilation=(1, 2)),
    "conv_1x1_stride3": lambda x, w: F.conv2d(x, w, stride=3),
    "maxpool_2": lambda x: F.max_pool2d(x, 2),
    "maxpool_3_s2_p1": lambda x: F.max_pool2d(x, 3, 2, 1),
    "maxpool_dil2": lambda x: F.max_pool2d(x, 2, 1, 0, 2),
    "maxpool_pairs": lambda x: F.max_pool2d(x, (2, 3), (2, 1), (1, 1)),
    "avgpool_2": lambda x: F.avg_pool2d(x, 2),
    "avgpool_3_s2_p1": lambda x: F.avg_pool2d(x, 3, 2, 1),
    "avgpool_exclude_pad": lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
    "pow_tensor": lambda a, b: a ** b,
    "abs": lambda x: x.abs(),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "softplus": lambda x: F.softplus(x),
    "softplus_beta2_thr1": lambda x: F.softplus(x, beta=2.0, threshold=1.0),
    "clamp": lambda x: x.clamp(-0.5, 0.7),
    "where": lambda a, b: tg.where(np.array([[True], [False]]), a, b),
    "cat": lambda a, b: tg.cat([a, b], dim=1),
    "stack": lambda a, b: tg.stack([a, b], 1),
    "pad": lambda x: F.pad(x, (1, 0, 2, 1), value=3.0),
    "flatten": lambda x: F.flatten(x, 1, 2),
    "layer_norm": lambda x, w, b: F.layer_norm(x, (4, 2), w, b),
    "group_norm": lambda x, w, b: F.group_norm(x, 2, w, b),
    "batch_norm2d": lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
}


@pytest.fixture(scope="module")
def golden() -> dict:
    with np.load(FIXTURES / "torch_conv_golden.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def test_every_case_of_the_table_has_our_function_and_a_recording(golden):
    names = [case.name for case in table.CASES]
    assert sorted(names) == sorted(OURS)
    for name in names:
        assert f"{name}__out" in golden, f"{name} missing: rerun make_torch_conv_golden.py"


@pytest.mark.parametrize("case", table.CASES, ids=[c.name for c in table.CASES])
def test_matches_recorded_torch(case, golden):
    inputs = [Tensor(golden[f"{case.name}__in{k}"], requires_grad=True)
              for k in range(len(case.inputs))]
    out = OURS[case.name](*inputs)
    np.testing.assert_allclose(out.data, golden[f"{case.name}__out"], rtol=RTOL, atol=ATOL,
                               err_msg=f"{case.name}: output")
    out.backward(golden[f"{case.name}__grad_out"])
    for k, t in enumerate(inputs):
        np.testing.assert_allclose(t.grad, golden[f"{case.name}__grad{k}"], rtol=RTOL,
                                   atol=ATOL, err_msg=f"{case.name}: gradient of input {k}")
