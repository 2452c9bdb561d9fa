"""The command line: train, predict, info, data — output, determinism, and every bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_bn.cli import main
from tinygrad_bn.data import Standardizer, load_csv
from tinygrad_bn.placement import load_model, predict_proba

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAST = ["--epochs", "3"]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def train_json(*args: str) -> dict:
    result = run("train", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_version_and_help():
    assert "tinygrad-bn, version" in run("--version").output
    out = run("--help").output
    for command in ("train", "predict", "info", "data"):
        assert command in out
    assert "--batch-norm / --no-batch-norm" in run("train", "--help").output


def test_python_dash_m_runs_the_same_cli():
    done = subprocess.run([sys.executable, "-m", "tinygrad_bn", "--version"],
                          capture_output=True, text=True, check=True)
    assert "tinygrad-bn, version" in done.stdout


def test_train_with_no_arguments_beats_the_majority_class_clearly():
    result = run("train")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "epoch  1/50" in out and "epoch 50/50" in out
    assert "Confusion matrix" in out and "layer 1: γ =" in out and "β =" in out
    assert "Linear(2→16) → BatchNorm1d(16) → ReLU" in out
    summary = train_json()
    assert summary["test_accuracy"] >= summary["majority_accuracy"] + 0.2
    assert summary["test_accuracy"] > 0.8


def test_json_output_has_every_field_and_consistent_numbers():
    summary = train_json(*FAST)
    for key in ("train_accuracy", "test_accuracy", "test_loss", "confusion_matrix", "history",
                "batchnorm", "options"):
        assert key in summary
    (tn, fp), (fn, tp) = summary["confusion_matrix"]
    assert summary["test_accuracy"] == pytest.approx((tn + tp) / (tn + fp + fn + tp))
    assert len(summary["history"]) == 3 and summary["history"][-1]["epoch"] == 3
    assert [layer["layer"] for layer in summary["batchnorm"]] == ["1", "4"]
    assert len(summary["batchnorm"][0]["gamma"]) == 16
    assert summary["options"]["epochs"] == 3 and summary["options"]["hidden"] == [16, 16]


def test_same_seed_same_numbers_different_seed_different_numbers():
    first, second = train_json(*FAST, "--seed", "5"), train_json(*FAST, "--seed", "5")
    assert first == second
    assert train_json(*FAST, "--seed", "6")["history"] != first["history"]


def test_options_change_the_network():
    summary = train_json(*FAST, "--no-batch-norm", "--hidden", "8,4,4", "--momentum", "0.9",
                         "--weight-decay", "1e-4", "--batch-size", "16", "--lr", "0.05")
    assert summary["batchnorm"] == [] and summary["options"]["hidden"] == [8, 4, 4]
    assert summary["options"]["momentum"] == 0.9


def test_quiet_drops_progress_and_epoch_lines():
    result = run("train", "--quiet", *FAST)
    assert result.exit_code == 0 and "epoch" not in result.output
    assert "Test accuracy" in result.stdout


def test_a_real_csv_with_other_column_names_trains():
    summary = train_json("--data", str(FIXTURES / "placement_marks.csv"), "--features",
                         "cgpa,marks", *FAST)
    assert summary["features"] == ["cgpa", "marks"]


def test_a_last_batch_of_one_row_is_skipped_and_said(tmp_path):
    # 600 rows, 20% test → 480 training rows; batch size 479 leaves a final batch of one
    result = run("train", "--batch-size", "479", "--epochs", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert "1 training row per epoch was skipped" in result.stdout


def test_save_predict_round_trip_matches_the_in_memory_model(tmp_path):
    model_path = tmp_path / "model.npz"
    result = run("train", *FAST, "--save", str(model_path), "--quiet")
    assert result.exit_code == 0 and model_path.exists()
    model, scaler, metadata = load_model(model_path)
    assert metadata["features"] == ["cgpa", "iq"]
    rows = np.array([[8.1, 120.0], [6.0, 95.0]], dtype=np.float32)
    expected = predict_proba(model, scaler.transform(rows))
    out = run("predict", "--model", str(model_path), "--row", "cgpa=8.1,iq=120", "--row",
              "iq=95,cgpa=6", "--json")
    assert out.exit_code == 0, out.output
    predictions = json.loads(out.stdout)["predictions"]
    got = [p["probability"] for p in predictions]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert [p["prediction"] for p in predictions] == [int(p >= 0.5) for p in expected]
    text = run("predict", "--model", str(model_path), "--row", "cgpa=8.1,iq=120")
    assert "P(placed) =" in text.stdout


def test_predict_on_a_file_reports_accuracy(tmp_path):
    model_path = tmp_path / "model.npz"
    run("train", *FAST, "--save", str(model_path), "--quiet")
    csv = tmp_path / "students.csv"
    csv.write_text("cgpa,iq,placed\n9.0,130,1\n5.0,80,0\n6.5,100,1\n")
    out = json.loads(run("predict", "--model", str(model_path), "--data", str(csv),
                         "--json").stdout)
    assert len(out["predictions"]) == 3 and out["accuracy"] is not None
    no_target = tmp_path / "new.csv"
    no_target.write_text("cgpa,iq\n9.0,130\n")
    out = json.loads(run("predict", "--model", str(model_path), "--data", str(no_target),
                         "--json").stdout)
    assert out["accuracy"] is None and len(out["predictions"]) == 1


def test_info_shows_what_the_model_holds(tmp_path):
    model_path = tmp_path / "model.npz"
    run("train", *FAST, "--save", str(model_path), "--quiet")
    text = run("info", str(model_path)).stdout
    assert "cgpa, iq" in text and "BatchNorm1d(16" in text and "model.1.running_var" in text
    info = json.loads(run("info", str(model_path), "--json").stdout)
    assert info["features"] == ["cgpa", "iq"] and info["parameters"] == 401


def test_data_command_writes_the_documented_dataset(tmp_path):
    out = tmp_path / "gen.csv"
    result = run("data", "--rows", "50", "--seed", "2", "--out", str(out))
    assert result.exit_code == 0 and "Wrote 50 rows" in result.stdout
    assert load_csv(out).X.shape == (50, 2)
    assert run("data", "--rows", "5", "--out", "-").stdout.startswith("cgpa,iq,placed\n")


# --- every user error: one line, no traceback, the right exit code, nothing written --------------

@pytest.mark.parametrize("args, message", [
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--batch-size", "1"], "--batch-size"),
    (["train", "--test-size", "1"], "--test-size"),
    (["train", "--test-size", "0"], "--test-size"),
    (["train", "--hidden", ""], "--hidden"),
    (["train", "--hidden", "16,0"], "positive"),
    (["train", "--hidden", "a,b"], "--hidden"),
    (["train", "--features", "cgpa,,iq"], "--features"),
    (["train", "--momentum", "-0.5"], "--momentum"),
    (["train", "--no-such-option"], "No such option"),
    (["predict", "--model", "m.npz"], "either --row"),
    (["data", "--rows", "1", "--out", "x.csv"], "--rows"),
])
def test_usage_errors_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def trained_model(tmp_path: Path) -> Path:
    path = tmp_path / "model.npz"
    run("train", *FAST, "--save", str(path), "--quiet")
    return path


@pytest.mark.parametrize("row, message", [
    ("cgpa=8.1", "missing iq"),
    ("cgpa=8.1,iq=120,age=3", "unknown age"),
    ("cgpa=high,iq=120", "'high' is not a number"),
    ("cgpa8.1,iq=120", "name=value"),
])
def test_malformed_rows_are_usage_errors(tmp_path, row, message):
    result = run("predict", "--model", str(trained_model(tmp_path)), "--row", row)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("", "the file is empty"),
    ("cgpa,iq,placed\n7,abc,1\n", "line 2, column 'iq'"),
    ("cgpa,iq,placed\n7,100,3\n8,90,0\n", "the target must be 0 or 1"),
    ("cgpa,iq,placed\n7,100,1\n8,90,1\n", "only class 1"),
    ("cgpa,marks,placed\n7,100,1\n8,90,0\n", "no column 'iq'"),
])
def test_bad_data_files_exit_1_and_save_nothing(tmp_path, content, message):
    csv = tmp_path / "data.csv"
    if content is not None:
        csv.write_text(content)
    model = tmp_path / "model.npz"
    result = run("train", "--data", str(csv), "--save", str(model), *FAST)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert str(csv) in result.output
    assert not model.exists()


def test_bad_model_files_exit_1(tmp_path):
    missing = run("predict", "--model", str(tmp_path / "none.npz"), "--row", "cgpa=1,iq=2")
    assert missing.exit_code == 1 and "does not exist" in missing.output
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    assert run("info", str(junk)).exit_code == 1
    other = tmp_path / "other.npz"
    np.savez(other, weight=np.ones(3))
    result = run("info", str(other))
    assert result.exit_code == 1 and "not a tinygrad-bn placement model" in result.output


def test_unwritable_save_path_fails_before_training(tmp_path):
    result = run("train", "--save", str(tmp_path / "no" / "such" / "dir" / "m.npz"))
    assert result.exit_code == 1 and "does not exist" in result.output
    assert "epoch" not in result.output


def test_predict_with_file_features_that_do_not_fit(tmp_path):
    model = trained_model(tmp_path)
    csv = tmp_path / "marks.csv"
    csv.write_text("cgpa,marks\n7,50\n")
    missing = run("predict", "--model", str(model), "--data", str(csv))
    assert missing.exit_code == 1 and "no column 'iq'" in missing.output
    mapped = run("predict", "--model", str(model), "--data", str(csv), "--features", "cgpa,marks")
    assert mapped.exit_code == 0, mapped.output
    wrong_count = run("predict", "--model", str(model), "--data", str(csv), "--features", "cgpa")
    assert wrong_count.exit_code == 2


def test_standardisation_is_fitted_on_the_training_split(tmp_path):
    model_path = trained_model(tmp_path)
    _, scaler, _ = load_model(model_path)
    everything = Standardizer.fit(load_csv(
        Path(__file__).resolve().parents[1] / "tinygrad_bn" / "resources" / "placement.csv").X)
    assert not np.allclose(scaler.mean, everything.mean)  # fitted on 80 %, not all rows
    np.testing.assert_allclose(scaler.mean, everything.mean, rtol=0.05)
