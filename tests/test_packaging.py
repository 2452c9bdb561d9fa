"""The suite runs on any fresh clone or unpacked sdist: tests read nothing outside the
repository, the sdist carries the tests with their data, the docs and the examples, and the
build is clean (a LICENSE, no setuptools warning about the package data)."""
from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_tests_read_nothing_outside_the_repository():
    for path in sorted((ROOT / "tests").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"parents\[[2-9]\]", text), f"{path.name} reaches above the repo"
        assert not re.search(r"/\s*[\"']shared[\"']", text), f"{path.name} reads ../shared"


def test_the_license_is_the_mit_license_the_metadata_names():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "tinygrad_bn authors" in text
    assert re.search(r"^license = MIT$", (ROOT / "setup.cfg").read_text(), re.M)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple:
    if not (ROOT / "setup.cfg").exists():
        pytest.skip("not a source tree")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q",
         "egg_info", "--egg-base", str(out), "sdist", "--dist-dir", str(out),
         "build_py", "--build-lib", str(out / "lib")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    archive = next(out.glob("*.tar.gz"))
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    return names, done.stderr, out / "lib"


def test_the_sdist_holds_what_the_tests_need(build):
    names, _, _ = build
    for needed in ["LICENSE", "tests/fixtures/placement_marks.csv",
                   "tests/fixtures/placement_resume_spaces.csv", "tests/fixtures/README.md",
                   "tests/fixtures/torch_golden.npz", "docs/cli.md",
                   "docs/images/experiments/lr-sweep.png", "examples/04_train_placement.py",
                   "tinygrad_bn/resources/placement.csv", "benchmarks/run.py", ".ci/run"]:
        assert needed in names, f"the sdist lacks {needed}"
    tests = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("*.py")}
    assert tests <= names


def test_the_build_is_free_of_package_data_warnings(build):
    _, stderr, lib = build
    assert "absent from the `packages` configuration" not in stderr, stderr
    assert (lib / "tinygrad_bn" / "resources" / "placement.csv").is_file()
