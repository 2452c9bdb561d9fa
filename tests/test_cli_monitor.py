"""``tinygrad-bn train --monitor``, ``--activation``, ``--init`` and ``tinygrad-bn monitor
compare``: what they write, and their one-line errors."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tinygrad_bn.cli import main
from tinygrad_bn.monitor import Recording
from tinygrad_bn.monitor.plots import FIGURES
from tinygrad_bn.placement import load_model

FAST = ["--epochs", "2", "--quiet"]
RUNS = {"bn": [], "plain": ["--no-batch-norm"]}


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    pytest.importorskip("matplotlib")
    root = tmp_path_factory.mktemp("monitor")
    for name, extra in RUNS.items():
        result = run("train", "--json", "--epochs", "2", "--activation", "tanh", "--monitor",
                     str(root / name), "--monitor-every", "3", *extra)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary.pop("monitor") == f"{root / name}/index.html"
        (root / f"{name}.json").write_text(json.dumps(summary))
    return root


def test_train_monitor_writes_stats_figures_and_a_page(two_runs):
    for name in ("bn", "plain"):
        folder = two_runs / name
        page = (folder / "index.html").read_text()
        for stem, (_, _, caption) in FIGURES.items():
            assert (folder / f"{stem}.png").stat().st_size > 1000
            assert f'src="{stem}.png"' in page
        assert "Look for mass piling up at ±1" in page
        recording = Recording.load(folder)
        assert list(recording.steps[:3]) == [0, 3, 6]
        assert all(recording.kinds[n] == "tanh" for n in recording.layers
                   if recording.types[n] == "Tanh")
    assert Recording.load(two_runs / "bn").batchnorm
    assert not Recording.load(two_runs / "plain").batchnorm
    assert "tanh, no BatchNorm" in (two_runs / "plain" / "index.html").read_text()


@pytest.mark.parametrize("name", RUNS)
def test_monitoring_does_not_change_the_run(two_runs, name):
    watched = json.loads((two_runs / f"{name}.json").read_text())
    plain = json.loads(run("train", "--json", "--epochs", "2", "--activation", "tanh",
                           *RUNS[name]).stdout)
    assert watched == plain


def test_compare_draws_runs_side_by_side(two_runs):
    out = two_runs / "compare"
    result = run("monitor", "compare", str(two_runs / "bn"), str(two_runs / "plain"),
                 "--out", str(out), "--title", "with BN", "--title", "without")
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    assert "with BN vs without" in page and page.count("<figure>") == len(FIGURES)
    assert page.count("<td>with BN</td>") == 2 and page.count("<td>without</td>") == 2


def test_activation_and_init_choices_train_and_reload(tmp_path):
    path = tmp_path / "model.npz"
    result = run("train", *FAST, "--activation", "sigmoid", "--init", "kaiming-normal",
                 "--save", str(path))
    assert result.exit_code == 0, result.output
    model, _, metadata = load_model(path)
    assert metadata["activation"] == "sigmoid" and type(model[2]).__name__ == "Sigmoid"
    first = json.loads(run("train", "--json", "--epochs", "1", "--init", "xavier-uniform")
                       .stdout)
    second = json.loads(run("train", "--json", "--epochs", "1").stdout)
    assert first["test_loss"] != second["test_loss"]     # the init really changed


def test_bad_monitor_use_is_one_line(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = run("train", *FAST, "--monitor", str(a_file))
    assert result.exit_code == 2 and "is a file" in result.output.splitlines()[-1]
    result = run("monitor", "compare", str(tmp_path), str(tmp_path / "nothing"))
    assert result.exit_code == 1
    assert "no stats.npz" in result.output and len(result.output.strip().splitlines()) == 1
    result = run("monitor", "compare", str(tmp_path))
    assert result.exit_code == 2 and "two or more" in result.output
    assert run("train", *FAST, "--activation", "gelu").exit_code == 2
    assert run("train", *FAST, "--init", "ones").exit_code == 2


def test_without_matplotlib_the_monitor_refuses_before_training(monkeypatch, tmp_path):
    import builtins
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = run("train", *FAST, "--monitor", str(tmp_path / "out"))
    assert result.exit_code == 1 and "matplotlib" in result.output
    assert not (tmp_path / "out").exists()
