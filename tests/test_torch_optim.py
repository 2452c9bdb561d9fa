"""PyTorch as the reference for RMSprop, Adam(amsgrad), AdamW, step(closure) and the optimizer
state dict: 20 float64 steps land where torch's land (to 1e-12), our state_dict has torch's
structure and names, and a state dict taken from torch resumes training exactly as torch does.
Skipped when torch is missing (tests/test_optim_family.py checks the same without torch)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinygrad_bn import nn, optim  # noqa: E402  (after the skip, on purpose)

SHAPES = [(3, 4), (4,), (2,)]
STEPS = 20
TOL = 1e-12

CASES = [
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.005, "alpha": 0.9, "eps": 1e-6}),
    ("RMSprop", {"momentum": 0.9, "weight_decay": 0.01}),
    ("RMSprop", {"centered": True, "momentum": 0.5}),
    ("RMSprop", {"centered": True, "maximize": True, "weight_decay": 0.1}),
    ("Adam", {"amsgrad": True, "lr": 0.05}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.1, "betas": (0.8, 0.9)}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.3}),
    ("AdamW", {"amsgrad": True, "weight_decay": 0.1, "maximize": True}),
]


def _grad(p: np.ndarray, step: int, index: int) -> np.ndarray:
    """Depends on the parameter, so a wrong update spoils every later step; it changes sign
    now and then so that AMSGrad's running maximum matters."""
    return np.sin(3.0 * p + index) * np.cos(step) - 0.3 * p * p + 0.1 * step


def _pair(kind: str, options: dict, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(s) for s in SHAPES]
    ours = [nn.Parameter(v.copy()) for v in initial]
    theirs = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in initial]
    return (ours, getattr(optim, kind)(ours, **options),
            theirs, getattr(torch.optim, kind)(theirs, **options))


def _step(ours, opt_ours, theirs, opt_theirs, step):
    for i, (p, q) in enumerate(zip(ours, theirs)):
        g = _grad(p.data, step, i)
        p.grad = g.copy()
        q.grad = torch.from_numpy(g.copy())
    opt_ours.step()
    opt_theirs.step()


@pytest.mark.parametrize("kind, options", CASES, ids=[f"{k} {o}" for k, o in CASES])
def test_twenty_steps_match_torch(kind, options):
    ours, opt_ours, theirs, opt_theirs = _pair(kind, options)
    for step in range(1, STEPS + 1):
        _step(ours, opt_ours, theirs, opt_theirs, step)
        for i, (p, q) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=TOL, atol=TOL,
                                       err_msg=f"{kind} {options} step {step} parameter {i}")


def _torch_state_to_numpy(state_dict: dict) -> dict:
    state = {k: {name: (v.numpy().copy() if v.ndim else v.item()) if torch.is_tensor(v) else v
                 for name, v in entry.items()} for k, entry in state_dict["state"].items()}
    return {"state": state, "param_groups": [dict(g) for g in state_dict["param_groups"]]}


@pytest.mark.parametrize("kind, options", [("SGD", {"lr": 0.1, "momentum": 0.9}),
                                           ("Adam", {"amsgrad": True}), ("AdamW", {}),
                                           ("RMSprop", {"centered": True, "momentum": 0.9})])
def test_state_dict_has_torchs_structure_and_resumes_from_torchs(kind, options):
    ours, opt_ours, theirs, opt_theirs = _pair(kind, options)
    for step in range(1, 6):
        _step(ours, opt_ours, theirs, opt_theirs, step)
    saved_ours, saved_theirs = opt_ours.state_dict(), opt_theirs.state_dict()
    assert list(saved_ours["state"]) == list(saved_theirs["state"]) == [0, 1, 2]
    for k in saved_theirs["state"]:
        assert sorted(saved_ours["state"][k]) == sorted(saved_theirs["state"][k]), kind
        for name, value in saved_theirs["state"][k].items():
            np.testing.assert_allclose(saved_ours["state"][k][name], value.numpy(), TOL, TOL)
    theirs_groups = saved_theirs["param_groups"]
    assert saved_ours["param_groups"][0]["params"] == theirs_groups[0]["params"]
    for option in ours_options(saved_ours):
        assert saved_ours["param_groups"][0][option] == theirs_groups[0][option], option

    # A fresh optimizer of ours, given torch's state dict, continues exactly as torch does.
    resumed = getattr(optim, kind)(ours, **options)
    resumed.load_state_dict(_torch_state_to_numpy(saved_theirs))
    for step in range(6, 11):
        _step(ours, resumed, theirs, opt_theirs, step)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=TOL, atol=TOL)


def ours_options(saved: dict) -> list:
    """The options both libraries have (torch keeps a few more, e.g. foreach)."""
    return [k for k in saved["param_groups"][0] if k not in ("params",)]


def test_step_with_closure_returns_the_loss_like_torch():
    x = np.random.default_rng(4).standard_normal((5, 3))
    ours_layer, theirs_layer = nn.Linear(3, 1).double(), torch.nn.Linear(3, 1).double()
    theirs_layer.load_state_dict({k: torch.from_numpy(v.copy())
                                  for k, v in ours_layer.state_dict().items()})
    opt_ours = optim.RMSprop(ours_layer.parameters(), lr=0.01)
    opt_theirs = torch.optim.RMSprop(theirs_layer.parameters(), lr=0.01)
    from tinygrad_bn import Tensor

    def closure_ours():
        opt_ours.zero_grad()
        loss = (ours_layer(Tensor(x)) ** 2).mean()
        loss.backward()
        return loss

    def closure_theirs():
        opt_theirs.zero_grad()
        loss = (theirs_layer(torch.from_numpy(x)) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(3):
        loss_ours, loss_theirs = opt_ours.step(closure_ours), opt_theirs.step(closure_theirs)
        assert abs(float(loss_ours) - loss_theirs.item()) < 1e-12
    np.testing.assert_allclose(ours_layer.weight.data, theirs_layer.weight.detach().numpy(),
                               TOL, TOL)
