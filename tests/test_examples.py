"""Every example runs as `python examples/NAME.py` and prints what it promises."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

EXPECTED = {
    "01_value_basics.py": ["o = tanh(x1·w1 + x2·w2 + b) = 0.7071", "∂o/∂w1 = +1.0000"],
    "02_value_vs_tensor.py": ["Value : f = 0.116166359630", "Tensor: f = 0.116166359630"],
    "03_batchnorm_by_hand.py": ["cgpa: μ_B = 7.5, σ²_B = 1.25", "iq: μ_B = 75, σ²_B = 125",
                                "γ ← γ − η·∂L/∂γ", "β ← β − η·∂L/∂β"],
    "04_train_placement.py": ["test accuracy 0.8", "γ of the first BatchNorm"],
    "05_train_vs_eval.py": ["running_mean", "true mean"],
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name):
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for text in EXPECTED[name]:
        assert text in done.stdout, f"{name}: {text!r} missing from its output"


def test_04_stays_under_40_lines():
    lines = (EXAMPLES / "04_train_placement.py").read_text().splitlines()
    assert len(lines) <= 40
