"""BatchNorm1d: the properties that teach it, both forward paths, running statistics, errors.

PyTorch comparisons live in test_torch_nn.py (and, without torch, test_golden.py).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor, Value, gradcheck, nn, scalar
from tinygrad_bn.nn import functional as F

NOTES_BATCH = [[7.0, 70.0], [8.0, 80.0], [9.0, 90.0], [6.0, 60.0]]  # the notes' m = 4 batch


def bn64(num_features: int, **options) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(num_features, **options).double()


def random_input(*shape) -> Tensor:
    return Tensor(np.random.default_rng(0).normal(2.0, 3.0, shape), requires_grad=True)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)], ids=["NC", "NCL"])
def test_fused_and_composed_paths_agree_in_values_and_every_gradient(shape):
    outputs, grads = [], []
    for fused in (True, False):
        bn = bn64(3, fused=fused)
        bn.gamma.data[:] = [0.5, 2.0, -1.0]
        bn.beta.data[:] = [0.1, 0.0, 3.0]
        x = random_input(*shape)
        y = bn(x)
        (y * Tensor(np.arange(y.data.size).reshape(shape) / 7.0)).sum().backward()
        outputs.append((y.data, bn.running_mean.data.copy(), bn.running_var.data.copy()))
        grads.append((x.grad, bn.gamma.grad, bn.beta.grad))
    for a, b in zip(outputs[0] + grads[0], outputs[1] + grads[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("shape", [(5, 2), (3, 2, 4)], ids=["NC", "NCL"])
def test_batch_norm_gradients_match_finite_differences(fused, shape):
    x = random_input(*shape)
    gamma = Tensor([1.5, -0.5], requires_grad=True, dtype=np.float64)
    beta = Tensor([0.2, 0.7], requires_grad=True, dtype=np.float64)
    weights = Tensor(np.random.default_rng(1).normal(size=shape))

    def loss(x, gamma, beta):  # a weighted sum, so the gradient is not trivially zero
        out = F.batch_norm(x, None, None, gamma, beta, training=True, fused=fused)
        return (out * weights).sum()

    assert gradcheck(loss, x, gamma, beta)


def test_training_output_has_zero_mean_unit_variance_per_feature():
    y = bn64(2)(Tensor(np.array(NOTES_BATCH))).data
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), [1.0, 1.0], rtol=1e-4)  # ε makes it just below 1


def test_input_gradients_sum_to_zero_per_channel():
    x = random_input(8, 3)
    y = bn64(3)(x)
    (y * Tensor(np.random.default_rng(2).normal(size=(8, 3)))).sum().backward()
    np.testing.assert_allclose(x.grad.sum(axis=0), 0.0, atol=1e-12)


def test_a_linear_bias_feeding_batch_norm_gets_zero_gradient():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1)).double()
    model(Tensor(np.random.default_rng(3).normal(size=(16, 2)))).sum().backward()
    np.testing.assert_allclose(model[0].bias.grad, 0.0, atol=1e-12)
    assert np.abs(model[0].weight.grad).max() > 1e-3


def test_shifting_the_input_does_not_change_the_output():
    x = np.random.default_rng(4).normal(size=(6, 3))
    np.testing.assert_allclose(bn64(3)(Tensor(x + 42.0)).data, bn64(3)(Tensor(x)).data,
                               atol=1e-9)


@pytest.mark.parametrize("fused", [True, False])
def test_gamma_and_beta_can_undo_the_normalisation(fused):
    x = np.array(NOTES_BATCH)
    bn = bn64(2, eps=1e-5, fused=fused)
    bn.gamma.data[:] = np.sqrt(x.var(axis=0) + bn.eps)   # γ = √(σ²_B + ε)
    bn.beta.data[:] = x.mean(axis=0)                     # β = μ_B
    np.testing.assert_allclose(bn(Tensor(x)).data, x, rtol=1e-12)


def test_eps_inside_the_square_root_not_added_to_sigma():
    """The (x − μ)/(σ + ε) variant some notes print fails on a small-variance feature."""
    x = np.array([[1.0, 0.0], [1.0 + 2e-3, 1.0], [1.0 - 2e-3, 2.0], [1.0, 3.0]])
    out = bn64(2, eps=1e-5)(Tensor(x)).data[:, 0]
    mu, var = x[:, 0].mean(), x[:, 0].var()
    correct = (x[:, 0] - mu) / np.sqrt(var + 1e-5)
    typo = (x[:, 0] - mu) / (np.sqrt(var) + 1e-5)
    np.testing.assert_allclose(out, correct, rtol=1e-12)
    assert np.max(np.abs(out - typo)) > 0.1  # far apart: the test can tell them apart


def test_running_statistics_use_momentum_and_the_unbiased_variance():
    bn = bn64(2)
    x = np.array(NOTES_BATCH)
    bn(Tensor(x))
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * x.var(axis=0, ddof=1))
    assert int(bn.num_batches_tracked.data) == 1


def test_momentum_none_is_the_cumulative_average():
    bn = bn64(1, momentum=None)
    batches = [np.array([[1.0], [3.0]]), np.array([[5.0], [9.0]]), np.array([[0.0], [4.0]])]
    for batch in batches:
        bn(Tensor(batch))
    np.testing.assert_allclose(bn.running_mean.data, np.mean([b.mean() for b in batches]))
    np.testing.assert_allclose(bn.running_var.data, np.mean([b.var(ddof=1) for b in batches]))
    assert int(bn.num_batches_tracked.data) == 3


def test_running_stats_update_under_no_grad_and_eval_uses_them():
    bn = bn64(2)
    with tg.no_grad():
        bn(Tensor(np.array(NOTES_BATCH)))
    assert int(bn.num_batches_tracked.data) == 1
    bn.eval()
    single = Tensor(np.array([[7.5, 75.0]]))
    mean, var = bn.running_mean.data, bn.running_var.data
    expected = (single.data - mean) / np.sqrt(var + bn.eps)
    np.testing.assert_allclose(bn(single).data, expected, rtol=1e-12)  # batch of one is fine
    assert int(bn.num_batches_tracked.data) == 1


def test_without_running_stats_eval_uses_batch_statistics():
    bn = bn64(2, track_running_stats=False)
    assert bn.running_mean is None and list(bn.state_dict()) == ["weight", "bias"]
    x = Tensor(np.array(NOTES_BATCH))
    np.testing.assert_allclose(bn.eval()(x).data, bn.train()(x).data)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn.eval()(Tensor(np.array([[1.0, 2.0]])))


@pytest.mark.parametrize("fused", [True, False])
def test_track_running_stats_turned_off_after_construction_keeps_and_uses_the_buffers(fused):
    bn = bn64(2, fused=fused)
    bn(random_input(6, 2))
    stored = [b.data.copy() for b in bn.buffers()]
    bn.track_running_stats = False
    bn(random_input(5, 2))                      # training: nothing updated, nothing counted
    assert all(np.array_equal(b.data, s) for b, s in zip(bn.buffers(), stored))
    x = random_input(3, 2)
    expected = (x.data - stored[0]) / np.sqrt(stored[1] + bn.eps)   # γ = 1, β = 0
    np.testing.assert_allclose(bn.eval()(x).data, expected, rtol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 3, 0)])
def test_an_empty_batch_gives_an_empty_output_and_leaves_the_statistics(fused, shape):
    bn = bn64(3, fused=fused)
    x = Tensor(np.zeros(shape), requires_grad=True)
    out = bn(x)
    assert out.shape == shape
    out.sum().backward()
    assert x.grad.shape == shape and np.array_equal(bn.weight.grad, np.zeros(3))
    assert np.array_equal(bn.running_mean.data, np.zeros(3))
    assert np.array_equal(bn.running_var.data, np.ones(3))
    assert int(bn.num_batches_tracked.data) == 1   # counted, as PyTorch does
    assert bn.eval()(x).shape == shape


def test_an_empty_batch_through_linear_and_the_losses():
    layer = nn.Linear(3, 2)
    x = Tensor(np.zeros((0, 3), np.float32), requires_grad=True)
    out = layer(x)
    assert out.shape == (0, 2)
    out.sum().backward()
    assert np.array_equal(layer.weight.grad, np.zeros((2, 3)))
    empty = np.zeros((0, 2), np.float32)
    for loss in (nn.MSELoss, nn.BCEWithLogitsLoss, nn.BCELoss):
        assert np.isnan(loss()(Tensor(empty), empty).item()), loss.__name__  # mean of nothing
        assert loss(reduction="sum")(Tensor(empty), empty).item() == 0.0
        assert loss(reduction="none")(Tensor(empty), empty).shape == (0, 2)
    assert np.isnan(nn.CrossEntropyLoss()(Tensor(empty), np.zeros(0, np.int64)).item())
    assert np.isnan(Tensor(empty).mean().item())


def test_reset_running_stats_and_reset_parameters():
    bn = bn64(2)
    for _ in range(2):
        bn(random_input(4, 2))
    bn.weight.data[...] = 3.0
    bn.reset_running_stats()
    assert bn.running_mean.data.tolist() == [0, 0] and bn.running_var.data.tolist() == [1, 1]
    assert int(bn.num_batches_tracked.data) == 0 and bn.weight.data.tolist() == [3, 3]
    bn(random_input(4, 2))
    bn.bias.data[...] = 2.0
    bn.reset_parameters()
    assert bn.weight.data.tolist() == [1, 1] and bn.bias.data.tolist() == [0, 0]
    assert int(bn.num_batches_tracked.data) == 0 and bn.running_mean.data.tolist() == [0, 0]


def test_a_state_dict_without_num_batches_tracked_loads_and_keeps_the_count():
    bn = bn64(2)
    for _ in range(3):
        bn(random_input(4, 2))
    old = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
    old["running_mean"] = np.array([5.0, 6.0])
    assert bn.load_state_dict(old) == ([], [])
    assert int(bn.num_batches_tracked.data) == 3 and bn.running_mean.data.tolist() == [5, 6]
    assert "num_batches_tracked" not in old


def test_affine_false_has_no_parameters():
    bn = nn.BatchNorm1d(3, affine=False)
    assert list(bn.parameters()) == [] and bn.gamma is None
    y = bn(Tensor(np.random.default_rng(5).normal(size=(4, 3))))
    np.testing.assert_allclose(y.data.mean(axis=0), 0.0, atol=1e-6)


def test_gamma_beta_are_aliases_of_weight_and_bias():
    bn = nn.BatchNorm1d(3)
    assert bn.gamma is bn.weight and bn.beta is bn.bias
    new = nn.Parameter(np.full(3, 2.0, dtype=np.float32))
    bn.gamma = new
    assert bn.weight is new and list(bn.state_dict())[0] == "weight"
    assert "gamma" not in bn.state_dict()


def test_bad_input_errors():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\).*\(4, 2\)"):
        bn(Tensor(np.zeros((4, 2))))
    with pytest.raises(ValueError, match="2-D.*3-D.*1-D"):
        bn(Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match="4-D"):
        bn(Tensor(np.zeros((2, 3, 4, 5))))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        bn(Tensor(np.zeros((1, 3))))
    assert int(bn.num_batches_tracked.data) == 0


# --- the scalar BatchNorm for studying ----------------------------------------------------------

def test_scalar_batch_norm_matches_the_tensor_layer_in_values_and_all_gradients():
    rows = [[Value(a), Value(b)] for a, b in NOTES_BATCH]
    gamma, beta = [Value(1.5), Value(-0.5)], [Value(0.25), Value(2.0)]
    out = scalar.batch_norm(rows, gamma, beta)
    weights = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 1.0], [2.0, 0.25]])
    loss = sum(out[i][c] * weights[i, c] for i in range(4) for c in range(2))
    loss.backward()

    bn = bn64(2)
    bn.gamma.data[:] = [1.5, -0.5]
    bn.beta.data[:] = [0.25, 2.0]
    x = Tensor(np.array(NOTES_BATCH), requires_grad=True)
    y = bn(x)
    (y * Tensor(weights)).sum().backward()

    np.testing.assert_allclose([[v.data for v in row] for row in out], y.data, atol=1e-12)
    np.testing.assert_allclose([[v.grad for v in row] for row in rows], x.grad, atol=1e-12)
    np.testing.assert_allclose([g.grad for g in gamma], bn.gamma.grad, atol=1e-12)
    np.testing.assert_allclose([b.grad for b in beta], bn.beta.grad, atol=1e-12)


def test_scalar_batch_norm_labels_every_statistic():
    out = scalar.batch_norm([[Value(a), Value(b)] for a, b in NOTES_BATCH], [1.0, 1.0],
                            [0.0, 0.0])
    labels = {node.label for row in out for y in row for node in tg.topological_order(y)}
    assert {"μ_B[0]", "σ²_B[1]", "ẑ[3,0]", "y[0,1]"} <= labels
    assert out[0][0].data == pytest.approx((7 - 7.5) / np.sqrt(1.25 + 1e-5))


def test_scalar_mlp_trains_and_zero_grads():
    tg.manual_seed(0)
    model = scalar.MLP(2, [4, 4, 1])
    assert len(model.parameters()) == (2 * 4 + 4) + (4 * 4 + 4) + (4 + 1)
    out = model([1.0, -2.0])
    out.backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())
    with pytest.raises(ValueError, match="more than 1 value"):
        scalar.batch_norm([[Value(1.0)]], [1.0], [0.0])


def test_a_refused_input_changes_nothing():
    # Each refusal names the problem, and the step counter and running estimates stay put.
    bn = nn.BatchNorm1d(3)
    for bad, message in ((Tensor.ones((4, 2)), r"BatchNorm1d\(3\) got an input of shape "
                                                r"\(4, 2\): expected 3 features on axis 1"),
                         (Tensor.ones((4,)), r"expects a 2-D \(N, C\) or 3-D \(N, C, L\) input, "
                                             r"got 1-D input of shape \(4,\)"),
                         (Tensor.ones((1, 3)), "Expected more than 1 value per channel")):
        with pytest.raises(ValueError, match=message):
            bn(bad)
    assert int(bn.num_batches_tracked.data) == 0
    np.testing.assert_array_equal(bn.running_mean.data, np.zeros(3, np.float32))
