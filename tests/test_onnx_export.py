"""ONNX export: every layer converts, the checker passes, and onnxruntime computes what we do.

Skips cleanly without the `onnx` package (onnxruntime-only tests skip without onnxruntime).
"""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_bn import Tensor, manual_seed, nn
from tinygrad_bn.data import bundled_placement_path, load_csv
from tinygrad_bn.placement import TrainConfig, inference_pipeline, predict_proba, train

onnx = pytest.importorskip("onnx")
from tinygrad_bn.onnx import CONVERTERS, export  # noqa: E402  (after the skip)


def run_onnx(path, x: np.ndarray, input_name: str = "input") -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {input_name: x})[0]


def eval_output(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    return model(Tensor(x)).data


def warmed(model: nn.Module, shape: tuple, dtype=np.float32) -> nn.Module:
    """Train-mode forwards so running statistics are not their initial 0 and 1."""
    rng = np.random.default_rng(1)
    model.train()
    for _ in range(3):
        model(Tensor((rng.normal(size=shape) * 3 + 1).astype(dtype)))
    return model.eval()


@pytest.fixture(scope="module")
def placement():
    dataset = load_csv(bundled_placement_path(), ("cgpa", "iq"), "placed")
    result = train(dataset, TrainConfig(epochs=5))
    return result, dataset


def test_trained_placement_model_gives_the_same_probabilities_in_onnxruntime(placement,
                                                                              tmp_path):
    result, dataset = placement
    pipeline = inference_pipeline(result.model, result.standardizer)
    path = tmp_path / "placement.onnx"
    # Exported with a batch of 3: the batch axis is dynamic, so 600 rows and 1 row run too.
    export(pipeline, dataset.X[:3], path)
    expected = predict_proba(result.model, result.standardizer.transform(dataset.X))
    batch = run_onnx(path, dataset.X.astype(np.float32))
    assert batch.dtype == np.float32 and batch.shape == (len(dataset.X), 1)
    np.testing.assert_allclose(batch[:, 0], expected, rtol=0, atol=1e-6)
    single = run_onnx(path, dataset.X[7:8].astype(np.float32))
    assert single.shape == (1, 1)
    np.testing.assert_allclose(single[0, 0], expected[7], rtol=0, atol=1e-6)


def test_batchnorm_is_kept_as_a_node_and_names_follow_the_state_dict(placement, tmp_path):
    result, _ = placement
    pipeline = inference_pipeline(result.model, result.standardizer)
    proto = export(pipeline, np.zeros((2, 2), np.float32), tmp_path / "m.onnx",
                   input_names=["features"], output_names=["probability"])
    ops = [node.op_type for node in proto.graph.node]
    assert ops == ["Sub", "Div", "Gemm", "BatchNormalization", "Relu", "Gemm",
                   "BatchNormalization", "Relu", "Gemm", "Sigmoid"]
    initializers = {t.name for t in proto.graph.initializer}
    assert set(pipeline.state_dict()) - {k for k in pipeline.state_dict()
                                         if k.endswith("num_batches_tracked")} <= initializers
    assert proto.graph.input[0].name == "features"
    assert proto.graph.output[0].name == "probability"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    # The file on disk is the returned model.
    assert onnx.load(str(tmp_path / "m.onnx")) == proto


LAYER_CASES = {
    "linear-bn-relu": (lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU()),
                       (6, 3)),
    "bn-affine-false": (lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False)),
                        (6, 3)),
    "bn-no-running-stats": (lambda: nn.Sequential(
        nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.Tanh()), (6, 3)),
    "bn-neither": (lambda: nn.Sequential(
        nn.BatchNorm1d(3, affine=False, track_running_stats=False), nn.Sigmoid()), (6, 3)),
    "bn-3d": (lambda: nn.Sequential(nn.BatchNorm1d(3), nn.Linear(5, 2, bias=False)), (4, 3, 5)),
    "bn-3d-no-running-stats": (lambda: nn.Sequential(
        nn.BatchNorm1d(3, track_running_stats=False), nn.Linear(5, 2)), (4, 3, 5)),
    "dropout-identity": (lambda: nn.Sequential(nn.Dropout(0.5), nn.Identity(), nn.Linear(3, 1),
                                               nn.Sigmoid()), (6, 3)),
    "nested": (lambda: nn.Sequential(nn.Standardize([1, 2, 3], [2, 4, 8]),
                                     nn.Sequential(nn.Linear(3, 2), nn.ReLU())), (6, 3)),
    "bare-linear": (lambda: nn.Linear(3, 2), (6, 3)),
    "cnn": (lambda: nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.1),
        nn.MaxPool2d(2), nn.Conv2d(4, 3, (2, 3), stride=(1, 2), dilation=(1, 1), bias=False),
        nn.GroupNorm(3, 3), nn.GELU(), nn.AvgPool2d(2, stride=1, padding=1,
                                                    count_include_pad=False),
        nn.Flatten(), nn.LayerNorm(3 * 4 * 2), nn.Linear(24, 2), nn.Softplus(beta=2.0)),
        (4, 2, 8, 8)),
    "cnn-variants": (lambda: nn.Sequential(
        nn.BatchNorm2d(2, affine=False, track_running_stats=False),
        nn.MaxPool2d(3, stride=2, padding=1, dilation=1), nn.GroupNorm(1, 2, affine=False),
        nn.AvgPool2d(2, padding=1), nn.GELU(approximate="tanh"),
        nn.LayerNorm((2, 2), elementwise_affine=False), nn.Flatten(0, 1), nn.Softplus()),
        (3, 2, 5, 5)),
    "flatten-middle": (lambda: nn.Sequential(nn.Flatten(1, 2), nn.Linear(4, 2)), (3, 2, 3, 4)),
    "empty": (lambda: nn.Sequential(), (6, 3)),
}


# onnxruntime's CPU provider has no float64 Conv or AveragePool kernels.
ORT_FLOAT32_ONLY = {"cnn", "cnn-variants"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_every_layer_passes_the_checker_and_runs_like_ours(case, dtype, tmp_path):
    build, shape = LAYER_CASES[case]
    manual_seed(0)
    model = warmed(build().to(dtype), shape, dtype)
    x = (np.random.default_rng(2).normal(size=shape) * 2 + 0.5).astype(dtype)
    path = tmp_path / "model.onnx"
    proto = export(model, x, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert proto.graph.input[0].type.tensor_type.elem_type == (
        onnx.TensorProto.FLOAT if dtype == np.float32 else onnx.TensorProto.DOUBLE)
    if dtype == np.float64 and case in ORT_FLOAT32_ONLY:
        return  # a valid model (checked above) that onnxruntime's CPU kernels cannot run
    got = run_onnx(path, x)
    assert got.dtype == dtype
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, eval_output(model, x), rtol=tolerance, atol=tolerance)


def test_bn_without_running_stats_uses_the_batch_statistics_as_pytorch_does(tmp_path):
    manual_seed(0)
    model = nn.Sequential(nn.BatchNorm1d(2, track_running_stats=False)).eval()
    export(model, np.zeros((4, 2), np.float32), tmp_path / "m.onnx")
    x = np.array([[1, 10], [3, 30], [5, 50], [7, 70]], dtype=np.float32)
    got = run_onnx(tmp_path / "m.onnx", x)
    # Each column normalised by its own mean and biased variance (worked by hand, not by us).
    centred = np.array([-3.0, -1.0, 1.0, 3.0])
    expected = np.stack([centred / np.sqrt(5 + 1e-5), 10 * centred / np.sqrt(500 + 1e-5)], 1)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # And so a row's output depends on the rest of the batch.
    assert not np.allclose(run_onnx(tmp_path / "m.onnx", x[:2]), got[:2])
    # A single row (which PyTorch and we refuse there) minus its own mean is 0: the output is β.
    model[0].bias.data[:] = [3.0, 4.0]
    export(model, np.zeros((4, 2), np.float32), tmp_path / "m.onnx")
    np.testing.assert_array_equal(run_onnx(tmp_path / "m.onnx", x[:1]), [[3.0, 4.0]])


def test_fixed_batch_when_dynamic_batch_is_false(tmp_path):
    proto = export(nn.Linear(2, 1), np.zeros((5, 2), np.float32), tmp_path / "m.onnx",
                   dynamic_batch=False)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 5


def test_export_leaves_the_model_in_its_mode_and_state(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Dropout(0.5)).train()
    model[1].eval()  # modes may differ per module; each comes back as it was
    before = model.state_dict()
    export(model, np.ones((4, 2), np.float32), tmp_path / "m.onnx")
    assert [m.training for m in model.modules()] == [True, True, False, True]
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


class Doubler(nn.Module):
    def forward(self, input):
        return input * 2


def test_an_unsupported_layer_is_named_and_nothing_is_written(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), Doubler()))
    with pytest.raises(TypeError, match=r"cannot export Doubler at '1\.1' to ONNX"):
        export(model, np.ones((2, 2), np.float32), path)
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_the_converter_table_covers_every_layer_of_nn():
    layers = {getattr(nn, name) for name in nn.__all__
              if isinstance(getattr(nn, name), type) and issubclass(getattr(nn, name), nn.Module)
              and not name.endswith("Loss")
              and name not in ("Module", "ModuleList", "ModuleDict")}  # no forward of their own
    assert layers - set(CONVERTERS) == set()


@pytest.mark.parametrize("kwargs, message", [
    ({"opset": 14}, "opset must be between 15"),
    ({"input_names": ["a", "b"]}, "one input and one output"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        export(nn.Linear(2, 1), np.ones((1, 2), np.float32), None, **kwargs)


@pytest.mark.parametrize("opset", [17, 20])
def test_gelu_is_one_op_from_opset_20_and_its_formula_before(opset, tmp_path):
    model = nn.Sequential(nn.GELU())
    x = np.linspace(-4, 4, 12, dtype=np.float32).reshape(3, 4)
    proto = export(model, x, tmp_path / "m.onnx", opset=opset)
    assert ("Gelu" in [node.op_type for node in proto.graph.node]) == (opset >= 20)
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x), eval_output(model, x),
                               atol=1e-6)


def test_layer_norm_needs_opset_17():
    with pytest.raises(ValueError, match="LayerNorm at '0' needs opset 17"):
        export(nn.Sequential(nn.LayerNorm(2)), np.ones((1, 2), np.float32), None, opset=16)


def test_module_list_has_no_forward_and_is_refused():
    with pytest.raises(TypeError, match="cannot export ModuleList at '1'"):
        export(nn.Sequential(nn.ReLU(), nn.ModuleList([nn.ReLU()])),
               np.ones((1, 2), np.float32), None)


def test_input_dtype_must_match_the_model():
    with pytest.raises(ValueError, match="example_input is float64 but '0.weight' is float32"):
        export(nn.Sequential(nn.Linear(2, 1)), np.ones((1, 2)), None)
    with pytest.raises(ValueError, match="float32 or float64 batch"):
        export(nn.Linear(2, 1), np.ones((1, 2), dtype=np.int64), None)
