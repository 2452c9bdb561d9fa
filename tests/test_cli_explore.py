"""``tinygrad-bn explore``: the page for each graph choice, ``--open``, and every error."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner

from tinygrad_bn.cli import main

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot program is not installed")


def run(*args: str):
    return CliRunner().invoke(main, ["explore", *args])


def page_data(path) -> dict:
    page = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="explorer-data">(.*?)</script>', page, re.S).group(1))


def test_help_lists_the_graph_options_of_graph():
    text = run("--help").output
    for option in ("--out", "--example", "batchnorm-by-hand", "--model", "--seed",
                   "--batch-size", "--fused / --composed", "--rankdir", "--max-nodes", "--open",
                   "tinygrad-bn explore --out step.html"):
        assert option in text, option
    assert "explore" in CliRunner().invoke(main, ["--help"]).output


@needs_dot
def test_placement_step_page(tmp_path):
    out = tmp_path / "step.html"
    result = run("--out", str(out), "--batch-size", "6", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}: one training step of a fresh model (seed 1), 6 rows" in result.output
    data = page_data(out)
    names = {node["name"] for node in data["nodes"]}
    assert {"0.weight", "1.weight (γ)", "μ_B", "ẑ"} <= names
    assert "x: 6 rows of (cgpa, iq), standardised" in names
    assert any("(1): BatchNorm1d(16), composed" == c["label"] for c in data["clusters"])
    fused = tmp_path / "fused.html"
    assert run("--out", str(fused), "--fused").exit_code == 0
    assert "μ_B" not in {node["name"] for node in page_data(fused)["nodes"]}


@needs_dot
def test_batchnorm_by_hand_page_and_open(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    out = tmp_path / "by-hand.html"
    result = run("--out", str(out), "--example", "batchnorm-by-hand", "--rankdir", "tb",
                 "--open")
    assert result.exit_code == 0, result.output
    assert opened == [out.resolve().as_uri()]
    data = page_data(out)
    assert data["engine"] == "value" and data["title"] == "L = -1.789"
    wide = tmp_path / "wide.html"
    assert run("--out", str(wide), "--example", "batchnorm-by-hand").exit_code == 0
    assert aspect(out) < aspect(wide)  # top to bottom is narrower than left to right


def aspect(path) -> float:
    """Width over height of the page's picture."""
    width, height = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"',
                              path.read_text(encoding="utf-8")).groups()
    return float(width) / float(height)


def test_without_dot_exit_1_with_the_install_hint_and_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "step.html"
    result = run("--out", str(out))
    assert result.exit_code == 1
    assert "apt-get install graphviz" in result.output and "Nothing was written" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, code, message", [
    (["--out", "page.svg"], 2, "does not end in .html"),
    (["--out", "page.html", "--example", "batchnorm-by-hand", "--seed", "3"], 2,
     "--seed apply to the placement step"),
    (["--out", "page.html", "--batch-size", "1"], 2, "--batch-size"),
    (["--out", "missing/page.html"], 1, "does not exist"),
    (["--out", "page.html", "--model", "missing.npz"], 1, "missing.npz"),
], ids=["suffix", "by-hand-seed", "batch-size", "folder", "model"])
def test_errors_are_one_line_with_their_exit_code(tmp_path, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "page.html").exists()
