"""The documentation cannot rot: every ```python block in docs/*.md runs, and the guide's
links, images and experiment commands point at things that exist.

Blocks of one file share a namespace and run in order, top to bottom, in a temporary working
directory (so a block that writes a file leaves nothing behind). A block is skipped only when
its fence says so explicitly — ```python no-run — which is for blocks that cannot run here
(never for one that claims a number). A block that uses an optional package names it —
```python needs=onnx,onnxruntime — and runs wherever that package is installed (CI installs
them all); without it the block is skipped (so a later block that uses what it made declares
the same need). Tracebacks point at the Markdown file's own lines.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tinygrad_bn.experiments import EXPERIMENTS
from tinygrad_bn.viz import GraphvizNotFoundError

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# The pages this test also checks deeply.
GUIDES = ("index.md", "batchnorm.md", "autodiff.md", "interop.md")
FENCE = re.compile(r"^(`{3,})\s*([^`]*)$")


def code_blocks(path: Path) -> list:
    """(first line number, info words, code) for every fenced block of a Markdown file."""
    blocks, opened = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(line)
        if opened is None:
            if match:
                opened = (number + 1, match.group(2).split(), match.group(1), [])
        elif match and match.group(1) == opened[2] and not match.group(2).strip():
            blocks.append((opened[0], opened[1], "\n".join(opened[3])))
            opened = None
        else:
            opened[3].append(line)
    if opened is not None:
        raise AssertionError(f"{path.name}: the code block opened on line {opened[0] - 1} is "
                             "never closed")
    return blocks


def python_blocks(path: Path) -> list:
    return [(line, info, code) for line, info, code in code_blocks(path)
            if info and info[0] == "python"]


def missing_packages(info: list) -> list:
    """The packages a block's ``needs=a,b`` names that are not installed."""
    needed = [name for word in info if word.startswith("needs=")
              for name in word[len("needs="):].split(",") if name]
    return [name for name in needed if importlib.util.find_spec(name) is None]


def markdown_files() -> list:
    return sorted(DOCS.glob("*.md"))


def test_the_guides_exist():
    for name in GUIDES:
        assert (DOCS / name).is_file(), f"docs/{name} is missing"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": f"docs.{path.stem}"}
    for line, info, code in python_blocks(path):
        if "no-run" in info or missing_packages(info):
            continue
        # Pad with blank lines so that a traceback names the line in the Markdown file.
        source = "\n" * (line - 1) + code
        try:
            exec(compile(source, str(path), "exec"), namespace)
        except GraphvizNotFoundError:  # raised only when `dot` is not installed
            pytest.skip(f"docs/{path.name}, line {line} needs Graphviz's dot program")


@pytest.mark.parametrize("name", GUIDES)
def test_guides_opt_out_of_running_sparingly(name):
    blocks = python_blocks(DOCS / name)
    skipped = [line for line, info, _ in blocks if "no-run" in info]
    assert len(skipped) <= 1, f"docs/{name}: blocks at lines {skipped} are not run"


@pytest.mark.parametrize("name", GUIDES)
def test_guide_links_and_images_exist(name):
    text = (DOCS / name).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        assert (DOCS / target).exists(), f"docs/{name} links to missing {target}"


def test_every_experiment_in_the_guide_names_its_exact_command_and_plot():
    text = (DOCS / "batchnorm.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(?:nice -n \d+ )?tinygrad-bn experiment (.+)$", text, re.M)
    named = set()
    for command in commands:
        words = command.split()
        assert words[0] in EXPERIMENTS, f"unknown experiment in: {command}"
        named.add(words[0])
        if "--plot" in words:
            plot = words[words.index("--plot") + 1]
            assert (ROOT / plot).is_file(), f"{plot} (from `{command}`) does not exist"
            assert f"images/experiments/{Path(plot).name}" in text, f"{plot} is not shown"
    assert named == set(EXPERIMENTS), f"experiments without a command: {set(EXPERIMENTS) - named}"
