"""RMSprop, AMSGrad, AdamW, step(closure) and optimizer state dicts, without torch: single
steps against the formulas worked by hand, and save → load → continue equal to never stopping."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_bn import nn, optim


def _param(values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def test_rmsprop_first_step_by_hand():
    p = _param([1.0, -2.0])
    p.grad = np.array([0.5, 2.0])
    optim.RMSprop([p], lr=0.1, alpha=0.9, eps=0.0).step()
    # s = 0.1·g², so the step is η·g/√(0.1·g²) = η·sign(g)/√0.1
    np.testing.assert_allclose(p.data, [1.0 - 0.1 / math.sqrt(0.1), -2.0 - 0.1 / math.sqrt(0.1)])


def test_adamw_decays_the_weights_outside_the_gradient():
    p, q = _param([3.0]), _param([3.0])
    for param in (p, q):
        param.grad = np.array([0.0])  # only the decay moves the weight
    optim.AdamW([p], lr=0.1, weight_decay=0.5).step()
    optim.Adam([q], lr=0.1, weight_decay=0.5).step()
    assert p.data[0] == pytest.approx(3.0 * (1 - 0.1 * 0.5))   # p·(1 − ηλ)
    assert q.data[0] == pytest.approx(3.0 - 0.1, rel=1e-6)     # L2 through Adam: a full step


def test_amsgrad_keeps_the_largest_second_moment():
    p = _param([0.0])
    opt = optim.Adam([p], lr=0.1, amsgrad=True)
    for g in (10.0, 0.1, 0.1):
        p.grad = np.array([g])
        opt.step()
    state = opt.state[p]
    assert state["max_exp_avg_sq"][0] > state["exp_avg_sq"][0]
    assert state["max_exp_avg_sq"][0] == pytest.approx(0.001 * 100.0)


@pytest.mark.parametrize("kind, options", [("SGD", {"lr": 0.1, "momentum": 0.9}),
                                           ("Adam", {"amsgrad": True}),
                                           ("AdamW", {"lr": 0.01}),
                                           ("RMSprop", {"momentum": 0.5, "centered": True})])
def test_state_dict_round_trip_resumes_exactly(kind, options):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    grads = [[rng.standard_normal(s.shape) for s in start] for _ in range(10)]

    def run(params, opt, steps):
        for step in steps:
            for p, g in zip(params, grads[step]):
                p.grad = g.copy()
            opt.step()

    straight = [nn.Parameter(s.copy()) for s in start]
    run(straight, getattr(optim, kind)(straight, **options), range(10))

    resumed = [nn.Parameter(s.copy()) for s in start]
    first = getattr(optim, kind)(resumed, **options)
    run(resumed, first, range(5))
    saved = first.state_dict()
    saved_copy = {k: v.copy() for k, v in saved["state"][0].items()
                  if isinstance(v, np.ndarray)}
    second = getattr(optim, kind)(resumed, lr=123.0)
    second.load_state_dict(saved)
    assert second.param_groups[0]["lr"] == options.get("lr", first.defaults["lr"])
    run(resumed, second, range(5, 10))
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.data, b.data)
    for k, v in saved_copy.items():  # the saved dict holds copies, untouched by later steps
        np.testing.assert_array_equal(saved["state"][0][k], v)


def test_load_state_dict_refuses_a_different_layout():
    a, b = _param([1.0, 2.0]), _param([3.0])
    opt = optim.Adam([a, b])
    with pytest.raises(ValueError, match="2 parameters, this optimizer has 1"):
        optim.Adam([a]).load_state_dict(opt.state_dict())
    a.grad, b.grad = np.ones(2), np.ones(1)
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError, match=r"shape \(2,\), the parameter has shape \(1,\)"):
        optim.Adam([b, a]).load_state_dict(saved)
    with pytest.raises(ValueError, match="parameter groups"):
        optim.Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(saved)


def test_step_calls_the_closure_and_returns_its_loss():
    p = _param([2.0])
    calls = []

    def closure():
        calls.append(1)
        p.grad = 2 * p.data  # ∂(p²)/∂p
        return float(p.data[0] ** 2)

    opt = optim.SGD([p], lr=0.25)
    assert opt.step(closure) == 4.0
    assert p.data[0] == pytest.approx(1.0) and calls == [1]
    assert opt.step() is None


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.RMSprop(p, lr=-1), "Invalid learning rate: -1"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "Invalid alpha value"),
    (lambda p: optim.AdamW(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0"),
])
def test_invalid_options(make, message):
    with pytest.raises(ValueError, match=message):
        make([_param([1.0])])


def test_model_and_optimizer_saved_in_one_checkpoint_resume_exactly(tmp_path):
    from tinygrad_bn import Tensor, checkpoint, manual_seed
    from tinygrad_bn.nn import functional as F

    rng = np.random.default_rng(3)
    batches = [(rng.standard_normal((16, 4)), rng.integers(0, 3, 16)) for _ in range(8)]

    def make():
        manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(),
                              nn.Linear(8, 3)).double()
        return model, optim.Adam(model.parameters(), lr=0.01, amsgrad=True)

    def steps(model, opt, chosen):
        for x, y in chosen:
            opt.zero_grad()
            F.cross_entropy(model(Tensor(x)), y).backward()
            opt.step()

    straight, straight_opt = make()
    steps(straight, straight_opt, batches)

    model, opt = make()
    steps(model, opt, batches[:4])
    arrays, groups = checkpoint.optimizer_arrays(opt.state_dict())
    path = tmp_path / "run.npz"
    checkpoint.save({**model.state_dict(), **arrays}, path, metadata={"optimizer": groups})

    resumed, resumed_opt = make()
    saved, metadata = checkpoint.load_with_metadata(path)
    resumed.load_state_dict({k: v for k, v in saved.items() if not k.startswith("optimizer.")})
    resumed_opt.load_state_dict(checkpoint.optimizer_state(saved, metadata["optimizer"]))
    steps(resumed, resumed_opt, batches[4:])
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


# --- torch's recorded trajectories (tests/fixtures/torch_optim_golden.npz) -------------------

def _golden_table():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent / "fixtures" / "make_torch_optim_golden.py"
    spec = importlib.util.spec_from_file_location("make_torch_optim_golden", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the case table only: the script imports torch lazily
    return module


GOLDEN = _golden_table()


@pytest.mark.parametrize("name", list(GOLDEN.CASES))
def test_twenty_steps_land_where_torch_landed(name):
    with np.load(GOLDEN.OUTPUT, allow_pickle=False) as archive:
        stored = {key: archive[key] for key in archive.files if key.startswith(name + "__")}
    kind, options = GOLDEN.CASES[name]
    params = [nn.Parameter(stored[f"{name}__initial{k}"].copy())
              for k in range(len(GOLDEN.SHAPES))]
    optimizer = getattr(optim, kind)(params, **options)
    for step in range(1, GOLDEN.STEPS + 1):
        for k, p in enumerate(params):
            p.grad = GOLDEN.fake_grad(p.data, step, k)
        optimizer.step()
    for k, p in enumerate(params):
        np.testing.assert_allclose(p.data, stored[f"{name}__final{k}"], rtol=1e-12, atol=1e-12,
                                   err_msg=f"{name}: parameter {k}")


def test_sgd_groups_keep_their_own_options_and_skip_parameters_without_gradient():
    # SGD reads each group's options once per step: a second group must not see the first's.
    p, q, idle = _param([1.0]), _param([1.0]), _param([5.0])
    p.grad, q.grad = np.array([2.0]), np.array([2.0])
    sgd = optim.SGD([{"params": [p, idle]}, {"params": [q], "lr": 0.5, "momentum": 0.9,
                                             "weight_decay": 0.1, "maximize": True}], lr=0.1)
    sgd.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 2.0])       # plain: p − η·g
    # maximize: g = −2 + 0.1·1 = −1.9 (decay added after the sign), first buffer = g
    np.testing.assert_allclose(q.data, [1.0 + 0.5 * 1.9])
    np.testing.assert_array_equal(idle.data, [5.0])                # no .grad: untouched
    assert p._version == 1 and idle._version == 0                  # the update is a change
