"""PyTorch's answers, stored: the library reproduces them without torch installed.

The fixture tests/fixtures/torch_golden.npz was written by tests/fixtures/make_torch_golden.py
(run ``python tests/fixtures/make_torch_golden.py`` to regenerate it; that script needs torch,
this module does not import it). It holds, in float64, with every input stored beside the
result:

* BatchNorm1d in training mode over 3 batches — momentum 0.1 and None (cumulative), (N, C)
  and (N, C, L) inputs: outputs, gradients of input / weight / bias, running_mean,
  running_var and num_batches_tracked after each batch, then an evaluation-mode output;
* BCEWithLogits, BCE, MSE and CrossEntropy with reduction mean / sum / none: the loss, the
  input gradient and, for float targets, the target gradient;
* a 20-step SGD run (lr 0.1, momentum 0.9, weight_decay 1e-3, BCEWithLogitsLoss) of
  Sequential(Linear(2,16), BatchNorm1d(16), ReLU(), Linear(16,1)): the initial state, the
  batches, the loss of every step and the final parameters and buffers.

Each check runs for both BatchNorm implementations (fused and composed). Tolerances are 1e-10:
both libraries compute in float64, so a larger difference is a wrong formula.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

from tinygrad_bn import Tensor, nn, optim
from tinygrad_bn.nn import functional as F

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "torch_golden.npz"
RTOL, ATOL = 1e-10, 1e-12       # one layer or loss
MODEL_TOL = 1e-10               # a whole model after 20 training steps
FUSED = [pytest.param(True, id="fused"), pytest.param(False, id="composed")]


@pytest.fixture(scope="module")
def golden() -> dict:
    with np.load(FIXTURE, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _case(golden: dict, prefix: str) -> dict:
    """The arrays of one case, ``<prefix>__<quantity>``, keyed by quantity."""
    start = prefix + "__"
    found = {key[len(start):]: value for key, value in golden.items() if key.startswith(start)}
    assert found, f"{FIXTURE.name} has no case {prefix!r}; regenerate it with make_torch_golden.py"
    return found


def _check(case: str, what: str, ours: Any, expected: np.ndarray, rtol: float = RTOL,
           atol: float = ATOL) -> None:
    """Assert that our value equals the stored torch value, naming the case on failure."""
    assert ours is not None, f"{case}: {what} is None"
    ours = ours.data if isinstance(ours, Tensor) else np.asarray(ours)
    assert ours.shape == expected.shape, (
        f"{case}: {what} has shape {ours.shape}, torch's has {expected.shape}")
    np.testing.assert_allclose(ours, expected, rtol=rtol, atol=atol, err_msg=f"{case}: {what}")


# --- BatchNorm1d --------------------------------------------------------------------------------

class BNGolden(NamedTuple):
    key: str                     # the fixture's case prefix
    momentum: float | None


BN_GOLDEN = [
    BNGolden("bn_momentum0p1_nc", 0.1),
    BNGolden("bn_cumulative_nc", None),
    BNGolden("bn_momentum0p1_ncl", 0.1),
    BNGolden("bn_cumulative_ncl", None),
]


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("case", BN_GOLDEN, ids=lambda c: c.key)
def test_batchnorm_matches_golden(golden: dict, case: BNGolden, fused: bool) -> None:
    data = _case(golden, case.key)
    stored = float(data["momentum"])
    assert (case.momentum is None) == np.isnan(stored), f"{case.key}: fixture momentum {stored}"
    channels = data["weight"].shape[0]
    bn = nn.BatchNorm1d(channels, eps=float(data["eps"]), momentum=case.momentum,
                        fused=fused).double()
    bn.weight.data[...] = data["weight"]
    bn.bias.data[...] = data["bias"]
    for batch in range(data["x"].shape[0]):
        name = f"{case.key} fused={fused} training batch {batch + 1}"
        bn.zero_grad()
        x = Tensor(data["x"][batch], requires_grad=True)
        out = bn(x)
        _check(name, "output", out, data["out"][batch])
        out.backward(data["grad_out"][batch])
        _check(name, "input grad", x.grad, data["grad_x"][batch])
        _check(name, "weight grad", bn.weight.grad, data["grad_weight"][batch])
        _check(name, "bias grad", bn.bias.grad, data["grad_bias"][batch])
        _check(name, "running_mean", bn.running_mean, data["running_mean"][batch])
        _check(name, "running_var", bn.running_var, data["running_var"][batch])
        count, expected = int(bn.num_batches_tracked.data), int(data["num_batches_tracked"][batch])
        assert count == expected, f"{name}: num_batches_tracked {count}, torch has {expected}"
    bn.eval()
    _check(f"{case.key} fused={fused} eval", "output", bn(Tensor(data["eval_x"])),
           data["eval_out"])


# --- losses -------------------------------------------------------------------------------------

LOSS_FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "bce_with_logits": F.binary_cross_entropy_with_logits,
    "bce": F.binary_cross_entropy,
    "mse": F.mse_loss,
    "cross_entropy": F.cross_entropy,
}
LOSS_MODULES = {
    "bce_with_logits": nn.BCEWithLogitsLoss, "bce": nn.BCELoss, "mse": nn.MSELoss,
    "cross_entropy": nn.CrossEntropyLoss,
}
REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("form", ["functional", "module"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss_name", list(LOSS_FUNCTIONS))
def test_loss_matches_golden(golden: dict, loss_name: str, reduction: str, form: str) -> None:
    key = f"loss_{loss_name}_{reduction}"
    name = f"{key} ({form})"
    data = _case(golden, key)
    x = Tensor(data["input"], requires_grad=True)
    float_target = data["target"].dtype.kind == "f"
    target = Tensor(data["target"], requires_grad=float_target)
    if form == "functional":
        loss = LOSS_FUNCTIONS[loss_name](x, target, reduction=reduction)
    else:
        loss = LOSS_MODULES[loss_name](reduction=reduction)(x, target)
    _check(name, "loss", loss, data["loss"])
    loss.backward(data["grad_out"])
    _check(name, "input grad", x.grad, data["grad_input"])
    assert float_target == ("grad_target" in data), f"{name}: fixture target gradient"
    if float_target:
        _check(name, "target grad", target.grad, data["grad_target"])


# --- the whole model ----------------------------------------------------------------------------

def _prefixed(golden: dict, prefix: str) -> dict:
    return {key[len(prefix):]: value for key, value in golden.items() if key.startswith(prefix)}


@pytest.mark.parametrize("fused", FUSED)
def test_model_training_matches_golden(golden: dict, fused: bool) -> None:
    name = f"20 SGD steps of Sequential(Linear, BatchNorm1d, ReLU, Linear) fused={fused}"
    model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16, fused=fused), nn.ReLU(),
                          nn.Linear(16, 1)).double()
    model.load_state_dict(_prefixed(golden, "model__initial__"), strict=True)
    lr, momentum, weight_decay = golden["model__sgd"]
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                          weight_decay=weight_decay)
    criterion = nn.BCEWithLogitsLoss()
    for step, (x, y) in enumerate(zip(golden["model__x"], golden["model__y"])):
        optimizer.zero_grad()
        loss = criterion(model(Tensor(x)), Tensor(y))
        _check(f"{name}, step {step + 1}", "loss", loss, golden["model__losses"][step],
               MODEL_TOL, MODEL_TOL)
        loss.backward()
        optimizer.step()
    final = _prefixed(golden, "model__final__")
    state = model.state_dict()
    assert list(state) == list(final), f"{name}: keys {list(state)} vs torch {list(final)}"
    for key, expected in final.items():
        if expected.dtype.kind == "i":
            assert np.array_equal(state[key], expected), f"{name}: {key} {state[key]}"
        else:
            _check(name, key, state[key], expected, MODEL_TOL, MODEL_TOL)


# --- the fixture itself -------------------------------------------------------------------------

def test_every_golden_value_is_checked(golden: dict) -> None:
    """No case in the fixture is silently ignored, and none is pickled."""
    prefixes = [c.key + "__" for c in BN_GOLDEN] + ["model__", "meta__"]
    prefixes += [f"loss_{n}_{r}__" for n in LOSS_FUNCTIONS for r in REDUCTIONS]
    unchecked = [key for key in golden if not key.startswith(tuple(prefixes))]
    assert not unchecked, f"fixture arrays no test reads: {unchecked}"
    objects = [key for key, value in golden.items() if value.dtype.kind == "O"]
    assert not objects, f"object arrays in the fixture: {objects}"
    assert FIXTURE.stat().st_size < 200_000, f"{FIXTURE} has grown past 200 KB"
