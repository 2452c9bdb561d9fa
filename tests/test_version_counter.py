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
    assert "is at version 1 and was changed after Mul saved it" in message
    assert w.grad is None  # refused before any gradient was stored


def test_raw_element_write_recorded_with_increment_version_is_refused():
    # A write through an array taken without `.data` (the library's load_state_dict and
    # reset_parameters hold their own references) is recorded with increment_version.
    w = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    x = Tensor([[1.0, 1.0]], requires_grad=True)
    loss = (x @ w).sum()
    w.data[...] = 0
    increment_version(w)
    with pytest.raises(RuntimeError, match="input 1 of MatMul.*version 1 and was changed"):
        loss.backward()


def test_a_changed_output_that_its_op_saved_is_refused():
    x = Tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()          # Exp saves its output y: ∂L/∂x = g · y
    loss = y.sum()
    y.data -= 1
    with pytest.raises(RuntimeError, match="the output of Exp.*changed after Exp saved it"):
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
    assert "is at version 1 and was changed after LinearFunction saved it" in str(info.value)


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


# --- raw writes through the array `.data` hands out ---------------------------------------

def _matmul_graph():
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    w = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    return x, w, (x @ w).sum()   # MatMul saved x and w (∂L/∂x = g·wᵀ, ∂L/∂w = xᵀ·g)


@pytest.mark.parametrize("write", [
    lambda w: w.data.__setitem__(Ellipsis, 0),           # w.data[...] = 0
    lambda w: w.data.__setitem__((0, 0), w.data[0, 0] + 1),
    lambda w: np.copyto(w.data, np.ones((2, 2), np.float32)),
    lambda w: w.data.fill(7),
    lambda w: w.numpy().__setitem__(1, 0),                # .numpy() hands out the same array
    lambda w: w.detach().data.__setitem__(0, 5),          # so does detach()
    lambda w: np.asarray(w).__setitem__(0, 5),            # and np.asarray(tensor)
    lambda w: w.data.reshape(-1).__setitem__(3, 0),       # a view of the handed-out array
], ids=["setitem-ellipsis", "element", "copyto", "fill", "numpy", "detach", "asarray", "view"])
def test_a_raw_write_between_forward_and_backward_is_refused_naming_the_op(write):
    x, w, loss = _matmul_graph()
    write(w)
    with pytest.raises(RuntimeError, match=MESSAGE) as info:
        loss.backward()
    assert "input 1 of MatMul" in str(info.value)
    assert "written in place through its .data array" in str(info.value)
    assert x.grad is None and w.grad is None   # refused before any gradient was stored


def test_the_issues_cases_element_plus_equals_and_ellipsis():
    x, w, loss = _matmul_graph()
    w.data[0] += 1
    with pytest.raises(RuntimeError, match="input 1 of MatMul"):
        loss.backward()
    x, w, loss = _matmul_graph()
    w.data[...] = 0
    with pytest.raises(RuntimeError, match="input 1 of MatMul"):
        loss.backward()


def test_a_raw_write_into_an_output_its_op_saved_is_refused():
    x = Tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()                       # Exp saves y itself
    loss = y.sum()
    y.data[0] = 0.0
    with pytest.raises(RuntimeError, match="the output of Exp.*written in place"):
        loss.backward()


def test_reading_data_between_forward_and_backward_is_not_a_change(capsys):
    x, w, loss = _matmul_graph()
    print(w.data, x.data.tolist(), w.numpy())
    total = np.sum(w.data) + float(w.data.mean())
    copied = w.data.copy()
    copied[...] = 0                   # a copy is the reader's own
    np.array(w.data)[0, 0] = 9.0
    w.data[...] = w.data              # writing the same values back changes nothing
    loss.backward()
    assert total == 12.5 and x.grad.tolist() == [[3.0, 7.0]]
    assert w.grad.tolist() == [[1.0, 1.0], [2.0, 2.0]]
    assert "[[1. 2.]" in capsys.readouterr().out


def test_reading_nan_values_is_not_a_change():
    x = Tensor([np.nan, 1.0], requires_grad=True)
    w = Tensor([2.0, 3.0], requires_grad=True)
    loss = (x * w).sum()
    assert np.isnan(x.data[0])
    loss.backward()                   # NaN ≠ NaN, but the array was only read
    assert w.grad[1] == 1.0


def test_a_raw_write_between_two_forward_passes_refuses_only_the_older_graph():
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0], requires_grad=True)
    old = (x * w).sum()
    w.data[...] = [5.0, 6.0]          # after `old` saved w, before `new` does
    new = (x * w).sum()
    new.backward()                    # saw the new values: fine
    assert x.grad.tolist() == [5.0, 6.0]
    with pytest.raises(RuntimeError, match="input 1 of Mul"):
        old.backward()

    w = Tensor([1.0, 2.0], requires_grad=True)
    first = (x * w).sum()
    print(w.data)                     # only read, then a second forward pass saves w again
    second = (x * w).sum()
    w.data[1] = 0.0                   # through the array handed out before `second`
    with pytest.raises(RuntimeError, match="input 1 of Mul"):
        second.backward()
    with pytest.raises(RuntimeError, match="input 1 of Mul"):
        first.backward()


def test_what_is_not_seen_a_reference_taken_before_the_forward_pass():
    """Documented limit (docs/autodiff.md §10): the engine can only watch arrays handed out
    after the forward pass saved them; increment_version records such a write."""
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0], requires_grad=True)
    array = w.data                    # taken before the graph exists
    loss = (x * w).sum()
    array[...] = 0
    loss.backward()                   # not refused: x.grad uses the zeros
    assert x.grad.tolist() == [0.0, 0.0]
    loss = (x * w).sum()
    array[...] = 1
    increment_version(w)
    with pytest.raises(RuntimeError, match="input 1 of Mul"):
        loss.backward()


@pytest.mark.parametrize("make_optimizer", [
    lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    lambda p: optim.Adam(p, lr=0.01),
    lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5),
], ids=["SGD", "Adam", "RMSprop"])
def test_training_loops_that_print_weights_train_exactly_as_those_that_do_not(make_optimizer,
                                                                            capsys):
    def train(show: bool) -> list:
        tg.manual_seed(3)
        model = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 1))
        opt = make_optimizer(model.parameters())
        rng = np.random.default_rng(3)
        x = Tensor(rng.normal(size=(12, 3)).astype(np.float32))
        y = Tensor(rng.normal(size=(12, 1)).astype(np.float32))
        for _ in range(5):
            opt.zero_grad()
            loss = nn.MSELoss()(model(x), y)
            if show:                  # what learners do between forward and backward
                print(model[0].weight.data, model[1].running_mean.data, loss.data)
            loss.backward()
            opt.step()
        return [p.data.copy() for p in model.parameters()]

    for a, b in zip(train(False), train(True)):
        np.testing.assert_array_equal(a, b)


def test_the_copy_is_released_by_backward_and_steps_after_backward_copy_nothing():
    import tracemalloc
    w = Tensor(np.ones((1000, 1000), np.float32), requires_grad=True)   # 4 MB
    x = Tensor(np.ones((2, 1000), np.float32))
    loss = (x @ w).sum()
    tracemalloc.start()
    try:
        w.data                        # handed out after MatMul saved it: a 4 MB copy
        held, _ = tracemalloc.get_traced_memory()
        loss.backward()
        freed, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with tg.no_grad():
            w.data -= 0.1 * w.grad    # an optimizer step after backward
        _, step_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # backward stored w.grad (4 MB) and dropped the copy (4 MB): no net growth
    assert held > 4_000_000 and freed < held + 1_000_000
    # above what backward left: the step's temporary 0.1·grad (4 MB), and no copy of w
    assert step_peak - freed < 4_000_000 + 1_000_000
