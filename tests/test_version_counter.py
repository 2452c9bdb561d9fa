"""In-place changes to arrays saved for backward are refused, as PyTorch's version counter does.

Without the check each case below returns a wrong gradient silently: the backward rules read
arrays that no longer hold what the forward pass saw.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor, nn, optim
from tinygrad_bn.tensor import increment_version

MESSAGE = "modified by an inplace operation"


def test_assigning_data_counts_as_a_change_and_new_tensors_start_at_zero():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert x._version == 0 and (x * 2.0)._version == 0
    x.data += 1          # `+=` on an attribute assigns the result back
    x.data = x.data * 2  # a new array
    assert x._version == 2 and x.data.tolist() == [4.0, 6.0]
    increment_version(x)
    assert x._version == 3


def test_plus_equals_on_an_input_saved_by_mul_is_refused_naming_the_op():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = Tensor([4.0, 5.0, 6.0], requires_grad=True)
    loss = (x * w).sum()
    x.data += 1          # Mul saved x for ∂L/∂w = x: that would now be x + 1
    with pytest.raises(RuntimeError, match=MESSAGE) as info:
        loss.backward()
    message = str(info.value)
    assert "input 0 of Mul" in message and "float32" in message and "(3,)" in message
    assert "is at version 1; expected version 0" in message
    assert w.grad is None  # refused before any gradient was stored


def test_raw_element_write_recorded_with_increment_version_is_refused():
    # `w.data[...] = 0` writes into the array without assigning `.data`: the engine cannot see
    # it, so code doing that (the library's load_state_dict, reset_parameters …) records it.
    w = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    x = Tensor([[1.0, 1.0]], requires_grad=True)
    loss = (x @ w).sum()
    w.data[...] = 0
    increment_version(w)
    with pytest.raises(RuntimeError, match="input 1 of MatMul.*version 1; expected version 0"):
        loss.backward()


def test_a_changed_output_that_its_op_saved_is_refused():
    x = Tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()          # Exp saves its output y: ∂L/∂x = g · y
    loss = y.sum()
    y.data -= 1
    with pytest.raises(RuntimeError, match="the output of Exp.*version 1; expected version 0"):
        loss.backward()


def test_an_optimizer_step_between_forward_and_backward_is_refused():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)
    x = Tensor(np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32))
    loss = model(x).sum()
    loss.backward()
    opt.step()           # the weights LinearFunction saved have moved on
    with pytest.raises(RuntimeError, match="input 1 of LinearFunction") as info:
        loss.backward()  # backward again, on the old graph: refused
    assert "is at version 1; expected version 0" in str(info.value)


def test_load_state_dict_and_reset_parameters_between_forward_and_backward_are_refused():
    layer = nn.Linear(2, 2)
    loss = layer(Tensor([[1.0, 2.0]])).sum()
    layer.load_state_dict(layer.state_dict())
    with pytest.raises(RuntimeError, match="LinearFunction"):
        loss.backward()
    bn = nn.BatchNorm1d(2)
    loss = (bn(Tensor([[1.0, 2.0], [3.0, 5.0]])) * Tensor([[1.0, 2.0], [3.0, 4.0]])).sum()
    bn.reset_parameters()  # γ was saved by BatchNormFunction (as a view of the weight)
    with pytest.raises(RuntimeError, match="input 1 of BatchNormFunction"):
        loss.backward()


def test_changes_that_backward_does_not_need_are_allowed():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    loss = (a + b).sum()      # Add saves nothing: its gradient does not depend on the values
    a.data += 10
    loss.backward()
    assert a.grad.tolist() == [1.0, 1.0] and b.grad.tolist() == [1.0, 1.0]

    x = Tensor([1.0, 2.0], requires_grad=True)
    w = Tensor([3.0, 4.0], requires_grad=True)
    loss = (x * w).sum()
    w.data = np.array([0.0, 0.0], np.float32)  # replaced, not changed: Mul kept the old array
    loss.backward()
    assert x.grad.tolist() == [3.0, 4.0]


def test_ordinary_training_and_backward_twice_still_work():
    tg.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    opt = optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(1)
    x = Tensor(rng.normal(size=(16, 2)).astype(np.float32))
    y = Tensor((rng.random((16, 1)) > 0.5).astype(np.float32))
    losses = []
    for _ in range(20):      # zero_grad, forward, backward, step, repeat
        opt.zero_grad()
        loss = nn.BCEWithLogitsLoss()(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]

    opt.zero_grad()
    loss = nn.BCEWithLogitsLoss()(model(x), y)
    loss.backward()
    first = model[0].weight.grad.copy()
    loss.backward()          # nothing changed in between: allowed, and gradients accumulate
    np.testing.assert_allclose(model[0].weight.grad, 2 * first, rtol=1e-6)


def test_torch_refuses_the_same_cases():
    """The behaviour copied: torch raises for an optimizer step between forward and backward,
    and for a changed saved input, but not for a change to an input it did not save."""
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(torch.ones(2, 3)).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match=MESSAGE):
        loss.backward()

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    loss = (x * w).sum()
    with torch.no_grad():
        x += 1
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
        loss.backward()
    loss = (x + w).sum()
    with torch.no_grad():
        x += 1
    loss.backward()  # Add saved nothing
