"""The repository keeps its promises: CI runs the README's test command, the README's set-up
commands exist, and the taste of the API in the README runs."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", setup, re.S)]


def test_readme_opens_with_two_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0] == "pip install -e . && tinygrad-bn train"
    assert "pytest" in commands[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_commands()[1] in ci_lines
    assert any("apt-get install" in line and "graphviz" in line for line in ci_lines)
    assert any("torch==2.13.0" in line for line in ci_lines)


def test_readme_taste_of_the_api_runs():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## A taste of the API\n\n```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["a"].grad != 0.0
    assert all(p.grad is not None for p in namespace["model"].parameters())
