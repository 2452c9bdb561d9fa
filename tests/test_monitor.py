"""The training monitor: its numbers equal the same statistics computed by hand from the
network's own tensors, recording never changes training, and a recording survives saving."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tinygrad_bn import Tensor, manual_seed, nn, no_grad, optim
from tinygrad_bn.monitor import Monitor, Recording


def network(activation=nn.Tanh, batch_norm: bool = True) -> nn.Sequential:
    manual_seed(4)
    layers = [nn.Linear(3, 6)] + ([nn.BatchNorm1d(6)] if batch_norm else [])
    return nn.Sequential(*layers, activation(), nn.Linear(6, 2))


def batches(steps: int = 20) -> list:
    rng = np.random.default_rng(1)
    return [(Tensor(rng.normal(size=(8, 3)) * 3), rng.integers(0, 2, 8)) for _ in range(steps)]


def train(model: nn.Module, data: list, monitor: Monitor | None = None) -> None:
    optimizer = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for x, y in data:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with no_grad():
            model.eval()
            model(x)          # an evaluation pass in between must not be recorded
            model.train()
        if monitor is not None:
            monitor.step()


@pytest.mark.parametrize("activation", [nn.Tanh, nn.Sigmoid, nn.ReLU])
def test_recording_does_not_change_training(activation):
    plain, watched = network(activation), network(activation)
    train(plain, batches())
    monitor = Monitor(watched, every=3)
    train(watched, batches(), monitor)
    assert list(monitor.recording.steps) == [0, 3, 6, 9, 12, 15, 18]
    for (name, a), (_, b) in zip(plain.state_dict().items(), watched.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_statistics_equal_a_hand_computation():
    model = network()
    model[1].weight.data[...] = 3.0       # γ = 3: some tanh inputs beyond ±2.09 saturate
    data = batches(3)
    monitor = Monitor(model, every=2, sample=10_000)
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    x, y = data[0]
    # Keep every layer's output tensor (after backward its .grad holds ∂L/∂output).
    before = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    outputs = []
    for layer in model:
        layer.register_forward_hook(lambda m, args, out: outputs.append(out))
    loss = nn.functional.cross_entropy(model(x), y)
    h, z, a, logits = outputs
    optimizer.zero_grad()
    loss.backward()
    grads = {name: p.grad.astype(np.float64).copy() for name, p in model.named_parameters()}
    optimizer.step()
    monitor.step()

    rec = monitor.recording
    assert list(rec.steps) == [0]
    for name, t in (("0", h), ("1", z), ("2", a), ("3", logits)):
        values, grad = t.data.astype(np.float64), t.grad.astype(np.float64)
        stats = rec.layers[name]
        assert stats["mean"][0] == pytest.approx(values.mean(), rel=1e-12)
        assert stats["std"][0] == pytest.approx(values.std(), rel=1e-12)
        for q in (15, 50, 85):
            assert stats[f"p{q}"][0] == pytest.approx(np.percentile(values, q), rel=1e-12)
        assert stats["grad_mean"][0] == pytest.approx(grad.mean(), rel=1e-9, abs=1e-15)
        assert stats["grad_std"][0] == pytest.approx(grad.std(), rel=1e-9)
        np.testing.assert_array_equal(stats["sample"][0][:values.size], values.reshape(-1))
    tanh_out = a.data.astype(np.float64)
    assert rec.layers["2"]["saturated"][0] == pytest.approx(np.mean(np.abs(tanh_out) > 0.97))
    assert rec.layers["2"]["saturated"][0] > 0
    for q in (15, 50, 85):      # the tanh's input is the BatchNorm's output
        assert rec.layers["2"][f"input_p{q}"][0] == pytest.approx(np.percentile(z.data, q))
    assert np.isnan(rec.layers["0"]["saturated"][0]) and np.isnan(rec.layers["2"]["dead"][0])

    for name, param in model.named_parameters():
        stats = rec.params[name]
        data_std = before[name].std()
        if data_std == 0:     # γ = 3 and β = 0 everywhere: no spread to compare against
            assert np.isnan(stats["grad_data"][0])
        else:
            assert stats["grad_data"][0] == pytest.approx(grads[name].std() / data_std,
                                                          rel=1e-9)
        norm = np.linalg.norm(before[name])
        if norm == 0:         # β starts at 0: a ratio to nothing is left undefined (NaN)
            assert np.isnan(stats["update_data"][0])
        else:
            change = np.linalg.norm(param.data - before[name]) / norm
            assert stats["update_data"][0] == pytest.approx(change, rel=1e-6)

    bn = rec.batchnorm["1"]
    hidden = h.data.astype(np.float64)
    np.testing.assert_allclose(bn["batch_mean"][0], hidden.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn["batch_var"][0], hidden.var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn["running_mean"][0], 0.1 * hidden.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(bn["gamma"][0], before["1.weight"])   # as used in forward
    np.testing.assert_array_equal(bn["beta"][0], before["1.bias"])


def test_dead_relu_units_are_counted_over_the_whole_batch():
    layer = nn.ReLU()
    monitor = Monitor(nn.Sequential(layer), every=1)
    x = Tensor([[-1.0, 2.0, -3.0], [-1.0, -2.0, -3.0]], requires_grad=True)
    monitor.model(x).sum().backward()
    monitor.step()
    # Units 0 and 2 are zero for both rows; unit 1 is alive in the first row.
    assert monitor.recording.layers["0"]["dead"][0] == pytest.approx(2 / 3)


def test_sigmoid_saturation_counts_both_tails():
    monitor = Monitor(nn.Sequential(nn.Sigmoid()), every=1)
    x = Tensor([[-10.0, 0.0, 10.0, 1.0]], requires_grad=True)
    monitor.model(x).sum().backward()
    assert monitor.recording.layers["0"]["saturated"][0] == pytest.approx(0.5)


def test_a_recording_saves_and_loads_without_pickle(tmp_path):
    model = network(batch_norm=False)
    monitor = Monitor(model, every=5, title="run A")
    train(model, batches(10), monitor)
    monitor.recording.save(tmp_path)
    meta = json.loads((tmp_path / "stats.json").read_text())
    assert meta["steps"] == [0, 5] and [layer["kind"] for layer in meta["layers"]] == \
        ["", "tanh", ""]
    loaded = Recording.load(tmp_path)
    assert loaded.title == "run A" and loaded.types["1"] == "Tanh"
    for key, value in monitor.recording.arrays().items():
        np.testing.assert_array_equal(loaded.arrays()[key], value, err_msg=key)
    with np.load(tmp_path / "stats.npz", allow_pickle=False) as archive:
        assert all(archive[k].dtype != object for k in archive.files)


def test_detach_removes_every_hook_and_bad_use_is_refused(tmp_path):
    model = network()
    monitor = Monitor(model, every=1)
    with pytest.raises(RuntimeError, match="already attached"):
        monitor.attach(model)
    monitor.detach()
    train(model, batches(2), monitor)
    assert len(monitor.recording) == 0
    with pytest.raises(ValueError, match="every must be a positive integer"):
        Monitor(every=0)
    with pytest.raises(ValueError, match="no stats.npz"):
        Recording.load(tmp_path)
