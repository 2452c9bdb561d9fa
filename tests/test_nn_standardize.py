"""`nn.Standardize` and named `Sequential` children: the pieces an exported pipeline is made of."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from tinygrad_bn import Tensor, nn
from tinygrad_bn.data import Standardizer


def test_standardize_computes_z_scores_with_fixed_buffers():
    layer = nn.Standardize([7.0, 100.0], [2.0, 15.0])
    z = layer(Tensor(np.array([[8.0, 130.0], [7.0, 85.0]], dtype=np.float32)))
    np.testing.assert_allclose(z.data, [[0.5, 2.0], [0.0, -1.0]])
    assert list(layer.state_dict()) == ["mean", "std"]
    assert list(layer.parameters()) == []               # buffers: saved, never trained
    assert layer.mean.dtype == np.float32 and z.dtype == np.float32
    assert layer.double().std.dtype == np.float64


def test_standardize_matches_the_data_standardizer():
    X = np.random.default_rng(0).normal(5, 3, size=(50, 3)).astype(np.float32)
    scaler = Standardizer.fit(X)
    layer = nn.Standardize(scaler.mean, scaler.std)
    np.testing.assert_array_equal(layer(Tensor(X)).data, scaler.transform(X))


@pytest.mark.parametrize("mean, std, message", [
    ([1.0, 2.0], [1.0], "1-D of the same length"),
    ([[1.0]], [[1.0]], "1-D of the same length"),
    ([1.0], [0.0], "every std must be positive"),
])
def test_standardize_refuses_bad_statistics(mean, std, message):
    with pytest.raises(ValueError, match=message):
        nn.Standardize(mean, std)


def test_an_ordered_dict_names_sequential_children_as_in_pytorch():
    model = nn.Sequential(OrderedDict(scale=nn.Standardize([0.0], [2.0]),
                                      net=nn.Sequential(nn.Linear(1, 2), nn.ReLU())))
    assert list(model.state_dict()) == ["scale.mean", "scale.std", "net.0.weight", "net.0.bias"]
    assert [name for name, _ in model.named_children()] == ["scale", "net"]
    x = np.array([[4.0]], dtype=np.float32)
    np.testing.assert_allclose(model(Tensor(x)).data, model[1](model[0](Tensor(x))).data)
    assert "(scale): Standardize(1)" in repr(model)


@pytest.mark.parametrize("name", ["", "a.b", "forward", "append"])
def test_names_that_would_break_keys_or_hide_methods_are_refused(name):
    with pytest.raises(KeyError, match="cannot name a module"):
        nn.Sequential(OrderedDict([(name, nn.ReLU())]))
