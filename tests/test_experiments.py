"""The BatchNorm experiments: their building blocks, each one's --quick run (structure and
sanity of the numbers), the plots and the ``tinygrad-bn experiment`` command.

The quick runs take seconds: they check the mechanics, not BatchNorm's effects (those need
the full runs, whose results are in docs/batchnorm.md).
"""
from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_bn import nn
from tinygrad_bn.cli import main
from tinygrad_bn.experiments import (EXPERIMENTS, NetSpec, PlotUnavailable, ShiftNoise, Tap,
                                     build_network, plot_experiment,
                                     run_experiment, spirals_task, train_network)
from tinygrad_bn.datasets import DatasetUnavailable, spirals
from tinygrad_bn.experiments.covariate_shift import Recorder
from tinygrad_bn.experiments.report import Table, mean_pm
from tinygrad_bn.nn import functional as F
from tinygrad_bn.tensor import Tensor

MEAN_SD = re.compile(r"^-?\d+\.\d+ ± \d+\.\d+$")


@pytest.fixture(scope="module")
def quick() -> dict:
    """Every experiment's --quick result, run once for the whole module (None for paper-fig1
    when Fashion-MNIST, its default data, is not installed)."""
    results = {}
    for name in EXPERIMENTS:
        try:
            results[name] = run_experiment(name, quick=True)
        except DatasetUnavailable:
            results[name] = None
    return results


def quick_result(quick: dict, name: str):
    if quick[name] is None:
        pytest.skip(f"{name}'s data is not installed")
    return quick[name]


@pytest.fixture(scope="module")
def task():
    return spirals_task(points_per_class=60)


# --- building blocks ------------------------------------------------------------------------

def test_spirals_are_seeded_balanced_and_standardised():
    X, y, _ = spirals(points_per_class=50, classes=3, seed=4)
    X2, y2, _ = spirals(points_per_class=50, classes=3, seed=4)
    np.testing.assert_array_equal(X, X2)
    assert X.shape == (150, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 50, 50]
    task = spirals_task(points_per_class=60)
    np.testing.assert_allclose(task.X_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(task.X_train.std(axis=0), 1.0, atol=1e-5)
    assert task.classes == 3 and len(task.X_train) + len(task.X_test) == 180


def test_same_seed_gives_the_same_weights_with_and_without_batchnorm():
    plain = build_network(NetSpec(hidden=(8, 8)), 2, 3, seed=5)
    bn = build_network(NetSpec(hidden=(8, 8), batch_norm=True), 2, 3, seed=5)
    plain_linears = [m for m in plain if isinstance(m, nn.Linear)]
    bn_linears = [m for m in bn if isinstance(m, nn.Linear)]
    for a, b in zip(plain_linears, bn_linears):
        np.testing.assert_array_equal(a.weight.data, b.weight.data)
    # BN comes after a bias-free Linear, before the activation; plain Linears keep a zero bias.
    assert [type(m).__name__ for m in bn] == ["Linear", "BatchNorm1d", "ReLU", "Linear",
                                              "BatchNorm1d", "ReLU", "Linear"]
    assert bn[0].bias is None and np.all(plain[0].bias.data == 0)


def test_sigmoid_networks_use_lecun_initialisation_and_a_tap_before_the_activation():
    model = build_network(NetSpec(hidden=(512, 8), activation="sigmoid", probe=0), 512, 3, 0)
    assert [type(m).__name__ for m in model][:4] == ["Linear", "Tap", "Sigmoid", "Linear"]
    assert abs(model[0].weight.data.std() - math.sqrt(1 / 512)) < 0.002
    with pytest.raises(ValueError, match="activation"):
        build_network(NetSpec(activation="gelu"), 2, 3, 0)


def test_init_scale_multiplies_the_weights_standard_deviation():
    small = build_network(NetSpec(hidden=(256,)), 256, 3, seed=0)[0].weight.data
    large = build_network(NetSpec(hidden=(256,), init_scale=10.0), 256, 3, seed=0)[0].weight.data
    np.testing.assert_allclose(large, 10 * small, rtol=1e-5)
    assert abs(small.std() - math.sqrt(2 / 256)) < 0.005  # He initialisation for ReLU


def test_training_is_deterministic_and_records_its_history(task):
    spec = NetSpec(hidden=(16, 16), batch_norm=True, dropout=0.1)
    a = train_network(task, spec, lr=0.1, steps=30, seed=3, eval_every=10)
    b = train_network(task, spec, lr=0.1, steps=30, seed=3, eval_every=10)
    assert a.history == b.history
    assert [h["step"] for h in a.history] == [0, 10, 20, 30]
    assert not a.diverged and math.isfinite(a.first_batch_loss)
    assert a.history != train_network(task, spec, lr=0.1, steps=30, seed=4,
                                      eval_every=10).history


def test_a_diverging_run_is_stopped_and_flagged(task):
    run = train_network(task, NetSpec(hidden=(16, 16)), lr=1e4, steps=200, seed=0)
    assert run.diverged and run.diverged_at < 200
    assert run.final["step"] == run.diverged_at and math.isnan(run.final["train_loss"])


def test_shift_noise_moves_every_step_holds_on_request_and_is_off_in_eval():
    noise = ShiftNoise(0.5, seed=0)
    x = Tensor(np.ones((4, 3), dtype=np.float32))
    first, second = noise(x).data.copy(), noise(x).data.copy()
    assert not np.allclose(first, second)
    assert np.all(first >= 1 / 1.5 - 0.5 - 1e-6) and np.all(first <= 1.5 + 0.5 + 1e-6)
    noise.hold = True
    np.testing.assert_array_equal(noise(x).data, second)
    noise.eval()
    np.testing.assert_array_equal(noise(x).data, x.data)
    with pytest.raises(ValueError, match="strength"):
        ShiftNoise(0.0, seed=0)


def test_recorder_measures_without_disturbing_training_state(task):
    spec = NetSpec(hidden=(8, 8), batch_norm=True, noise=0.25, probe=-1)
    model = build_network(spec, 2, 3, seed=0)
    assert sum(isinstance(m, Tap) for m in model) == 1
    X, y = task.X_train[:16], task.y_train[:16]
    loss = F.cross_entropy(model(Tensor(X)), y)
    loss.backward()
    buffers = [b.data.copy() for b in model.buffers()]
    weights = [p.data.copy() for p in model.parameters()]
    grads = [p.grad.copy() for p in model.parameters()]
    recorder = Recorder(task.X_train[:32], lr=0.1, landscape_every=1)
    recorder(1, model, X, y, loss)
    for before, after in zip(buffers, model.buffers()):
        np.testing.assert_array_equal(before, after.data)
    for w, g, p in zip(weights, grads, model.parameters()):
        np.testing.assert_array_equal(w, p.data)
        np.testing.assert_array_equal(g, p.grad)
    assert recorder.steps == [0] and recorder.percentiles[0].shape == (3, 8)
    (step, variation, change), = recorder.landscape
    assert step == 0 and variation >= 0 and change >= 0


def test_mean_pm_formats_spread_divergence_and_large_numbers():
    assert mean_pm([1.0, 3.0]) == "2.000 ± 1.414"
    assert mean_pm([0.5], 2) == "0.50"
    assert mean_pm([1.0, float("nan"), 3.0]) == "2.000 ± 1.414 (1/3 diverged)"
    assert mean_pm([float("nan")] * 3) == "diverged 3/3"
    assert mean_pm([2e5, 4e5]) == "3.00e+05 ± 1.41e+05"


def test_table_renders_as_aligned_markdown():
    text = Table("T", ["a", "long column"], [["1", "x"], ["22", "y"]], "a note").markdown()
    lines = text.splitlines()
    assert lines[0] == "**T**" and lines[-1] == "a note"
    assert lines[2] == "| a  | long column |"
    assert set(lines[3]) <= {"|", "-"}
    assert len({len(line) for line in lines[2:6]}) == 1


def test_bad_arguments_are_refused(quick, tmp_path):
    with pytest.raises(ValueError, match="unknown experiment"):
        run_experiment("nope")
    with pytest.raises(ValueError, match="seeds"):
        run_experiment("speed", seeds=0)
    with pytest.raises(ValueError, match=".png"):
        plot_experiment(quick["speed"], tmp_path / "plot.txt")


# --- every experiment's quick run -------------------------------------------------------------

@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_result_structure(quick, name):
    result = quick_result(quick, name)
    assert result.name == name and result.tables and result.findings
    for table in result.tables:
        assert table.rows and all(len(row) == len(table.columns) for row in table.rows)
        assert table.columns[0] in table.markdown()
    cells = [cell for table in result.tables for row in table.rows for cell in row[1:]]
    assert any(MEAN_SD.match(cell) for cell in cells), "no mean ± sd cell"
    text = result.text()
    assert result.title in text and "Findings" in text
    json.dumps(result.to_dict(), allow_nan=False)  # strict JSON: no NaN


def test_lr_sweep_quick(quick):
    result = quick["lr-sweep"]
    assert [t.title.split(":")[0] for t in result.tables] == ["spirals", "placement"]
    for task, data in result.data.items():
        assert data["values"] == [0.01, 1.0, 100.0]
        for variant in ("plain", "BN"):
            for cell in data["variants"][variant]:
                for accuracy in cell["test_accuracy"]:
                    assert math.isnan(accuracy) or 0.0 <= accuracy <= 1.0
        # Sanity: SGD at lr 100 on an un-normalised 4-layer ReLU network blows up.
        assert data["variants"]["plain"][-1]["diverged"] == 2
    assert result.tables[0].rows[-1][1] == "diverged 2/2"


def test_init_sweep_quick_batchnorm_ignores_the_hidden_weights_scale(quick):
    cells = quick["init-sweep"].data["spirals"]["variants"]
    # At s = 10 the plain network's logits are ~10⁵ times too large; BN normalises the hidden
    # layers, so only the output layer's ×10 remains.
    plain, bn = cells["plain"][-1]["first_batch_loss"], cells["BN"][-1]["first_batch_loss"]
    assert min(plain) > 1000 and max(bn) < 100


def test_regularization_quick_has_four_variants_and_consistent_gaps(quick):
    result = quick["regularization"]
    for table in result.tables:
        assert [row[0] for row in table.rows] == ["plain", "BN", "dropout", "BN + dropout"]
    for task, variants in result.data.items():
        for name, curves in variants.items():
            train = np.array([c[-1] for c in curves["train_accuracy"]])
            test = np.array([c[-1] for c in curves["test_accuracy"]])
            assert np.all((0 <= test) & (test <= 1))
            row = next(r for t in result.tables if t.title.startswith(task) for r in t.rows
                       if r[0] == name)
            assert row[3] == mean_pm(train - test)


def test_covariate_shift_quick_batchnorm_keeps_the_layer_input_bounded(quick):
    data = quick["covariate-shift"].data
    for name in ("BN", "BN + noise 0.25"):
        trace = data["unit0"][name]
        p15, p50, p85 = (np.array(trace[k]) for k in ("p15", "p50", "p85"))
        assert np.all(p15 <= p50) and np.all(p50 <= p85)
        # BN's output is γ·x̂ + β with γ ≈ 1, β ≈ 0 early in training: near N(0, 1) plus noise.
        assert np.all(np.abs(np.concatenate([p15, p50, p85])) < 5)
    summaries = data["summaries"]
    jitter = {name: np.mean([s["jitter"] for s in summaries[name]]) for name in summaries}
    # The noise exists to add step-to-step shift; the stronger, the more.
    assert jitter["BN + noise 1"] > jitter["BN + noise 0.25"] > jitter["BN"]
    assert data["unit0"]["BN"]["steps"][0] == 0 and data["unit0"]["BN"]["steps"][-1] == 60


def test_speed_quick_counts_steps_on_the_evaluation_grid(quick):
    result = quick["speed"]
    assert set(result.data["steps_to_target"]) == {"0.9", "0.5"}
    for per_run in result.data["steps_to_target"].values():
        for steps in per_run.values():
            assert all(s is None or (s % 10 == 0 and 0 < s <= 60) for s in steps)
    assert [row[0] for row in result.tables[0].rows] == ["0.1", "1"]


# --- plots ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_draws_a_png(quick, name, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"{name}.png"
    plot_experiment(quick_result(quick, name), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_plotting_raises_plot_unavailable(quick, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(PlotUnavailable, match=r"tinygrad-bn\[plot\]"):
        plot_experiment(quick["speed"], tmp_path / "x.png")


# --- the command line -------------------------------------------------------------------------

def cli(*args: str):
    return CliRunner().invoke(main, ["experiment", *args])


def test_cli_prints_the_table_and_progress():
    result = cli("speed", "--quick", "--seeds", "1")
    assert result.exit_code == 0, result.output
    assert "| learning rate |" in result.stdout and "Findings" in result.stdout
    assert "[1/4] spirals: plain, lr 0.1, seed 0" in result.stderr


def test_cli_json_is_one_strict_json_object_on_stdout():
    result = cli("speed", "--quick", "--seeds", "1", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["name"] == "speed" and payload["settings"]["seeds"] == "0 to 0"
    assert payload["tables"][0]["rows"]


def test_cli_plot_writes_the_file(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speed.png"
    result = cli("speed", "--quick", "--seeds", "1", "--plot", str(path))
    assert result.exit_code == 0, result.output
    assert path.read_bytes()[:4] == b"\x89PNG" and f"Wrote the plot to {path}" in result.stdout


def test_cli_without_matplotlib_prints_the_table_then_exits_1_with_the_hint(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = cli("speed", "--quick", "--seeds", "1", "--plot", str(tmp_path / "s.png"))
    assert result.exit_code == 1
    assert "| learning rate |" in result.stdout
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: cannot draw") and 'pip install "tinygrad-bn[plot]"' in error
    assert "Traceback" not in result.output and not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("args, code, message", [
    (["nope"], 2, "'nope' is not one of"),
    (["speed", "--seeds", "0"], 2, "--seeds"),
    (["speed", "--plot", "out.txt"], 2, "must end in .png"),
    (["speed", "--plot", "missing-folder/out.png"], 1, "does not exist"),
])
def test_cli_refuses_bad_input_before_running(args, code, message):
    result = cli(*args)
    assert result.exit_code == code
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""


def test_cli_help_lists_every_experiment_with_an_example():
    result = cli("--help")
    assert result.exit_code == 0
    for name in EXPERIMENTS:
        assert name in result.stdout
    assert "tinygrad-bn experiment lr-sweep --plot" in result.stdout
