"""BatchNorm's family and the convnet layers, without torch: BatchNorm2d's statistics per
channel over N·H·W (fused and composed paths agree, running statistics follow the formula),
LayerNorm and GroupNorm normalise what they say they do, containers register their modules,
Conv2d and the pools have PyTorch's shapes and initial bounds, BN folding keeps eval outputs."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor, gradcheck, nn

rng = np.random.default_rng(1414)


def images(shape=(4, 3, 5, 6)):
    """Channels with distinct means and spreads, so per-channel statistics matter."""
    centre = rng.uniform(-3, 3, (1, shape[1], 1, 1))
    spread = rng.uniform(0.5, 4, (1, shape[1], 1, 1))
    return centre + spread * rng.standard_normal(shape)


# --- BatchNorm2d --------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_batchnorm2d_normalises_each_channel_over_n_h_w(fused):
    bn = nn.BatchNorm2d(3, fused=fused).double()
    bn.weight.data[:] = [1.0, 2.0, 0.5]
    bn.bias.data[:] = [0.0, -1.0, 3.0]
    x = images()
    out = bn(Tensor(x)).data
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))   # over N·H·W, biased
    x_hat = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + bn.eps)
    expected = x_hat * bn.weight.data[None, :, None, None] + bn.bias.data[None, :, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    m = x.size // 3
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * var * m / (m - 1), rtol=1e-12)
    assert int(bn.num_batches_tracked.data) == 1


def test_batchnorm2d_fused_and_composed_give_the_same_values_and_gradients():
    x = images()
    g = rng.standard_normal(x.shape)
    results = []
    for fused in (True, False):
        tg.manual_seed(0)
        bn = nn.BatchNorm2d(3, fused=fused).double()
        bn.weight.data[:] = [1.5, 0.5, 2.0]
        xt = Tensor(x, requires_grad=True)
        out = bn(xt)
        out.backward(g)
        results.append((out.data, xt.grad, bn.weight.grad, bn.bias.grad,
                        bn.running_mean.data.copy(), bn.running_var.data.copy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_batchnorm2d_gradcheck(fused):
    bn = nn.BatchNorm2d(2, fused=fused).double()
    x = Tensor(images((3, 2, 2, 3)), requires_grad=True)
    assert gradcheck(lambda t, w, b: nn.functional.batch_norm(t, None, None, w, b, True,
                                                              fused=fused),
                     x, Tensor(rng.uniform(0.5, 2, 2), requires_grad=True),
                     Tensor(rng.standard_normal(2), requires_grad=True))
    bn.eval()
    assert gradcheck(bn, x)


def test_batchnorm2d_eval_uses_running_statistics_and_one_image_works():
    bn = nn.BatchNorm2d(3).double()
    for _ in range(5):
        bn(Tensor(images()))
    bn.eval()
    x = images((1, 3, 5, 6))
    rm, rv = bn.running_mean.data, bn.running_var.data
    expected = (x - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + bn.eps)
    np.testing.assert_allclose(bn(Tensor(x)).data, expected, rtol=1e-12)


def test_batchnorm1d_and_2d_share_one_implementation_but_check_their_shapes():
    assert nn.BatchNorm2d.forward is nn.BatchNorm1d.forward
    assert not isinstance(nn.BatchNorm2d(2), nn.BatchNorm1d)
    with pytest.raises(ValueError, match=r"BatchNorm2d expects a 4-D \(N, C, H, W\) input"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((4, 3))))
    with pytest.raises(ValueError, match=r"BatchNorm1d expects a 2-D"):
        nn.BatchNorm1d(3)(Tensor(np.zeros((4, 3, 2, 2))))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\) got an input of shape \(4, 2, 2, 2\)"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((4, 2, 2, 2))))
    assert list(nn.BatchNorm2d(2).state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


# --- LayerNorm and GroupNorm ------------------------------------------------------------------

def test_layernorm_normalises_each_sample_over_its_trailing_axes():
    x = images((4, 3, 2, 2))
    ln = nn.LayerNorm((3, 2, 2)).double()
    out = ln(Tensor(x)).data
    per_sample = out.reshape(4, -1)
    np.testing.assert_allclose(per_sample.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(per_sample.var(axis=1), 1, rtol=1e-4)
    # One sample alone gives the same output: nothing is shared across the batch.
    np.testing.assert_allclose(ln(Tensor(x[2:3])).data, out[2:3], rtol=1e-12)
    assert ln.weight.shape == (3, 2, 2)
    assert nn.LayerNorm(5, elementwise_affine=False).weight is None


def test_groupnorm_normalises_each_group_of_each_sample():
    x = images((2, 4, 3, 3))
    gn = nn.GroupNorm(2, 4).double()
    gn.weight.data[:] = [1.0, 2.0, 3.0, 4.0]
    out = gn(Tensor(x)).data
    groups = (out / gn.weight.data[None, :, None, None]).reshape(2, 2, -1)
    np.testing.assert_allclose(groups.mean(axis=2), 0, atol=1e-12)
    np.testing.assert_allclose(groups.var(axis=2), 1, rtol=1e-3)
    np.testing.assert_allclose(gn(Tensor(x[1:])).data, out[1:], rtol=1e-12)  # batch size 1


def test_groupnorm_with_one_group_is_layernorm_over_c_h_w():
    x = Tensor(images((2, 4, 3, 3)))
    np.testing.assert_allclose(nn.GroupNorm(1, 4).double()(x).data,
                               nn.LayerNorm((4, 3, 3)).double()(x).data, rtol=1e-12)


@pytest.mark.parametrize("make, message", [
    (lambda: nn.GroupNorm(3, 4), "divisible"),
    (lambda: nn.LayerNorm(0), "positive"),
    (lambda: nn.GroupNorm(2, 4)(Tensor(np.zeros((2, 6, 2)))), r"expected 4 channels"),
    (lambda: nn.LayerNorm(3)(Tensor(np.zeros((2, 4)))), r"does not end with"),
    (lambda: nn.Conv2d(3, 0, 3), "out_channels"),
    (lambda: nn.Conv2d(3, 4, 3, groups=3), "groups=1"),
    (lambda: nn.GELU("fast"), "approximate"),
])
def test_bad_layer_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- containers ---------------------------------------------------------------------------------

def test_module_list_registers_its_modules():
    class Tower(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
            self.blocks.append(nn.BatchNorm1d(2))

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    tower = Tower()
    assert list(tower.state_dict())[:4] == ["blocks.0.weight", "blocks.0.bias",
                                            "blocks.1.weight", "blocks.1.bias"]
    assert "blocks.2.running_mean" in tower.state_dict()
    assert len(list(tower.parameters())) == 6 and len(tower.blocks) == 3
    assert isinstance(tower.blocks[-1], nn.BatchNorm1d)
    assert len(tower.blocks[:2]) == 2
    tower.eval()
    assert not tower.blocks[2].training
    with pytest.raises(TypeError, match="Modules"):
        tower.blocks.append(3)


def test_module_dict_registers_by_key():
    heads = nn.ModuleDict({"bn": nn.BatchNorm1d(3), "ln": nn.LayerNorm(3)})
    heads["none"] = nn.Identity()
    assert list(heads) == ["bn", "ln", "none"] and "ln" in heads and len(heads) == 3
    assert list(heads.state_dict())[0] == "bn.weight"
    assert isinstance(heads["ln"], nn.LayerNorm)
    with pytest.raises(KeyError, match="has no module 'gn'"):
        heads["gn"]
    with pytest.raises(KeyError, match="clashes"):
        heads["items"] = nn.Identity()


# --- convolution, pooling, flatten ------------------------------------------------------------

def test_conv2d_layer_shapes_and_initial_bounds():
    tg.manual_seed(3)
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    bound = 1 / np.sqrt(3 * 3 * 3)
    assert conv.weight.shape == (8, 3, 3, 3) and conv.bias.shape == (8,)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.weight.data).max() > bound / 2
    assert conv(Tensor(np.zeros((2, 3, 28, 28), np.float32))).shape == (2, 8, 14, 14)
    assert nn.Conv2d(1, 2, (3, 2), bias=False).bias is None
    assert "padding=(1, 1)" in repr(conv)


def test_pools_and_flatten_give_pytorch_shapes():
    x = Tensor(np.zeros((2, 3, 28, 28), np.float32))
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 14, 14)
    assert nn.AvgPool2d(3, 1, 1)(x).shape == (2, 3, 28, 28)
    assert nn.MaxPool2d(3, 2, 1, dilation=2)(x).shape == (2, 3, 13, 13)
    assert nn.Flatten()(x).shape == (2, 3 * 28 * 28)
    assert nn.Flatten(0, 1)(x).shape == (6, 28, 28)


def test_max_pool2d_values_and_gradient_by_hand():
    x = Tensor(np.array([[[[1.0, 5.0, 2.0, 0.0],
                           [3.0, 4.0, 7.0, 1.0],
                           [0.0, 0.0, 1.0, 2.0],
                           [9.0, 0.0, 3.0, 3.5]]]]), requires_grad=True)
    out = nn.MaxPool2d(2)(x)
    assert out.data.reshape(-1).tolist() == [5.0, 7.0, 9.0, 3.5]
    out.sum().backward()
    assert x.grad.reshape(-1).tolist() == [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1]


def test_conv2d_equals_a_direct_loop():
    x, w, b = images((2, 3, 5, 4)), rng.standard_normal((2, 3, 2, 3)), rng.standard_normal(2)
    stride, pad, dil = 2, 1, (1, 2)
    ours = nn.functional.conv2d(Tensor(x), Tensor(w), Tensor(b), stride, pad, dil).data
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros(ours.shape)
    for n in range(2):
        for o in range(2):
            for i in range(ours.shape[2]):
                for j in range(ours.shape[3]):
                    patch = xp[n, :, i * 2:i * 2 + 2:1, j * 2:j * 2 + 5:2]
                    expected[n, o, i, j] = (patch * w[o]).sum() + b[o]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


# --- folding BN into the layer before it ------------------------------------------------------

def _trained_bn(bn):
    for _ in range(4):
        shape = (6, bn.num_features) + ((5, 5) if isinstance(bn, nn.BatchNorm2d) else ())
        bn(Tensor(rng.standard_normal(shape) * 3 + 1))
    bn.weight.data[:] = rng.uniform(0.5, 2, bn.num_features)
    bn.bias.data[:] = rng.standard_normal(bn.num_features)
    return bn.eval()


@pytest.mark.parametrize("bias", [True, False])
def test_fuse_conv_bn_eval_gives_the_unfused_outputs(bias):
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=bias).double().eval()
    bn = _trained_bn(nn.BatchNorm2d(3).double())
    fused = nn.utils.fuse_conv_bn_eval(conv, bn)
    x = Tensor(rng.standard_normal((2, 2, 5, 5)))
    np.testing.assert_allclose(fused(x).data, bn(conv(x)).data, rtol=1e-10, atol=1e-12)
    assert fused.bias is not None and conv.weight is not fused.weight


def test_fuse_linear_bn_eval_gives_the_unfused_outputs():
    linear = nn.Linear(4, 3).double().eval()
    bn = _trained_bn(nn.BatchNorm1d(3).double())
    fused = nn.utils.fuse_linear_bn_eval(linear, bn)
    x = Tensor(rng.standard_normal((7, 4)))
    np.testing.assert_allclose(fused(x).data, bn(linear(x)).data, rtol=1e-10, atol=1e-12)


def test_fusion_refuses_training_mode():
    with pytest.raises(ValueError, match="evaluation mode"):
        nn.utils.fuse_linear_bn_eval(nn.Linear(2, 3), nn.BatchNorm1d(3))
