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


# --- layers -------------------------------------------------------------------------------------

import tinygrad_bn as tg  # noqa: E402
from tinygrad_bn import nn  # noqa: E402


def _cnn_ours(fused: bool = True) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4, fused=fused), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, bias=False), nn.BatchNorm2d(6, fused=fused), nn.LeakyReLU(0.1),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6, 3))


def _cnn_theirs() -> "torch.nn.Sequential":
    t = torch.nn
    return t.Sequential(
        t.Conv2d(1, 4, 3, padding=1), t.BatchNorm2d(4), t.ReLU(), t.MaxPool2d(2),
        t.Conv2d(4, 6, 3, bias=False), t.BatchNorm2d(6), t.LeakyReLU(0.1), t.AvgPool2d(2),
        t.Flatten(), t.Linear(6, 3))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_cnn_training_batches_match_torch(fused):
    """Outputs, every gradient and the BatchNorm2d running statistics, batch after batch."""
    tg.manual_seed(4)
    ours = _cnn_ours(fused).double()
    theirs = _cnn_theirs().double()
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(8)
    for _ in range(3):
        x = rng.standard_normal((5, 1, 10, 10)) * 2 + 0.5
        g = rng.standard_normal((5, 3))
        ours.zero_grad()
        theirs.zero_grad()
        x_ours, x_theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
        np.testing.assert_allclose(out_ours.data, out_theirs.detach().numpy(), RTOL, ATOL)
        out_ours.backward(g)
        out_theirs.backward(torch.from_numpy(g))
        np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), RTOL, ATOL)
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(p.grad, q.grad.numpy(), RTOL, ATOL, err_msg=name)
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), RTOL, ATOL,
                                       err_msg=key)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 1, 10, 10))
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(),
                               RTOL, ATOL)


def test_saved_cnn_with_batchnorm2d_loads_into_torch_sequential(tmp_path):
    tg.manual_seed(12)
    ours = _cnn_ours()
    opt = tg.optim.SGD(ours.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(3)
    for _ in range(4):  # train a little, so the running statistics have moved
        x = Tensor(rng.standard_normal((8, 1, 10, 10)).astype(np.float32))
        target = rng.integers(0, 3, 8)
        opt.zero_grad()
        nn.functional.cross_entropy(ours(x), target).backward()
        opt.step()
    path = tmp_path / "cnn.npz"
    tg.save(ours.state_dict(), path)
    theirs = _cnn_theirs()
    with np.load(path, allow_pickle=False) as archive:
        state = {key: torch.from_numpy(archive[key]) for key in archive.files}
    assert list(state) == list(theirs.state_dict())
    theirs.load_state_dict(state, strict=True)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((6, 1, 10, 10)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_norm_layers_and_activations_match_torch():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((3, 4, 2, 3))
    pairs = [(nn.LayerNorm((2, 3)), torch.nn.LayerNorm((2, 3))),
             (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
             (nn.GELU("tanh"), torch.nn.GELU("tanh")),
             (nn.Softplus(2.0), torch.nn.Softplus(2.0))]
    for ours, theirs in pairs:
        ours.double()
        theirs.double()
        for p in ours.parameters():
            p.data[...] = rng.standard_normal(p.shape)
        theirs.load_state_dict({k: torch.from_numpy(v.copy())
                                for k, v in ours.state_dict().items()})
        np.testing.assert_allclose(ours(Tensor(x)).data,
                                   theirs(torch.from_numpy(x)).detach().numpy(), RTOL, ATOL,
                                   err_msg=type(ours).__name__)


def test_conv2d_initialisation_has_torchs_bounds():
    tg.manual_seed(0)
    torch.manual_seed(0)
    ours = nn.Conv2d(3, 64, 5)
    theirs = torch.nn.Conv2d(3, 64, 5)
    for name in ("weight", "bias"):
        a = getattr(ours, name).data
        b = getattr(theirs, name).detach().numpy()
        # Same uniform distribution: same bound, to within sampling error of the extremes.
        assert abs(np.abs(a).max() - np.abs(b).max()) < 0.02, name
        assert abs(a.std() - b.std()) < 0.02, name
