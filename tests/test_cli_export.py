"""``tinygrad-bn export``: ONNX and PyTorch files that take raw features and predict what
`predict` predicts; every bad input is one line with its exit code and writes nothing."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_bn.cli import main
from tinygrad_bn.data import bundled_placement_path, load_csv
from tinygrad_bn.placement import load_model, predict_proba

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.npz"
    result = run("train", "--quiet", "--epochs", "3", "--save", str(path))
    assert result.exit_code == 0, result.output
    return path


def expected_probabilities(path: Path, X: np.ndarray) -> np.ndarray:
    model, scaler, _ = load_model(path)
    return predict_proba(model, scaler.transform(X))


def raw_features() -> np.ndarray:
    return load_csv(bundled_placement_path(), ("cgpa", "iq"), "placed").X.astype(np.float32)


def test_onnx_export_takes_raw_features_and_predicts_like_predict(saved, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    result = run("export", str(saved), str(out))
    assert result.exit_code == 0, result.output
    assert "input 'features'" in result.output and "P(placed)" in result.output
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    X = raw_features()
    for rows in (X, X[:1]):
        got = session.run(None, {"features": rows})[0][:, 0]
        np.testing.assert_allclose(got, expected_probabilities(saved, rows), rtol=0, atol=1e-6)
    assert session.get_modelmeta().custom_metadata_map["features"] == "cgpa,iq"


def test_torch_export_loads_into_the_printed_definition_and_predicts_the_same(saved, tmp_path,
                                                                             monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    result = run("export", str(saved), "model.pt", "--format", "torch")
    assert result.exit_code == 0, result.output
    # The whole output is a Python script: the definition, then the two loading lines.
    namespace: dict = {}
    exec(compile(result.stdout, "printed definition", "exec"), namespace)
    model = namespace["model"]
    assert not model.training
    X = raw_features()
    with torch.no_grad():
        got = model(torch.from_numpy(X)).numpy()[:, 0]
    np.testing.assert_allclose(got, expected_probabilities(saved, X), rtol=0, atol=1e-6)
    assert "model.load_state_dict(torch.load('model.pt', weights_only=True))" in result.stdout
    # docs/interop.md shows this output for the same architecture: it must not drift.
    shown = (ROOT / "docs" / "interop.md").read_text(encoding="utf-8")
    printed = "\n".join(line for line in result.stdout.splitlines()
                        if not line.startswith("# "))
    assert "```python no-run\n" + printed.strip() + "\n```" in shown


def test_the_format_comes_from_the_suffix_and_format_overrides_it(saved, tmp_path):
    pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    assert run("export", str(saved), str(tmp_path / "a.pth")).exit_code == 0
    assert isinstance(torch.load(tmp_path / "a.pth", weights_only=True), dict)
    assert run("export", str(saved), str(tmp_path / "b.bin"), "--format", "onnx").exit_code == 0
    assert (tmp_path / "b.bin").read_bytes()[:2] != b"PK"  # protobuf, not torch's zip


@pytest.mark.parametrize("args, code, message", [
    (["OUT.txt"], 2, "cannot tell the format from"),
    (["OUT.onnx", "--format", "tflite"], 2, "'tflite' is not one of"),
    (["OUT.onnx", "--opset", "14"], 2, "--opset"),
    (["missing/OUT.onnx"], 1, "folder"),
])
def test_bad_arguments_exit_with_their_code_and_write_nothing(saved, tmp_path, args, code,
                                                             message):
    args = [str(tmp_path / args[0])] + args[1:]
    result = run("export", str(saved), *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_model_file_is_never_overwritten(saved):
    before = saved.read_bytes()
    result = run("export", str(saved), str(saved), "--format", "onnx")
    assert result.exit_code == 2 and "would destroy the input" in result.output
    assert saved.read_bytes() == before


def test_a_missing_or_damaged_model_file_exits_1(tmp_path):
    pytest.importorskip("onnx")
    result = run("export", str(tmp_path / "nope.npz"), str(tmp_path / "m.onnx"))
    assert result.exit_code == 1 and "does not exist" in result.output
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    result = run("export", str(tmp_path / "bad.npz"), str(tmp_path / "m.onnx"))
    assert result.exit_code == 1 and "bad.npz" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


@pytest.mark.parametrize("out, package", [("m.onnx", "onnx"), ("m.pt", "torch")])
def test_a_missing_optional_package_is_one_line_exit_1(saved, tmp_path, monkeypatch, out,
                                                       package):
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` fail
    result = run("export", str(saved), str(tmp_path / out))
    assert result.exit_code == 1
    assert f'pip install "tinygrad-bn[{package}]"' in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []
