"""The PyTorch bridge: to_torch and from_torch keep every array exactly, compute the same
outputs, refuse what they cannot convert, and `definition` prints source that rebuilds the twin.

Skips cleanly without torch.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from tinygrad_bn import Tensor, load, manual_seed, nn
from tinygrad_bn.data import bundled_placement_path, load_csv
from tinygrad_bn.placement import (TrainConfig, inference_pipeline, load_model, predict_proba,
                                   save_model, train)

torch = pytest.importorskip("torch")
from tinygrad_bn.torch_bridge import definition, from_torch, to_torch  # noqa: E402


def assert_same_state(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert a[key].shape == b[key].shape, key
        assert np.array_equal(a[key], b[key]), key


def torch_state(module) -> dict:
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def trained():
    dataset = load_csv(bundled_placement_path(), ("cgpa", "iq"), "placed")
    return train(dataset, TrainConfig(epochs=3)), dataset


MODELS = {
    "every-layer": lambda: nn.Sequential(
        nn.Standardize([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]), nn.Linear(3, 5), nn.BatchNorm1d(5),
        nn.ReLU(), nn.Dropout(0.25), nn.Linear(5, 4, bias=False),
        nn.BatchNorm1d(4, eps=1e-3, momentum=None, affine=False), nn.Tanh(), nn.Identity(),
        nn.Linear(4, 2), nn.BatchNorm1d(2, track_running_stats=False), nn.Sigmoid()),
    "named": lambda: nn.Sequential(OrderedDict(
        first=nn.Linear(3, 2), inner=nn.Sequential(nn.BatchNorm1d(2), nn.ReLU()))),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MODELS))
def test_to_torch_then_from_torch_reproduces_the_state_dict_exactly(name, dtype):
    manual_seed(0)
    model = MODELS[name]().to(dtype)
    model(Tensor(np.random.default_rng(0).normal(size=(8, 3)).astype(dtype)))  # move the stats
    twin = to_torch(model)
    assert_same_state(model.state_dict(), torch_state(twin))
    back = from_torch(twin)
    assert_same_state(model.state_dict(), back.state_dict())
    assert repr(back) == repr(model)


@pytest.mark.parametrize("training", [True, False])
def test_the_twin_computes_what_we_compute_in_both_modes(training):
    manual_seed(0)
    model = MODELS["every-layer"]()
    model(Tensor(np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)))
    model.train(training)
    model[4].p = 0.0  # dropout's random mask differs between libraries; keep the rest
    twin = to_torch(model)
    assert [m.training for m in twin.modules()] == [m.training for m in model.modules()]
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    ours = model(Tensor(x)).data
    theirs = twin(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)
    if training:  # both updated their running statistics the same way
        np.testing.assert_allclose(torch_state(twin)["2.running_var"],
                                   model.state_dict()["2.running_var"], rtol=1e-6)


def test_a_torch_model_comes_over_with_its_numbers():
    torch.manual_seed(0)
    source = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.BatchNorm1d(8),
                                 torch.nn.ReLU(), torch.nn.Linear(8, 1)).double()
    source(torch.randn(16, 2, dtype=torch.float64))  # train-mode step moves the statistics
    source.eval()
    model = from_torch(source)
    assert not model.training and model.state_dict()["0.weight"].dtype == np.float64
    x = np.random.default_rng(3).normal(size=(5, 2))
    np.testing.assert_allclose(model(Tensor(x)).data,
                               source(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)


class Doubler(nn.Module):
    def forward(self, input):
        return input * 2


class MyLinear(torch.nn.Linear):
    pass


def test_unknown_layers_are_refused_by_name():
    with pytest.raises(TypeError, match=r"to_torch: .*Doubler at '1\.0' has no equivalent"):
        to_torch(nn.Sequential(nn.Linear(2, 2), nn.Sequential(Doubler())))
    with pytest.raises(TypeError, match=r"from_torch: torch\..*Conv1d at '0' has no equivalent"):
        from_torch(torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1)))
    with pytest.raises(TypeError, match=r"from_torch: .*MyLinear has no equivalent"):
        from_torch(MyLinear(2, 2))  # a subclass may compute something else


def test_definition_rebuilds_a_module_that_takes_the_state_dict(trained):
    result, _ = trained
    pipeline = inference_pipeline(result.model, result.standardizer)
    twin = to_torch(pipeline)
    namespace: dict = {}
    exec(definition(pipeline), namespace)
    rebuilt = namespace["model"]
    rebuilt.load_state_dict(twin.state_dict())  # strict: every key and shape fits
    assert repr(rebuilt) == repr(twin)


def test_a_cli_checkpoint_loads_straight_into_the_torch_twin(trained, tmp_path):
    result, dataset = trained
    save_model(tmp_path / "model.npz", result)
    model, scaler, _ = load_model(tmp_path / "model.npz")
    twin = to_torch(inference_pipeline(model, scaler))
    # The file's own keys (model.*, standardizer.*) are the twin's state_dict keys.
    arrays = load(tmp_path / "model.npz")
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    probability = twin(torch.from_numpy(dataset.X.astype(np.float32))).detach().numpy()[:, 0]
    expected = predict_proba(result.model, result.standardizer.transform(dataset.X))
    np.testing.assert_allclose(probability, expected, rtol=0, atol=1e-6)


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
        nn.Conv2d(4, 3, (2, 3), stride=(1, 2), bias=False), nn.GroupNorm(3, 3), nn.GELU(),
        nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False), nn.Flatten(),
        nn.LayerNorm(24), nn.Linear(24, 2), nn.Softplus(beta=2.0),
        nn.BatchNorm1d(2, affine=False), nn.GELU(approximate="tanh"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_convolutional_family_round_trips_and_computes_the_same(dtype):
    manual_seed(0)
    model = cnn().to(dtype)
    x = np.random.default_rng(4).normal(size=(4, 2, 8, 8)).astype(dtype)
    model(Tensor(x))  # a training step moves both BatchNorms' statistics
    model.eval()
    twin = to_torch(model)
    assert_same_state(model.state_dict(), torch_state(twin))
    assert_same_state(model.state_dict(), from_torch(twin).state_dict())
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(),
                               model(Tensor(x)).data, rtol=tolerance, atol=tolerance)
    namespace: dict = {}
    exec(definition(model), namespace)
    namespace["model"].load_state_dict(twin.state_dict())


@pytest.mark.parametrize("layer, message", [
    (lambda: torch.nn.Conv2d(1, 1, 3, padding="same"), "only zero padding"),
    (lambda: torch.nn.Conv2d(1, 1, 3, padding_mode="reflect"), "only zero padding"),
    (lambda: torch.nn.MaxPool2d(2, return_indices=True), "return_indices"),
    (lambda: torch.nn.AvgPool2d(2, divisor_override=3), "divisor_override"),
    (lambda: torch.nn.LayerNorm(3, bias=False), "bias=False"),
    (lambda: torch.nn.BatchNorm1d(3, bias=False), "bias=False"),
])
def test_torch_settings_we_lack_are_refused_by_name(layer, message):
    with pytest.raises(TypeError, match=rf"from_torch: \w+ at '1': .*{message}"):
        from_torch(torch.nn.Sequential(torch.nn.Identity(), layer()))
