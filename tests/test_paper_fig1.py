"""paper-fig1 (the BatchNorm paper's Figure 1 redone), and --dataset for the sweeps.

The quick runs check the mechanics: both arms, the same start, a hook that reads the right
tensor without changing anything. BN's effects need the full run (docs/batchnorm.md). The run
on Fashion-MNIST, the default, is in test_experiments.py's shared quick results.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_bn import datasets, nn
from tinygrad_bn.cli import main
from tinygrad_bn.experiments import NetSpec, build_network, plot_experiment, run_experiment
from tinygrad_bn.experiments.paper_fig1 import SigmoidInput, last_sigmoid
from tinygrad_bn.function import no_grad
from tinygrad_bn.tensor import Tensor


@pytest.fixture(scope="module")
def digits_quick():
    pytest.importorskip("sklearn")
    return run_experiment("paper-fig1", quick=True, dataset="digits", seeds=1)


def cli(*args: str):
    return CliRunner().invoke(main, ["experiment", *args])


def test_the_hook_reads_the_last_sigmoids_input_and_changes_nothing():
    spec = NetSpec(hidden=(6, 5, 4), activation="sigmoid", batch_norm=True, init_std=0.3)
    model = build_network(spec, 3, 2, seed=1)
    assert not any(type(m).__name__ == "Tap" for m in model.modules())   # an unmodified net
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    recorder = SigmoidInput(X)
    handle = last_sigmoid(model).register_forward_hook(recorder)
    model(Tensor(X))                      # not recording: nothing kept
    assert recorder.percentiles == []
    buffers = [b.data.copy() for b in model.buffers()]
    recorder.measure(model, step=7)
    for before, after in zip(buffers, model.buffers()):   # BN's running statistics untouched
        np.testing.assert_array_equal(before, after.data)
    handle.remove()
    # What enters the last Sigmoid, computed layer by layer in training mode.
    layers = list(model)
    sigmoid_index = max(i for i, m in enumerate(layers) if isinstance(m, nn.Sigmoid))
    with no_grad():
        h = Tensor(X)
        for layer in layers[:sigmoid_index]:
            h = layer(h)
    assert recorder.steps == [7] and recorder.percentiles[0].shape == (3, 4)
    np.testing.assert_allclose(recorder.percentiles[0],
                               np.percentile(h.data, (15, 50, 85), axis=0), rtol=1e-6)
    model(Tensor(X))                      # removed: nothing more is recorded
    recorder.recording = True
    model(Tensor(X))
    assert len(recorder.percentiles) == 1


def test_quick_digits_has_both_arms_from_the_same_start(digits_quick):
    result = digits_quick
    accuracy = result.tables[0]
    assert accuracy.columns == ["step", "without BN", "with BN"]
    assert [row[0] for row in accuracy.rows] == ["0", "100", "200", "300"]
    arms = result.data["arms"]
    # Same initial weights: at step 0 BN still uses its initial running statistics (mean 0,
    # variance 1) in evaluation mode, so both networks compute nearly the same function.
    plain0, bn0 = arms["plain"]["test_accuracy"][0][0], arms["BN"]["test_accuracy"][0][0]
    assert abs(plain0 - bn0) < 0.01
    for arm in ("plain", "BN"):
        curve = np.array(arms[arm]["test_accuracy"][0])
        assert np.all((0 <= curve) & (curve <= 1)) and arms[arm]["steps"][-1] == 300
        trace = arms[arm]["unit_trace"]
        p15, p50, p85 = (np.array(trace[k]) for k in ("p15", "p50", "p85"))
        assert np.all(p15 <= p50) and np.all(p50 <= p85)
        assert trace["steps"][0] == 0 and trace["steps"][-1] == 300
    # With BN the sigmoid sees γ·x̂ + β, about N(0, 1) at the start: a spread near 2.
    bn = arms["BN"]["unit_trace"]
    assert 1.0 < bn["p85"][0] - bn["p15"][0] < 3.0
    rows = {row[0]: row for row in result.tables[1].rows}
    assert set(rows) == {"without BN", "with BN"}
    assert any("first reached" in f or "did not reach" in f for f in result.findings)
    json.dumps(result.to_dict(), allow_nan=False)


def test_quick_digits_draws_three_panels(digits_quick, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "fig1.png"
    plot_experiment(digits_quick, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_options_are_checked():
    with pytest.raises(ValueError, match="dataset must be one of"):
        run_experiment("paper-fig1", quick=True, dataset="spirals")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        run_experiment("paper-fig1", quick=True, steps=0)
    with pytest.raises(ValueError, match=r"lr-sweep does not take steps \(it takes dataset\)"):
        run_experiment("lr-sweep", quick=True, steps=10)
    with pytest.raises(ValueError, match="speed does not take dataset"):
        run_experiment("speed", quick=True, dataset="digits")


@pytest.mark.parametrize("name", ["lr-sweep", "init-sweep"])
def test_sweeps_run_on_digits(name):
    pytest.importorskip("sklearn")
    result = run_experiment(name, quick=True, seeds=1, dataset="digits")
    assert [t.title.split(":")[0] for t in result.tables] == ["digits"]
    assert list(result.data) == ["digits"] and "handwritten" in result.settings["data"]


# --- the command line -------------------------------------------------------------------------

def test_cli_quick_prints_both_arms_and_progress():
    pytest.importorskip("sklearn")
    result = cli("paper-fig1", "--quick", "--dataset", "digits", "--seeds", "1", "--steps",
                 "100")
    assert result.exit_code == 0, result.output
    assert "| step | without BN" in result.stdout and "with BN" in result.stdout
    assert "digits: with BN, seed 0, step 50/100" in result.stderr


@pytest.mark.parametrize("args, code, message", [
    (["lr-sweep", "--steps", "10"], 2, "--steps does not apply to lr-sweep (only to paper-fig1)"),
    (["speed", "--dataset", "digits"], 2, "--dataset does not apply to speed"),
    (["paper-fig1", "--dataset", "spirals"], 2, "paper-fig1 runs on fashion-mnist, digits, mnist"),
    (["paper-fig1", "--lr", "0"], 2, "--lr"),
    (["paper-fig1", "--init-std", "-1"], 2, "--init-std"),
])
def test_cli_refuses_options_an_experiment_does_not_take(args, code, message):
    result = cli(*args)
    assert result.exit_code == code
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""


def test_cli_without_the_data_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    result = cli("paper-fig1", "--quick")
    assert result.exit_code == 1 and result.stdout == ""
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: Fashion-MNIST is not installed")
    assert "apt-get install dataset-fashion-mnist" in error
