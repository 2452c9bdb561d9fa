"""The benchmark harness works: its engines agree, a wrong one is caught, the smoke run reports.

No test here asserts a time — timings belong to ``benchmarks/``, not to the suite. What is
checked is that ``python benchmarks/run.py --quick`` (the run ``tinygrad-bn bench`` makes)
completes, checks agreement, and prints every target with a verdict.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_bn import benchmark
from tinygrad_bn.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]


def _torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("config", benchmark.CONFIGS, ids=lambda c: c.name)
def test_engines_agree_after_one_float64_step(config):
    engines = benchmark.build_engines(config, _torch_installed(), np.float64)
    assert all(str(engine.state_dict()["0.weight"].dtype) == "float64" for engine in engines)
    worst = benchmark.check_agreement(engines, **benchmark.AGREEMENT_64)
    assert set(worst) == {engine.name for engine in engines}
    assert worst["tinygrad_bn"] < 1e-12


@pytest.mark.parametrize("config", benchmark.CONFIGS[:2], ids=lambda c: c.name)
def test_float32_engines_agree_after_one_step(config):
    engines = benchmark.build_engines(config, _torch_installed())
    assert all(str(engine.state_dict()["0.weight"].dtype) == "float32" for engine in engines)
    worst = benchmark.check_agreement(engines)
    assert set(worst) == {engine.name for engine in engines}
    assert worst["tinygrad_bn"] < 1e-5


class _OffByOne(benchmark.NumpyMLP):
    """The hand-written step with a bug: the first weight matrix moves a little too far."""

    name = "buggy"

    def step(self) -> float:
        loss = super().step()
        self.state["0.weight"] += 1e-3
        return loss


def test_an_engine_that_computes_something_else_is_refused():
    config = benchmark.CONFIGS[0]
    state, (x, target) = benchmark.initial_state(config), benchmark.make_batch(config)
    engines = [benchmark.NumpyMLP(config, state, x, target), _OffByOne(config, state, x, target)]
    with pytest.raises(RuntimeError, match=r"buggy disagrees with numpy on '0.weight'"):
        benchmark.check_agreement(engines)


def test_the_scalar_demo_runs_on_tinygrad_values():
    from tinygrad_bn import Value, manual_seed
    from tinygrad_bn.scalar import MLP

    manual_seed(0)
    model = MLP(2, [4, 1])
    points, labels = benchmark.moons(n=10)
    before = [p.data for p in model.parameters()]
    loss = benchmark.scalar_step(model, Value, points, labels)
    assert np.isfinite(loss)
    assert [p.data for p in model.parameters()] != before


def test_quick_run_checks_agreement_and_reports_every_target():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    report = done.stdout
    assert "thread(s) for every engine" in report
    assert "numpy's BLAS:" in report.split("One training step", 1)[0]
    assert "Agreement after one float64 step" in report
    targets = report.split("Targets:", 1)[1]
    for target in benchmark.TARGETS.values():
        if target is benchmark.TARGETS["scalar"] and "micrograd not installed" in report:
            continue
        if (target is benchmark.TARGETS["convnet"] and "torch not installed" in report) or (
                target is benchmark.TARGETS["paper-compiled"]
                and "PyTorch is not installed" in report):
            continue
        line = next((line for line in targets.splitlines() if line.startswith(target.text)),
                    None)
        assert line is not None, f"the report has no line for {target.text!r}:\n{report}"
        assert line.rstrip().endswith(("pass", "MISS")), line


@pytest.mark.parametrize("picked, flags, choice, expected", [
    ("Haswell", benchmark.AVX512_FLAGS | {"avx2"}, "auto", "SkylakeX"),   # misrecognised
    ("Haswell", benchmark.AVX512_FLAGS | {"avx2"}, "default", None),      # kept on request
    ("Haswell", {"avx2", "fma"}, "auto", None),                           # no AVX-512: right
    ("SkylakeX", benchmark.AVX512_FLAGS, "auto", None),                  # already AVX-512
    (None, benchmark.AVX512_FLAGS, "auto", None),                        # not OpenBLAS
])
def test_blas_kernel_choice(monkeypatch, picked, flags, choice, expected):
    monkeypatch.setattr(benchmark, "_openblas_core", lambda env: picked)
    monkeypatch.setattr(benchmark, "_cpu_flags", lambda: flags)
    core, note = benchmark.choose_blas_kernel(choice, {})
    assert core == expected
    assert note.startswith("numpy's BLAS:")
    # A kernel the user asked for is never overridden.
    core, note = benchmark.choose_blas_kernel(choice, {"OPENBLAS_CORETYPE": "Zen"})
    assert core is None and ("set by the user" in note or picked is None)


def test_openblas_reports_the_kernel_it_loads_with():
    picked = benchmark._openblas_core(dict(os.environ))
    if picked is None:
        pytest.skip("numpy's BLAS is not OpenBLAS here")
    forced = benchmark._openblas_core(dict(os.environ,
                                           OPENBLAS_CORETYPE="Haswell"))
    assert forced == "Haswell"


def test_bench_command_is_registered():
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0
    assert "--full" in result.output and "--threads" in result.output


def test_convnet_engines_agree_after_one_step():
    from tinygrad_bn import benchmark_convnet

    try:
        import torch  # noqa: F401
        with_torch = True
    except ImportError:
        with_torch = False
    engines = benchmark_convnet.build_convnet_engines(with_torch)
    assert benchmark_convnet.check_convnet_agreement(engines) < 1e-4
    assert len(engines) == (2 if with_torch else 1)
