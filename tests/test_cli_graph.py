"""``tinygrad-bn graph``: the placement step and the BatchNorm-by-hand example, every option,
every error, and the .dot fallback when Graphviz's ``dot`` program is missing."""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinygrad_bn.cli import main

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot program is not installed")
DOCS = Path(__file__).resolve().parents[1] / "docs"


def run(*args: str):
    return CliRunner().invoke(main, ["graph", *args])


def draw(tmp_path: Path, *args: str, name: str = "graph.dot") -> str:
    """Run the command writing DOT text, check it succeeded, and return the text."""
    out = tmp_path / name
    result = run("--out", str(out), *args)
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}" in result.stdout
    return out.read_text(encoding="utf-8")


def titles(source: str) -> list:
    """The bold titles of a tensor graph's boxes, in order."""
    return re.findall(r"<B>(.*?)</B>", source)


def records(source: str) -> list:
    """The record labels of a Value graph, in order."""
    return re.findall(r'label="(\{[^"]*\})" ', source)


def test_help_shows_an_example_and_every_option():
    result = CliRunner().invoke(main, ["graph", "--help"])
    assert result.exit_code == 0
    for text in ("tinygrad-bn graph --out step.svg", "--example", "batchnorm-by-hand", "--model",
                 "--seed", "--batch-size", "--fused / --composed", "--rankdir", "--no-grad",
                 "--format", "--max-nodes"):
        assert text in result.output, text
    assert "graph" in CliRunner().invoke(main, ["--help"]).output


def test_placement_step_names_parameters_and_groups_layers(tmp_path):
    source = draw(tmp_path)
    names = titles(source)
    for name in ("0.weight", "0.bias", "1.weight (γ)", "1.bias (β)", "4.weight (γ)", "6.bias",
                 "x: 4 rows of (cgpa, iq), standardised", "y: placed", "BCEWithLogits"):
        assert name in names, name
    for cluster in ("(0): Linear(2→16)", "(1): BatchNorm1d(16), composed", "(2): ReLU()",
                    "(6): Linear(16→1)", "BCEWithLogitsLoss()"):
        assert f'label="{cluster}"' in source, cluster
    for step in ("μ_B", "x − μ_B", "σ²_B", "√(σ²_B+ε)", "ẑ", "γ·ẑ", "y = γ·ẑ + β"):
        assert step in names, step  # the composed BatchNorm's steps, named as in the notes
    assert "grad 1" in source  # ∂L/∂L at the loss: backward ran


def test_fused_draws_one_op_per_batchnorm_and_composed_is_the_default(tmp_path):
    fused = draw(tmp_path, "--fused", name="fused.dot")
    assert fused.count("all steps in one fused op") == 2 and "ẑ" not in titles(fused)
    assert draw(tmp_path, "--composed", name="composed.dot") == draw(tmp_path)


def test_seed_and_batch_size_choose_the_model_and_the_rows(tmp_path):
    default = draw(tmp_path)
    assert draw(tmp_path, "--seed", "0", name="again.dot") == default  # deterministic
    assert draw(tmp_path, "--seed", "1", name="other.dot") != default
    six = draw(tmp_path, "--batch-size", "6", name="six.dot")
    assert "x: 6 rows of (cgpa, iq), standardised" in titles(six) and "(6, 16) float32" in six


def test_no_grad_draws_the_forward_pass_only(tmp_path):
    source = draw(tmp_path, "--no-grad")
    assert "grad " not in source and "data " in source


def test_rankdir_format_and_max_nodes(tmp_path):
    assert "rankdir=TB" in draw(tmp_path, "--rankdir", "tb", name="tb.dot")
    text = draw(tmp_path, "--format", "dot", name="graph.txt")
    assert text.startswith("digraph tensor_graph")
    collapsed = draw(tmp_path, "--max-nodes", "20", name="small.dot")
    assert "subgraph cluster" not in collapsed
    assert "46 tensors are more than max_nodes=20" in collapsed


def test_batchnorm_by_hand_has_every_step_of_the_notes_example(tmp_path):
    source = draw(tmp_path, "--example", "batchnorm-by-hand")
    labels = records(source)
    named = [label.split(" | ")[0][2:] for label in labels if not label.startswith("{ data")]
    for c in range(2):
        assert f"μ_B[{c}]" in named and f"σ²_B[{c}]" in named and f"γ[{c}]" in named
        assert f"β[{c}]" in named and f"√(σ²_B[{c}]+ε)" in named
        for i in range(4):
            assert f"x[{i},{c}]" in named and f"ẑ[{i},{c}]" in named and f"y[{i},{c}]" in named
    # The notes' batch (cgpa, iq) = (7, 70), (8, 80), (9, 90), (6, 60):
    assert "{ x[0,0] | data 7 |" in source and "{ x[3,1] | data 60 |" in source
    assert "{ μ_B[0] | data 7.5 |" in source and "{ σ²_B[0] | data 1.25 |" in source
    assert "{ μ_B[1] | data 75 |" in source and "{ σ²_B[1] | data 125 |" in source
    assert "{ ẑ[2,0] | data 1.342 |" in source       # (9 − 7.5)/√1.25
    assert "{ β[0] | data 0 | grad 10 }" in source     # ∂L/∂β = Σᵢ wᵢ = 1 + 2 + 3 + 4
    assert "{ L | data" in source


def test_batchnorm_by_hand_without_gradients(tmp_path):
    source = draw(tmp_path, "--example", "batchnorm-by-hand", "--no-grad")
    assert "grad" not in source and "{ μ_B[0] | data 7.5 }" in source


def test_a_saved_model_is_drawn_in_training_mode(tmp_path):
    model = tmp_path / "model.npz"
    trained = CliRunner().invoke(main, ["train", "--epochs", "1", "--hidden", "8",
                                        "--save", str(model), "--quiet"])
    assert trained.exit_code == 0, trained.output
    source = draw(tmp_path, "--model", str(model), "--fused")
    assert 'label="(0): Linear(2→8)"' in source and 'label="(1): BatchNorm1d(8)"' in source
    assert "running" not in source  # batch statistics: the step of training, not evaluation
    result = run("--model", str(model), "--out", str(tmp_path / "g.dot"))
    assert f"one training step of {model}" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--out", "graph.jpg"], "the suffix .jpg is not a graph format"),
    (["--out", "graph"], "without a suffix"),
    (["--out", "g.svg", "--format", "gif"], "'gif' is not one of"),
    (["--out", "g.dot", "--batch-size", "1"], "1 is not in the range x>=2"),
    (["--out", "g.dot", "--batch-size", "601"], "601 is more than the 600 rows"),
    (["--out", "g.dot", "--rankdir", "XY"], "'XY' is not one of"),
    (["--out", "g.dot", "--example", "mnist"], "'mnist' is not one of"),
    (["--out", "g.dot", "--example", "batchnorm-by-hand", "--model", "m.npz", "--seed", "2"],
     "--model, --seed apply to the placement step"),
    (["--out", "g.dot", "--example", "batchnorm-by-hand", "--fused"],
     "--fused/--composed apply to the placement step"),
    ([], "Missing option '--out'"),
], ids=["suffix", "no-suffix", "format", "batch-1", "batch-601", "rankdir", "example",
        "by-hand-model", "by-hand-fused", "no-out"])
def test_usage_errors_exit_2_with_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("make_args, message", [
    (lambda tmp: ["--out", str(tmp / "missing" / "g.svg")], "does not exist"),
    (lambda tmp: ["--out", str(tmp / "g.dot"), "--model", str(tmp / "none.npz")], "none.npz"),
    (lambda tmp: ["--out", str(tmp / "g.dot"), "--model", str(tmp / "bad.npz")], "bad.npz"),
], ids=["out-folder", "model-missing", "model-damaged"])
def test_file_problems_exit_1_with_one_line(tmp_path, make_args, message):
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    result = run(*make_args(tmp_path))
    assert result.exit_code == 1, result.output
    assert message in result.output and result.output.startswith("Error:")
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "g.dot").exists()


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_without_dot_the_dot_text_is_kept_and_the_hint_given(tmp_path, monkeypatch, suffix):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH on which there is no dot program
    out = tmp_path / f"step{suffix}"
    result = run("--out", str(out))
    assert result.exit_code == 1
    error = result.output.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert "apt-get install graphviz" in error and "brew install graphviz" in error
    assert "conda install" in error and str(tmp_path / "step.dot") in error
    assert not out.exists()
    fallback = (tmp_path / "step.dot").read_text(encoding="utf-8")
    assert fallback.startswith("digraph tensor_graph") and "1.weight (γ)" in fallback


def test_without_dot_a_dot_file_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert draw(tmp_path, "--example", "batchnorm-by-hand").startswith("digraph value_graph")


def svg_nodes(path: Path) -> list:
    namespace = {"svg": "http://www.w3.org/2000/svg"}
    root = ElementTree.parse(path).getroot()
    return [g.find("svg:title", namespace).text
            for g in root.findall(".//svg:g[@class='node']", namespace)]


def dot_nodes(source: str) -> list:
    return re.findall(r"^\s*(\w+) \[label=", source, flags=re.MULTILINE)


@needs_dot
@pytest.mark.parametrize("args", [[], ["--fused"], ["--example", "batchnorm-by-hand"]],
                         ids=["composed", "fused", "by-hand"])
def test_svg_is_valid_with_one_node_group_per_node(tmp_path, args):
    source = draw(tmp_path, *args)
    assert run("--out", str(tmp_path / "graph.svg"), *args).exit_code == 0
    assert sorted(svg_nodes(tmp_path / "graph.svg")) == sorted(dot_nodes(source))


@needs_dot
def test_png_has_the_signature_and_a_sane_size(tmp_path):
    out = tmp_path / "step.png"
    assert run("--out", str(out), "--fused").exit_code == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 500 < width < 20_000 and 100 < height < 5_000


# The pictures in docs/ are made by the command in docs/graphs.md; they must show the graphs
# the command draws today (same nodes; the layout itself depends on the Graphviz version).
DOC_IMAGES = {
    "placement-step.svg": [],
    "placement-step-fused.svg": ["--fused"],
    "batchnorm-by-hand.svg": ["--example", "batchnorm-by-hand", "--rankdir", "TB"],
}


@pytest.mark.parametrize("name", sorted(DOC_IMAGES))
def test_docs_images_match_what_the_command_draws(tmp_path, name):
    image = DOCS / "images" / name
    assert image.is_file(), f"{image} is missing: run the command in docs/graphs.md"
    assert f"images/{name}" in (DOCS / "graphs.md").read_text(encoding="utf-8")
    assert f"--out docs/images/{name}" in (DOCS / "graphs.md").read_text(encoding="utf-8")
    source = draw(tmp_path, *DOC_IMAGES[name])
    assert sorted(svg_nodes(image)) == sorted(dot_nodes(source))
