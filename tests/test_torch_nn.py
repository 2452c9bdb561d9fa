"""PyTorch is the reference for layers, losses, BatchNorm, optimizers and checkpoints.

What this module proves, one table row per case, everything in float64:

* every layer (Linear, activations, Dropout, Identity, Sequential) and every nn.functional
  function gives torch's output, input gradient and parameter gradients for a random upstream
  gradient G — the true vector-Jacobian product;
* every loss, as a module and as a function, with reduction mean / sum / none, gives torch's
  loss, input gradient and (for float targets) target gradient;
* BatchNorm1d, fused and composed, matches torch batch after batch: outputs, gradients of
  input / weight / bias, running_mean, running_var and num_batches_tracked — for the default,
  the cumulative average (momentum=None), (N, C, L) inputs, affine=False and
  track_running_stats=False — and keeps matching in eval mode and after returning to training;
* SGD (every option, parameter groups, a changed learning rate, skipped gradients) and Adam
  leave the parameters where torch's optimizers leave them, step after step, to 1e-12;
* Sequential(Linear(2,16), BatchNorm1d(16), ReLU(), Linear(16,1)) trained 20 SGD steps from
  identical weights on identical batches ends with torch's parameters and buffers to 1e-10;
* a checkpoint written by `tinygrad_bn.save` loads into the equivalent torch.nn.Sequential
  with ``load_state_dict(strict=True)`` and gives the same evaluation outputs.

Weights move between the libraries through state_dict: ours holds numpy arrays, which
``torch.from_numpy`` wraps. The module is skipped when torch is missing.
"""
from __future__ import annotations

import zlib
from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_bn as tg  # noqa: E402  (after the skip, on purpose)
from tinygrad_bn import Tensor, nn, optim  # noqa: E402
from tinygrad_bn.nn import functional as F  # noqa: E402

TF = torch.nn.functional
RTOL, ATOL = 1e-10, 1e-12       # one op or layer: only rounding may differ
OPTIM_TOL = 1e-12               # parameters after optimizer steps
MODEL_TOL = 1e-10               # a whole model after 20 training steps


# --- helpers ----------------------------------------------------------------------------------

def _rng(name: str) -> np.random.Generator:
    """A generator seeded from the case name: every case draws its own, repeatable data."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def _array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, Tensor):
        return value.data
    return np.asarray(value)


def _check(case: str, what: str, ours: Any, theirs: Any, rtol: float = RTOL,
           atol: float = ATOL) -> None:
    """Assert that ours equals torch's value, naming the case and the quantity on failure."""
    ours, theirs = _array(ours), _array(theirs)
    if theirs is None or ours is None:
        assert ours is None and theirs is None, (
            f"{case}: {what} is {'None' if ours is None else 'set'} in tinygrad_bn but "
            f"{'None' if theirs is None else 'set'} in torch")
        return
    assert ours.shape == theirs.shape, (
        f"{case}: {what} has shape {ours.shape}, torch's has {theirs.shape}")
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=f"{case}: {what}")


def _torch_state(module: nn.Module) -> dict:
    return {key: torch.from_numpy(value) for key, value in module.state_dict().items()}


def _copy_weights(case: str, ours: nn.Module, theirs: Any) -> None:
    """Give the torch module our weights and buffers; the keys must be torch's, in order."""
    ours_keys, theirs_keys = list(ours.state_dict()), list(theirs.state_dict())
    assert ours_keys == theirs_keys, f"{case}: state_dict keys {ours_keys} vs torch {theirs_keys}"
    theirs.load_state_dict(_torch_state(ours), strict=True)


def _check_state(case: str, ours: nn.Module, theirs: Any, rtol: float = RTOL,
                 atol: float = ATOL) -> None:
    """Every parameter and buffer (running stats, num_batches_tracked) equals torch's."""
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state), (
        f"{case}: state_dict keys {list(ours_state)} vs torch {list(theirs_state)}")
    for key, value in ours_state.items():
        expected = theirs_state[key].numpy()
        if expected.dtype.kind in "iu":
            assert value.dtype.kind in "iu" and np.array_equal(value, expected), (
                f"{case}: {key} is {value!r}, torch has {expected!r}")
        else:
            _check(case, key, value, expected, rtol, atol)


def _leaf_pair(array: np.ndarray, requires_grad: bool = True) -> tuple:
    """The same float64 data as our Tensor and as a torch tensor."""
    return (Tensor(array, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


def _check_param_grads(case: str, ours: nn.Module, theirs: Any) -> None:
    theirs_params = dict(theirs.named_parameters())
    ours_params = dict(ours.named_parameters())
    assert list(ours_params) == list(theirs_params), (
        f"{case}: parameters {list(ours_params)} vs torch {list(theirs_params)}")
    for name, param in ours_params.items():
        _check(case, f"{name}.grad", param.grad, theirs_params[name].grad)


# --- layers -----------------------------------------------------------------------------------

class LayerCase(NamedTuple):
    name: str
    ours: Callable[[], Any]      # builds our module
    theirs: Callable[[], Any]    # builds the equivalent torch module
    shape: tuple                 # input shape
    training: bool = True


def _mlp_ours() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2), nn.Sigmoid())


def _mlp_theirs() -> Any:
    return torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2),
                               torch.nn.Sigmoid())


def _bn_net_ours() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))


def _bn_net_theirs() -> Any:
    return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(),
                               torch.nn.Linear(5, 2))


LAYER_CASES = [
    LayerCase("Linear(3,4) x(5,3)", lambda: nn.Linear(3, 4), lambda: torch.nn.Linear(3, 4),
              (5, 3)),
    LayerCase("Linear(3,4) x(2,5,3)", lambda: nn.Linear(3, 4), lambda: torch.nn.Linear(3, 4),
              (2, 5, 3)),
    LayerCase("Linear(3,4) x(3,)", lambda: nn.Linear(3, 4), lambda: torch.nn.Linear(3, 4),
              (3,)),
    LayerCase("Linear(3,4,bias=False) x(5,3)", lambda: nn.Linear(3, 4, bias=False),
              lambda: torch.nn.Linear(3, 4, bias=False), (5, 3)),
    LayerCase("Linear(3,4) empty batch x(0,3)", lambda: nn.Linear(3, 4),
              lambda: torch.nn.Linear(3, 4), (0, 3)),
    LayerCase("Linear(3,4) empty batch x(0,5,3)", lambda: nn.Linear(3, 4),
              lambda: torch.nn.Linear(3, 4), (0, 5, 3)),
    LayerCase("ReLU x(5,3)", nn.ReLU, torch.nn.ReLU, (5, 3)),
    LayerCase("ReLU x(2,3,4)", nn.ReLU, torch.nn.ReLU, (2, 3, 4)),
    LayerCase("Sigmoid x(5,3)", nn.Sigmoid, torch.nn.Sigmoid, (5, 3)),
    LayerCase("Tanh x(5,3)", nn.Tanh, torch.nn.Tanh, (5, 3)),
    LayerCase("Identity x(5,3)", nn.Identity, torch.nn.Identity, (5, 3)),
    LayerCase("Dropout(0.5) eval x(5,3)", lambda: nn.Dropout(0.5),
              lambda: torch.nn.Dropout(0.5), (5, 3), training=False),
    LayerCase("Dropout(0.0) train x(5,3)", lambda: nn.Dropout(0.0),
              lambda: torch.nn.Dropout(0.0), (5, 3)),
    LayerCase("Dropout(1.0) train x(5,3)", lambda: nn.Dropout(1.0),
              lambda: torch.nn.Dropout(1.0), (5, 3)),
    LayerCase("Sequential(Linear,Tanh,Linear,Sigmoid) x(5,3)", _mlp_ours, _mlp_theirs, (5, 3)),
    LayerCase("Sequential(Linear,BN,ReLU,Linear) train x(6,3)", _bn_net_ours, _bn_net_theirs,
              (6, 3)),
    LayerCase("Sequential(Linear,BN,ReLU,Linear) eval x(6,3)", _bn_net_ours, _bn_net_theirs,
              (6, 3), training=False),
    LayerCase("Sequential(Linear,BN,ReLU,Linear) train empty batch x(0,3)", _bn_net_ours,
              _bn_net_theirs, (0, 3)),
    LayerCase("Sequential(Linear,BN,ReLU,Linear) eval empty batch x(0,3)", _bn_net_ours,
              _bn_net_theirs, (0, 3), training=False),
]


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda c: c.name)
def test_layer_forward_and_backward(case: LayerCase) -> None:
    rng = _rng(case.name)
    tg.manual_seed(zlib.crc32(case.name.encode()))
    ours = case.ours().double().train(case.training)
    theirs = case.theirs().double().train(case.training)
    _copy_weights(case.name, ours, theirs)
    x_ours, x_theirs = _leaf_pair(rng.standard_normal(case.shape))
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    _check(case.name, "output", out_ours, out_theirs)
    upstream = rng.standard_normal(out_theirs.shape)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    _check(case.name, "input grad", x_ours.grad, x_theirs.grad)
    _check_param_grads(case.name, ours, theirs)
    _check_state(case.name, ours, theirs)


class FunctionalCase(NamedTuple):
    name: str
    ours: Callable[..., Any]
    theirs: Callable[..., Any]
    shapes: tuple                # one input shape per positional Tensor argument


FUNCTIONAL_CASES = [
    FunctionalCase("linear x(5,3) W(4,3) b(4)", F.linear, TF.linear, ((5, 3), (4, 3), (4,))),
    FunctionalCase("linear x(2,5,3) W(4,3)", F.linear, TF.linear, ((2, 5, 3), (4, 3))),
    FunctionalCase("relu x(4,3)", F.relu, TF.relu, ((4, 3),)),
    FunctionalCase("sigmoid x(4,3)", F.sigmoid, torch.sigmoid, ((4, 3),)),
    FunctionalCase("tanh x(4,3)", F.tanh, torch.tanh, ((4, 3),)),
    FunctionalCase("dropout training=False x(4,3)",
                   lambda x: F.dropout(x, 0.5, training=False),
                   lambda x: TF.dropout(x, 0.5, training=False), ((4, 3),)),
    FunctionalCase("dropout p=0 x(4,3)", lambda x: F.dropout(x, 0.0),
                   lambda x: TF.dropout(x, 0.0), ((4, 3),)),
    FunctionalCase("dropout p=1 x(4,3)", lambda x: F.dropout(x, 1.0),
                   lambda x: TF.dropout(x, 1.0), ((4, 3),)),
]


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=lambda c: c.name)
def test_functional_forward_and_backward(case: FunctionalCase) -> None:
    rng = _rng(case.name)
    pairs = [_leaf_pair(rng.standard_normal(shape)) for shape in case.shapes]
    out_ours = case.ours(*[p[0] for p in pairs])
    out_theirs = case.theirs(*[p[1] for p in pairs])
    _check(case.name, "output", out_ours, out_theirs)
    upstream = rng.standard_normal(out_theirs.shape)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    for i, (ours, theirs) in enumerate(pairs):
        _check(case.name, f"grad of argument {i}", ours.grad, theirs.grad)


# --- losses -----------------------------------------------------------------------------------

class LossCase(NamedTuple):
    name: str
    ours: type                   # our loss module
    theirs: type                 # torch's loss module
    ours_fn: Callable[..., Any]  # our functional form
    theirs_fn: Callable[..., Any]
    make: Callable[[np.random.Generator], tuple]  # rng → (input, target) arrays
    target_grad: bool = True     # float targets: compare ∂L/∂target too
    rtol: float = RTOL


def _hard(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.integers(0, 2, shape).astype(np.float64)


def _bce_edge(rng: np.random.Generator) -> tuple:
    # p = 0 and p = 1: the logs are clamped at −100 and the gradient divides by 1e-12.
    p = np.array([0.0, 1.0, 0.3, 1.0, 0.0, 0.5])
    return p, np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])


LOSS_CASES = [
    LossCase("BCEWithLogits x(6,1) hard targets", nn.BCEWithLogitsLoss,
             torch.nn.BCEWithLogitsLoss, F.binary_cross_entropy_with_logits,
             TF.binary_cross_entropy_with_logits,
             lambda r: (2 * r.standard_normal((6, 1)), _hard(r, (6, 1)))),
    LossCase("BCEWithLogits x(4,3) soft targets", nn.BCEWithLogitsLoss,
             torch.nn.BCEWithLogitsLoss, F.binary_cross_entropy_with_logits,
             TF.binary_cross_entropy_with_logits,
             lambda r: (2 * r.standard_normal((4, 3)), r.uniform(0, 1, (4, 3)))),
    LossCase("BCEWithLogits x(6,) logits ±1000", nn.BCEWithLogitsLoss,
             torch.nn.BCEWithLogitsLoss, F.binary_cross_entropy_with_logits,
             TF.binary_cross_entropy_with_logits,
             lambda r: (np.array([1000.0, -1000.0, 1000.0, -1000.0, 40.0, -40.0]),
                        np.array([1.0, 0.0, 0.0, 1.0, 0.0, 1.0]))),
    LossCase("BCE p(6,1) hard targets", nn.BCELoss, torch.nn.BCELoss,
             F.binary_cross_entropy, TF.binary_cross_entropy,
             lambda r: (r.uniform(0.02, 0.98, (6, 1)), _hard(r, (6, 1)))),
    LossCase("BCE p(4,3) soft targets", nn.BCELoss, torch.nn.BCELoss,
             F.binary_cross_entropy, TF.binary_cross_entropy,
             lambda r: (r.uniform(0.02, 0.98, (4, 3)), r.uniform(0, 1, (4, 3)))),
    # Target gradients at p = 0 or 1 are left out: torch gives ±inf (unclamped logs). torch
    # divides by max(p(1 − p), 1e-12) with 1e-12 a C++ float (1e-12·(1 − 4e-9)), hence rtol.
    LossCase("BCE p in {0,1} clamped", nn.BCELoss, torch.nn.BCELoss,
             F.binary_cross_entropy, TF.binary_cross_entropy, _bce_edge, target_grad=False,
             rtol=1e-8),
    LossCase("MSE x(5,3)", nn.MSELoss, torch.nn.MSELoss, F.mse_loss, TF.mse_loss,
             lambda r: (r.standard_normal((5, 3)), r.standard_normal((5, 3)))),
    LossCase("MSE x(7,)", nn.MSELoss, torch.nn.MSELoss, F.mse_loss, TF.mse_loss,
             lambda r: (r.standard_normal(7), r.standard_normal(7))),
    LossCase("CrossEntropy x(5,4)", nn.CrossEntropyLoss, torch.nn.CrossEntropyLoss,
             F.cross_entropy, TF.cross_entropy,
             lambda r: (r.standard_normal((5, 4)), r.integers(0, 4, 5)), target_grad=False),
    LossCase("CrossEntropy x(6,3) large logits, repeated classes", nn.CrossEntropyLoss,
             torch.nn.CrossEntropyLoss, F.cross_entropy, TF.cross_entropy,
             lambda r: (80 * r.standard_normal((6, 3)), np.array([0, 0, 2, 2, 1, 0])),
             target_grad=False),
    # An empty batch: the mean over nothing is nan, the sum 0, "none" an empty loss.
    LossCase("BCEWithLogits empty x(0,2)", nn.BCEWithLogitsLoss, torch.nn.BCEWithLogitsLoss,
             F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
             lambda r: (np.zeros((0, 2)), np.zeros((0, 2)))),
    LossCase("BCE empty p(0,2)", nn.BCELoss, torch.nn.BCELoss, F.binary_cross_entropy,
             TF.binary_cross_entropy, lambda r: (np.zeros((0, 2)), np.zeros((0, 2)))),
    LossCase("MSE empty x(0,2)", nn.MSELoss, torch.nn.MSELoss, F.mse_loss, TF.mse_loss,
             lambda r: (np.zeros((0, 2)), np.zeros((0, 2)))),
    LossCase("CrossEntropy empty x(0,3)", nn.CrossEntropyLoss, torch.nn.CrossEntropyLoss,
             F.cross_entropy, TF.cross_entropy,
             lambda r: (np.zeros((0, 3)), np.zeros(0, dtype=np.int64)), target_grad=False),
]
REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("form", ["module", "functional"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", LOSS_CASES, ids=lambda c: c.name)
def test_loss_forward_and_backward(case: LossCase, reduction: str, form: str) -> None:
    name = f"{case.name} reduction={reduction} ({form})"
    rng = _rng(case.name)
    x, target = case.make(rng)
    x_ours, x_theirs = _leaf_pair(x)
    if case.target_grad:
        t_ours, t_theirs = _leaf_pair(target)
    else:  # class indices, or a target whose gradient is not compared
        t_ours, t_theirs = Tensor(target), torch.from_numpy(target)
    if form == "module":
        loss_ours = case.ours(reduction=reduction)(x_ours, t_ours)
        loss_theirs = case.theirs(reduction=reduction)(x_theirs, t_theirs)
    else:
        loss_ours = case.ours_fn(x_ours, t_ours, reduction=reduction)
        loss_theirs = case.theirs_fn(x_theirs, t_theirs, reduction=reduction)
    _check(name, "loss", loss_ours, loss_theirs, case.rtol)
    upstream = rng.standard_normal(loss_theirs.shape)  # shape () unless reduction="none"
    loss_ours.backward(upstream)
    loss_theirs.backward(torch.from_numpy(upstream))
    _check(name, "input grad", x_ours.grad, x_theirs.grad, case.rtol)
    if case.target_grad:
        _check(name, "target grad", t_ours.grad, t_theirs.grad, case.rtol)


# --- BatchNorm1d ------------------------------------------------------------------------------

class BNCase(NamedTuple):
    name: str
    kwargs: dict                 # constructor arguments, the same in both libraries
    shape: tuple                 # (N, C) or (N, C, L)
    constant_channel: bool = False  # channel 0 holds one value: σ² = 0, only ε divides


BN_CASES = [
    BNCase("default x(8,3)", {}, (8, 3)),
    BNCase("momentum=None x(8,3)", {"momentum": None}, (8, 3)),
    BNCase("default x(4,3,5)", {}, (4, 3, 5)),
    BNCase("momentum=None x(4,3,5)", {"momentum": None}, (4, 3, 5)),
    BNCase("eps=1e-3 momentum=0.3 x(8,3)", {"eps": 1e-3, "momentum": 0.3}, (8, 3)),
    BNCase("momentum=1.0 x(8,3)", {"momentum": 1.0}, (8, 3)),
    BNCase("batch of 2 x(2,4)", {}, (2, 4)),
    BNCase("constant channel x(8,3)", {}, (8, 3), constant_channel=True),
    BNCase("constant channel x(4,3,5)", {"momentum": None}, (4, 3, 5), constant_channel=True),
    BNCase("affine=False x(8,3)", {"affine": False}, (8, 3)),
    BNCase("affine=False x(4,3,5)", {"affine": False}, (4, 3, 5)),
    BNCase("track_running_stats=False x(8,3)", {"track_running_stats": False}, (8, 3)),
    BNCase("track_running_stats=False x(4,3,5)", {"track_running_stats": False}, (4, 3, 5)),
    BNCase("affine=False track_running_stats=False x(8,3)",
           {"affine": False, "track_running_stats": False}, (8, 3)),
    BNCase("empty batch x(0,3)", {}, (0, 3)),
    BNCase("empty batch momentum=None x(0,3,4)", {"momentum": None}, (0, 3, 4)),
    BNCase("empty length x(2,3,0)", {}, (2, 3, 0)),
]
FUSED = [pytest.param(True, id="fused"), pytest.param(False, id="composed")]


def _bn_pair(case: BNCase, fused: bool, rng: np.random.Generator) -> tuple:
    """Our BatchNorm1d and torch's, float64, with the same random γ and β (if affine)."""
    channels = case.shape[1]
    ours = nn.BatchNorm1d(channels, **case.kwargs, fused=fused).double()
    theirs = torch.nn.BatchNorm1d(channels, **case.kwargs).double()
    if ours.weight is not None:
        ours.weight.data[...] = rng.uniform(0.5, 1.5, channels)
        ours.bias.data[...] = rng.standard_normal(channels)
    _copy_weights(case.name, ours, theirs)
    return ours, theirs


def _bn_batch(rng: np.random.Generator, shape: tuple,
              constant_channel: bool = False) -> np.ndarray:
    """A batch whose channels have distinct means and spreads, so the statistics matter."""
    channels = shape[1]
    stat_shape = (1, channels) + (1,) * (len(shape) - 2)
    centre = rng.uniform(-3, 3, stat_shape)
    spread = rng.uniform(0.5, 4, stat_shape)
    batch = centre + spread * rng.standard_normal(shape)
    if constant_channel:
        batch[:, 0] = 1.5
    return batch


def _bn_step(name: str, ours: nn.BatchNorm1d, theirs: Any, x: np.ndarray,
             rng: np.random.Generator) -> None:
    """One forward and backward pass in both libraries, comparing everything afterwards."""
    ours.zero_grad()
    theirs.zero_grad()
    x_ours, x_theirs = _leaf_pair(x)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    _check(name, "output", out_ours, out_theirs)
    upstream = rng.standard_normal(x.shape)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    _check(name, "input grad", x_ours.grad, x_theirs.grad)
    _check_param_grads(name, ours, theirs)
    _check_state(name, ours, theirs)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("case", BN_CASES, ids=lambda c: c.name)
def test_batchnorm_training_batches(case: BNCase, fused: bool) -> None:
    rng = _rng(case.name)
    ours, theirs = _bn_pair(case, fused, rng)
    for batch in range(4):
        name = f"BatchNorm1d {case.name} fused={fused} training batch {batch + 1}"
        _bn_step(name, ours, theirs, _bn_batch(rng, case.shape, case.constant_channel), rng)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("case", BN_CASES, ids=lambda c: c.name)
def test_batchnorm_eval_after_training(case: BNCase, fused: bool) -> None:
    """Three training batches, eval on a batch (and one example), then training once more."""
    rng = _rng(case.name + " eval")
    ours, theirs = _bn_pair(case, fused, rng)
    prefix = f"BatchNorm1d {case.name} fused={fused}"
    constant = case.constant_channel
    for batch in range(3):
        _bn_step(f"{prefix} training batch {batch + 1}", ours, theirs,
                 _bn_batch(rng, case.shape, constant), rng)
    ours.eval()
    theirs.eval()
    _bn_step(f"{prefix} eval", ours, theirs, _bn_batch(rng, case.shape, constant), rng)
    if ours.track_running_stats:  # batch statistics of one example do not exist
        single = (1,) + case.shape[1:2] + (1,) * (len(case.shape) - 2)
        _bn_step(f"{prefix} eval one example", ours, theirs, _bn_batch(rng, single), rng)
    ours.train()
    theirs.train()
    _bn_step(f"{prefix} training again", ours, theirs, _bn_batch(rng, case.shape, constant),
             rng)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("initially", [True, False], ids=["built tracking", "built not tracking"])
def test_batchnorm_track_running_stats_changed_after_construction(initially: bool,
                                                                  fused: bool) -> None:
    """Flipping the flag on a built module: torch reads the flag *and* whether buffers exist."""
    case = BNCase(f"track_running_stats={initially} then {not initially}",
                  {"track_running_stats": initially}, (6, 3))
    rng = _rng(case.name)
    ours, theirs = _bn_pair(case, fused, rng)
    prefix = f"BatchNorm1d {case.name} fused={fused}"
    for batch in range(2):  # some statistics first, so that the buffers are not at 0 and 1
        _bn_step(f"{prefix} before the change, batch {batch}", ours, theirs,
                 _bn_batch(rng, case.shape), rng)
    ours.track_running_stats = theirs.track_running_stats = not initially
    for batch in range(2):
        _bn_step(f"{prefix} training after the change, batch {batch}", ours, theirs,
                 _bn_batch(rng, case.shape), rng)
    ours.eval()
    theirs.eval()
    _bn_step(f"{prefix} eval after the change", ours, theirs, _bn_batch(rng, case.shape), rng)


@pytest.mark.parametrize("fused", FUSED)
def test_batchnorm_reset_running_stats_and_parameters(fused: bool) -> None:
    case = BNCase("reset", {"momentum": None}, (5, 3))
    rng = _rng(case.name)
    ours, theirs = _bn_pair(case, fused, rng)
    prefix = f"BatchNorm1d reset fused={fused}"
    _bn_step(f"{prefix} training", ours, theirs, _bn_batch(rng, case.shape), rng)
    ours.reset_running_stats()
    theirs.reset_running_stats()
    _check_state(f"{prefix} after reset_running_stats", ours, theirs)
    _bn_step(f"{prefix} training after reset_running_stats", ours, theirs,
             _bn_batch(rng, case.shape), rng)
    ours.reset_parameters()
    theirs.reset_parameters()
    _check_state(f"{prefix} after reset_parameters", ours, theirs)
    _bn_step(f"{prefix} training after reset_parameters", ours, theirs,
             _bn_batch(rng, case.shape), rng)


def test_load_state_dict_without_num_batches_tracked() -> None:
    """Older PyTorch checkpoints have no num_batches_tracked: the current count is kept."""
    rng = _rng("old checkpoint")
    ours, theirs = _bn_net_ours().double(), _bn_net_theirs().double()
    _copy_weights("old checkpoint", ours, theirs)
    for _ in range(3):
        x = rng.standard_normal((6, 3))
        ours(Tensor(x))
        theirs(torch.from_numpy(x))
    old = {key: value + 0.5 for key, value in ours.state_dict().items()
           if not key.endswith("num_batches_tracked")}
    result_ours = ours.load_state_dict(old)
    result_theirs = theirs.load_state_dict({k: torch.from_numpy(v) for k, v in old.items()})
    assert list(result_ours.missing_keys) == list(result_theirs.missing_keys) == []
    assert "1.num_batches_tracked" not in old  # the caller's dict is left as it was
    _check_state("old checkpoint loaded", ours, theirs)

    # A module whose flag was turned off keeps its buffers, and then the key is required.
    ours[1].track_running_stats = theirs[1].track_running_stats = False
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in old.items()})
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        ours.load_state_dict(old)


class FunctionalBNCase(NamedTuple):
    name: str
    training: bool
    affine: bool
    running: bool                # pass running_mean / running_var buffers
    shape: tuple


FUNCTIONAL_BN_CASES = [
    FunctionalBNCase("training affine running x(6,3)", True, True, True, (6, 3)),
    FunctionalBNCase("training affine running x(3,2,4)", True, True, True, (3, 2, 4)),
    FunctionalBNCase("training no-affine running x(6,3)", True, False, True, (6, 3)),
    FunctionalBNCase("training affine no-running x(6,3)", True, True, False, (6, 3)),
    FunctionalBNCase("training no-affine no-running x(3,2,4)", True, False, False, (3, 2, 4)),
    FunctionalBNCase("eval affine x(6,3)", False, True, True, (6, 3)),
    FunctionalBNCase("eval no-affine x(3,2,4)", False, False, True, (3, 2, 4)),
]


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("case", FUNCTIONAL_BN_CASES, ids=lambda c: c.name)
def test_functional_batch_norm(case: FunctionalBNCase, fused: bool) -> None:
    name = f"F.batch_norm {case.name} fused={fused}"
    rng = _rng(case.name)
    channels = case.shape[1]
    x_ours, x_theirs = _leaf_pair(_bn_batch(rng, case.shape))
    w_ours = w_theirs = b_ours = b_theirs = None
    if case.affine:
        w_ours, w_theirs = _leaf_pair(rng.uniform(0.5, 1.5, channels))
        b_ours, b_theirs = _leaf_pair(rng.standard_normal(channels))
    rm_ours = rv_ours = rm_theirs = rv_theirs = None
    if case.running:
        mean, var = rng.standard_normal(channels), rng.uniform(0.5, 2, channels)
        rm_ours, rm_theirs = _leaf_pair(mean, requires_grad=False)
        rv_ours, rv_theirs = _leaf_pair(var, requires_grad=False)
    out_ours = F.batch_norm(x_ours, rm_ours, rv_ours, w_ours, b_ours, case.training, 0.2, 1e-4,
                            fused=fused)
    out_theirs = TF.batch_norm(x_theirs, rm_theirs, rv_theirs, w_theirs, b_theirs,
                               case.training, 0.2, 1e-4)
    _check(name, "output", out_ours, out_theirs)
    upstream = rng.standard_normal(case.shape)
    out_ours.backward(upstream)
    out_theirs.backward(torch.from_numpy(upstream))
    _check(name, "input grad", x_ours.grad, x_theirs.grad)
    if case.affine:
        _check(name, "weight grad", w_ours.grad, w_theirs.grad)
        _check(name, "bias grad", b_ours.grad, b_theirs.grad)
    if case.running:
        _check(name, "running_mean", rm_ours, rm_theirs)
        _check(name, "running_var", rv_ours, rv_theirs)


# --- optimizers -------------------------------------------------------------------------------

class OptimCase(NamedTuple):
    name: str
    kind: str                    # "SGD" or "Adam": the same class name in both libraries
    options: dict                # keyword arguments, the same in both libraries
    groups: tuple = ()           # ((parameter indices, group options), ...); () = one group
    no_grad_at: tuple = ()       # (step, parameter index): that gradient is None (skipped)
    lr_change: tuple = ()        # (step, group index, new lr) set before that step


PARAM_SHAPES = [(3, 4), (4,), (2,)]
OPTIM_STEPS = 12

OPTIM_CASES = [
    OptimCase("SGD plain", "SGD", {"lr": 0.1}),
    OptimCase("SGD momentum=0.9", "SGD", {"lr": 0.1, "momentum": 0.9}),
    OptimCase("SGD momentum=0.9 dampening=0.5", "SGD",
              {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}),
    OptimCase("SGD nesterov", "SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    OptimCase("SGD weight_decay=0.05", "SGD", {"lr": 0.1, "weight_decay": 0.05}),
    OptimCase("SGD momentum weight_decay nesterov", "SGD",
              {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01, "nesterov": True}),
    OptimCase("SGD maximize", "SGD", {"lr": 0.1, "maximize": True}),
    OptimCase("SGD maximize momentum dampening weight_decay", "SGD",
              {"lr": 0.1, "momentum": 0.7, "dampening": 0.3, "weight_decay": 0.02,
               "maximize": True}),
    OptimCase("SGD param groups (lr, weight_decay, momentum per group)", "SGD",
              {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3},
              groups=(((0,), {"lr": 0.03, "weight_decay": 0.1}),
                      ((1, 2), {"momentum": 0.5}))),
    OptimCase("SGD momentum, gradients missing on steps 1, 4, 5", "SGD",
              {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
              no_grad_at=((1, 2), (4, 1), (5, 2))),
    OptimCase("SGD lr changed in param_groups before step 6", "SGD",
              {"lr": 0.1, "momentum": 0.9}, lr_change=(6, 0, 0.02)),
    OptimCase("Adam default", "Adam", {}),
    OptimCase("Adam lr=0.05 betas=(0.8,0.99) eps=1e-6", "Adam",
              {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6}),
    OptimCase("Adam weight_decay=0.1", "Adam", {"lr": 0.01, "weight_decay": 0.1}),
    OptimCase("Adam maximize weight_decay", "Adam",
              {"lr": 0.01, "weight_decay": 0.05, "maximize": True}),
    OptimCase("Adam param groups (lr, weight_decay per group)", "Adam",
              {"lr": 0.01, "weight_decay": 0.01},
              groups=(((0, 2), {"lr": 0.05}), ((1,), {"weight_decay": 0.0, "betas": (0.5, 0.9)}))),
    OptimCase("Adam, a gradient missing on step 3", "Adam", {"lr": 0.02},
              no_grad_at=((3, 0), (3, 2))),
]


def _fake_grad(p: np.ndarray, step: int, index: int) -> np.ndarray:
    """A gradient that depends on the current parameter, so a wrong update spoils later steps.

    Set directly on both libraries' .grad, so this compares the update rules alone.
    """
    return np.sin(3.0 * p + index) - 0.3 * p * p + 0.1 * step


def _groups(case: OptimCase, params: list) -> list:
    if not case.groups:
        return params
    return [{"params": [params[i] for i in indices], **options}
            for indices, options in case.groups]


@pytest.mark.parametrize("case", OPTIM_CASES, ids=lambda c: c.name)
def test_optimizer_steps(case: OptimCase) -> None:
    rng = _rng(case.name)
    initial = [rng.standard_normal(shape) for shape in PARAM_SHAPES]
    ours = [nn.Parameter(value.copy()) for value in initial]
    theirs = [torch.nn.Parameter(torch.from_numpy(value.copy())) for value in initial]
    opt_ours = getattr(optim, case.kind)(_groups(case, ours), **case.options)
    opt_theirs = getattr(torch.optim, case.kind)(_groups(case, theirs), **case.options)
    for step in range(1, OPTIM_STEPS + 1):
        if case.lr_change and case.lr_change[0] == step:
            _, group, lr = case.lr_change
            opt_ours.param_groups[group]["lr"] = lr
            opt_theirs.param_groups[group]["lr"] = lr
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        for i, (p_ours, p_theirs) in enumerate(zip(ours, theirs)):
            if (step, i) in case.no_grad_at:
                continue
            grad = _fake_grad(p_ours.data, step, i)
            p_ours.grad = grad.copy()
            p_theirs.grad = torch.from_numpy(grad.copy())
        opt_ours.step()
        opt_theirs.step()
        for i, (p_ours, p_theirs) in enumerate(zip(ours, theirs)):
            _check(f"{case.name} after step {step}", f"parameter {i} {PARAM_SHAPES[i]}",
                   p_ours, p_theirs, OPTIM_TOL, OPTIM_TOL)


# --- a whole model, trained in both libraries ---------------------------------------------------

MODEL_STEPS, MODEL_BATCH = 20, 32


def _model_ours(fused: bool) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16, fused=fused), nn.ReLU(),
                         nn.Linear(16, 1))


def _model_theirs() -> Any:
    return torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.BatchNorm1d(16),
                               torch.nn.ReLU(), torch.nn.Linear(16, 1))


def _model_batch(rng: np.random.Generator) -> tuple:
    """Points of the plane labelled by quadrant parity (XOR): not linearly separable."""
    x = rng.standard_normal((MODEL_BATCH, 2))
    y = (x[:, :1] * x[:, 1:] > 0).astype(np.float64)
    return x, y


@pytest.mark.parametrize("fused", FUSED)
def test_model_training_matches_torch(fused: bool) -> None:
    name = f"Sequential(Linear(2,16), BatchNorm1d(16), ReLU(), Linear(16,1)) fused={fused}"
    tg.manual_seed(7)
    ours = _model_ours(fused).double()
    theirs = _model_theirs().double()
    _copy_weights(name, ours, theirs)
    options = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}
    opt_ours = optim.SGD(ours.parameters(), **options)
    opt_theirs = torch.optim.SGD(theirs.parameters(), **options)
    loss_ours_fn, loss_theirs_fn = nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(2024)
    for step in range(1, MODEL_STEPS + 1):
        x, y = _model_batch(rng)
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        loss_ours = loss_ours_fn(ours(Tensor(x)), Tensor(y))
        loss_theirs = loss_theirs_fn(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        _check(f"{name} step {step}", "loss", loss_ours, loss_theirs, MODEL_TOL, MODEL_TOL)
        loss_ours.backward()
        loss_theirs.backward()
        opt_ours.step()
        opt_theirs.step()
    _check_state(f"{name} after {MODEL_STEPS} steps", ours, theirs, MODEL_TOL, MODEL_TOL)
    assert int(ours[1].num_batches_tracked.data) == MODEL_STEPS, name


# --- checkpoints --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_checkpoint_loads_into_torch(tmp_path: Any, dtype: Any) -> None:
    name = f"checkpoint {np.dtype(dtype).name}"
    tg.manual_seed(11)
    ours = _model_ours(True).to(dtype)
    opt = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(5)
    for _ in range(5):  # train a little, so the buffers are not at their initial values
        x, y = _model_batch(rng)
        opt.zero_grad()
        nn.BCEWithLogitsLoss()(ours(Tensor(x.astype(dtype))), Tensor(y.astype(dtype))).backward()
        opt.step()
    path = tmp_path / "model.npz"
    tg.save(ours.state_dict(), path)

    theirs = _model_theirs().to(torch.float64 if dtype == np.float64 else torch.float32)
    with np.load(path, allow_pickle=False) as archive:
        state = {key: torch.from_numpy(archive[key]) for key in archive.files}
    assert list(state) == list(theirs.state_dict()), f"{name}: keys {list(state)}"
    theirs.load_state_dict(state, strict=True)
    for key, value in theirs.state_dict().items():
        assert value.numpy().dtype == ours.state_dict()[key].dtype, f"{name}: dtype of {key}"

    ours.eval()
    theirs.eval()
    x = rng.standard_normal((9, 2)).astype(dtype)
    out_ours = ours(Tensor(x))
    with torch.no_grad():
        out_theirs = theirs(torch.from_numpy(x))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    _check(name, "eval output", out_ours, out_theirs, tol, tol)
    _check_state(name, ours, theirs, 0.0, 0.0)
