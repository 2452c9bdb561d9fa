"""The Module contract (registries, modes, state_dict), layers, losses and their errors."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor, gradcheck, nn
from tinygrad_bn.nn import functional as F


def placement_model(batch_norm: bool = True) -> nn.Sequential:
    tg.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16) if batch_norm else nn.Identity(),
                         nn.ReLU(), nn.Linear(16, 1))


def test_registries_fill_by_assignment_in_order():
    model = placement_model()
    assert [name for name, _ in model.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
    assert [name for name, _ in model.named_buffers()] == [
        "1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert [type(m).__name__ for m in model.children()] == [
        "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert len(list(model.modules())) == 5
    assert len(model) == 4 and isinstance(model[-1], nn.Linear) and len(model[1:]) == 3


def test_state_dict_keys_values_and_copies():
    model = placement_model()
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                           "1.running_var", "1.num_batches_tracked", "3.weight", "3.bias"]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["1.num_batches_tracked"].shape == () and state[
        "1.num_batches_tracked"].dtype == np.int64
    state["0.weight"][...] = 123.0
    assert not np.any(model[0].weight.data == 123.0)


def test_load_state_dict_round_trip_and_reports_every_problem_at_once():
    source, target = placement_model(), placement_model()
    source[0].weight.data += 1.0
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target[0].weight.data, source[0].weight.data)

    bad = source.state_dict()
    del bad["0.bias"]
    bad["extra"] = np.zeros(2)
    bad["3.weight"] = np.zeros((2, 16))
    with pytest.raises(RuntimeError) as info:
        target.load_state_dict(bad)
    message = str(info.value)
    assert 'missing key "0.bias"' in message and 'unexpected key "extra"' in message
    assert 'size mismatch for "3.weight"' in message and "(2, 16)" in message
    result = target.load_state_dict({k: v for k, v in bad.items() if k != "3.weight"},
                                    strict=False)
    assert result.missing_keys == ["0.bias", "3.weight"]
    assert result.unexpected_keys == ["extra"]


def test_train_eval_recurse_and_return_self():
    model = placement_model()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert model.train() is model and all(m.training for m in model.modules())
    model[1].eval()
    assert model.training and not model[1].training  # per-module, no global mode


def test_zero_grad_and_parameter_grad_none_until_backward():
    model = placement_model()
    assert all(p.grad is None for p in model.parameters())
    model(Tensor(np.random.randn(4, 2))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_to_double_float_and_repr():
    model = placement_model().double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64
    assert model.float()[0].weight.dtype == np.float32
    text = repr(model)
    assert "(0): Linear(in_features=2, out_features=16, bias=True)" in text
    assert "(1): BatchNorm1d(16, eps=1e-05, momentum=0.1" in text


def test_unknown_attributes_raise_attribute_error():
    with pytest.raises(AttributeError):
        _ = nn.Linear(2, 3).wieght


def test_linear_init_bounds_and_any_leading_dims():
    layer = nn.Linear(4, 3)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    assert np.all(np.abs(layer.weight.data) <= 0.5) and np.all(np.abs(layer.bias.data) <= 0.5)
    x = Tensor(np.random.randn(2, 5, 4), dtype=np.float64, requires_grad=True)
    assert layer(x).shape == (2, 5, 3)
    layer.double()
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), x, layer.weight, layer.bias)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 4\)"):
        layer(Tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match="positive integer"):
        nn.Linear(0, 3)


def test_seeded_init_is_repeatable():
    tg.manual_seed(3)
    a = nn.Linear(5, 5).weight.data.copy()
    tg.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(5, 5).weight.data, a)


def test_dropout_train_and_eval():
    tg.manual_seed(0)
    x = Tensor(np.ones((200, 50)))
    drop = nn.Dropout(0.3)
    y = drop(x).data
    assert set(np.unique(y)) <= {0.0, 1.0 / 0.7}
    assert abs((y == 0).mean() - 0.3) < 0.02
    assert drop.eval()(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


# --- losses -------------------------------------------------------------------------------------

LOSSES = [
    ("bce-with-logits", F.binary_cross_entropy_with_logits,
     lambda: np.random.randn(6, 1), lambda: np.random.randint(0, 2, (6, 1)).astype(float)),
    ("bce", F.binary_cross_entropy, lambda: np.random.uniform(0.1, 0.9, (5,)),
     lambda: np.random.randint(0, 2, 5).astype(float)),
    ("mse", F.mse_loss, lambda: np.random.randn(3, 4), lambda: np.random.randn(3, 4)),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name, fn, make_input, make_target", LOSSES, ids=[c[0] for c in LOSSES])
def test_loss_gradients(name, fn, make_input, make_target, reduction):
    x = Tensor(make_input(), requires_grad=True)
    target = Tensor(make_target(), requires_grad=True)
    assert gradcheck(lambda x, t: fn(x, t, reduction=reduction), x, target)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gradient_and_value(reduction):
    logits = Tensor(np.random.randn(4, 3), requires_grad=True)
    target = np.array([0, 2, 2, 1])
    assert gradcheck(lambda x: F.cross_entropy(x, target, reduction=reduction), logits)
    by_hand = -np.log(np.exp(logits.data) / np.exp(logits.data).sum(1, keepdims=True))
    by_hand = by_hand[np.arange(4), target]
    expected = {"mean": by_hand.mean(), "sum": by_hand.sum(), "none": by_hand}[reduction]
    np.testing.assert_allclose(F.cross_entropy(logits, target, reduction).data, expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.uint64])
def test_cross_entropy_takes_class_indices_of_any_integer_type(dtype):
    # The same loss and gradient as int64 indices (the picked entries are found by a flat
    # index; uint64 mixed with int64 would make it a float).
    logits = np.random.randn(6, 4)
    target = np.array([0, 3, 2, 1, 3, 0])
    results = []
    for labels in (target, target.astype(dtype)):
        x = Tensor(logits, requires_grad=True)
        loss = F.cross_entropy(x, labels)
        loss.backward()
        results.append((loss.item(), x.grad))
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])


def test_bce_with_logits_is_finite_at_extreme_logits():
    x = Tensor([[1000.0], [-1000.0], [1000.0]], requires_grad=True)
    loss = nn.BCEWithLogitsLoss()(x, np.array([[1.0], [0.0], [0.0]], dtype=np.float32))
    loss.backward()
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(1000.0 / 3)
    assert np.all(np.isfinite(x.grad))


def test_losses_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 1\)"):
        nn.MSELoss()(Tensor(np.zeros((4, 1))), np.zeros(4))
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 1\)"):
        nn.BCEWithLogitsLoss()(Tensor(np.zeros((4, 1))), np.zeros(4))
    with pytest.raises(ValueError, match="integer class indices"):
        nn.CrossEntropyLoss()(Tensor(np.zeros((4, 3))), np.zeros(4))
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        nn.CrossEntropyLoss()(Tensor(np.zeros((2, 3))), np.array([0, 3]))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.BCELoss()(Tensor([1.5]), [1.0])
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_bce_target_gradient_at_saturated_probabilities_uses_the_clamped_logs():
    p = Tensor([0.0, 1.0], dtype=np.float64)
    y = Tensor([0.5, 0.5], requires_grad=True, dtype=np.float64)
    F.binary_cross_entropy(p, y, reduction="sum").backward()
    np.testing.assert_allclose(y.grad, [100.0, -100.0])  # log(1 − p) − log p, clamped at −100
