"""Optimizers (the update rules, written out by hand here) and .npz checkpoints."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor, nn, optim


def param(values) -> nn.Parameter:
    return nn.Parameter(np.array(values, dtype=np.float64))


def test_sgd_is_p_minus_lr_times_grad_for_every_parameter_including_gamma_and_beta():
    bn = nn.BatchNorm1d(2).double()
    x = Tensor(np.array([[7.0, 70.0], [8.0, 80.0], [9.0, 90.0], [6.0, 60.0]]))
    (bn(x) * Tensor(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]))).sum().backward()
    gamma, beta = bn.gamma.data.copy(), bn.beta.data.copy()
    d_gamma, d_beta = bn.gamma.grad.copy(), bn.beta.grad.copy()
    optim.SGD(bn.parameters(), lr=0.1).step()
    np.testing.assert_allclose(bn.gamma.data, gamma - 0.1 * d_gamma)  # γ ← γ − η·∂L/∂γ
    np.testing.assert_allclose(bn.beta.data, beta - 0.1 * d_beta)     # β ← β − η·∂L/∂β


def test_sgd_momentum_dampening_nesterov_weight_decay_by_hand():
    p = param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.5, momentum=0.9, weight_decay=0.1, nesterov=True)
    grads = [np.array([0.3, 0.1]), np.array([-0.2, 0.4])]
    expected = p.data.copy()
    buffer = None
    for g in grads:
        p.grad = g.copy()
        opt.step()
        d = g + 0.1 * expected
        buffer = d.copy() if buffer is None else 0.9 * buffer + d
        expected = expected - 0.5 * (d + 0.9 * buffer)
        np.testing.assert_allclose(p.data, expected, rtol=1e-14)

    q = param([1.0])
    opt = optim.SGD([q], lr=1.0, momentum=0.5, dampening=0.5)
    for _ in range(2):
        q.grad = np.array([1.0])
        opt.step()
    # step 1: b = 1 (undampened), q = 0; step 2: b = 0.5·1 + 0.5·1 = 1, q = −1
    np.testing.assert_allclose(q.data, [-1.0])


def test_sgd_skips_parameters_without_grad_and_maximize_ascends():
    a, b = param([1.0]), param([1.0])
    a.grad = np.array([2.0])
    optim.SGD([a, b], lr=0.5, maximize=True).step()
    assert a.data.tolist() == [2.0] and b.data.tolist() == [1.0]


def test_param_groups_have_their_own_options():
    w, g = param([1.0]), param([1.0])
    opt = optim.SGD([{"params": [w]}, {"params": [g], "weight_decay": 0.0, "lr": 1.0}], lr=0.1,
                    weight_decay=0.5)
    w.grad, g.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    np.testing.assert_allclose(w.data, [1.0 - 0.1 * (1.0 + 0.5)])
    np.testing.assert_allclose(g.data, [0.0])
    opt.zero_grad()
    assert w.grad is None and g.grad is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(lr=0.1, momentum=-1), "Invalid momentum value: -1"),
    (dict(lr=0.1, weight_decay=-1), "Invalid weight_decay value: -1"),
    (dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum"),
])
def test_sgd_validates_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optim.SGD([param([1.0])], **kwargs)


def test_optimizer_input_errors():
    with pytest.raises(TypeError):
        optim.SGD([param([1.0])])  # lr is required
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam([param([1.0])], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="unknown option"):
        optim.SGD([{"params": [param([1.0])], "momentun": 0.9}], lr=0.1)


def test_adam_matches_the_update_written_out():
    p = param([0.5, -1.0])
    opt = optim.Adam([p], lr=0.01, betas=(0.8, 0.9), eps=1e-8, weight_decay=0.1)
    m = v = np.zeros(2)
    expected = p.data.copy()
    for t, g in enumerate([np.array([0.3, -0.1]), np.array([0.2, 0.5])], start=1):
        p.grad = g.copy()
        opt.step()
        d = g + 0.1 * expected
        m = 0.8 * m + 0.2 * d
        v = 0.9 * v + 0.1 * d * d
        expected = expected - 0.01 * (m / (1 - 0.8 ** t)) / (np.sqrt(v / (1 - 0.9 ** t)) + 1e-8)
        np.testing.assert_allclose(p.data, expected, rtol=1e-12)


def test_training_reduces_the_loss():
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = ((x[:, :1] * x[:, 1:]) > 0).astype(np.float32)  # XOR-like: not linearly separable
    model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    for _ in range(100):
        loss = loss_fn(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


# --- checkpoints ---------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    model(Tensor(np.random.randn(4, 2).astype(np.float32)))
    path = tmp_path / "model.npz"
    tg.save(model.state_dict(), path)
    loaded = tg.load(path)
    assert list(loaded) == list(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded[key], value)
        assert loaded[key].dtype == value.dtype
    fresh = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    fresh.load_state_dict(loaded)
    assert int(fresh[1].num_batches_tracked.data) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left
    assert path.stat().st_mode & 0o044  # readable by others, like any new file (umask 022)


def test_a_checkpoint_with_a_missing_key_is_refused_with_the_list(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    state = model.state_dict()
    del state["1.running_var"]
    tg.save(state, tmp_path / "partial.npz")
    with pytest.raises(RuntimeError, match='missing key "1.running_var"'):
        model.load_state_dict(tg.load(tmp_path / "partial.npz"))


def test_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, weight=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="pickled"):
        tg.load(path)
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps({"weight": [1, 2]}))
    with pytest.raises(ValueError, match="pickled|not a valid"):
        tg.load(raw)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        tg.load(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("hello")
    with pytest.raises(ValueError, match="junk.npz"):
        tg.load(junk)


def test_a_failed_save_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "model.npz"
    tg.save({"a": np.ones(2)}, path)
    with pytest.raises(TypeError, match="numeric"):
        tg.save({"a": np.array(["text"])}, path)
    np.testing.assert_array_equal(tg.load(path)["a"], np.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
