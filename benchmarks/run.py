"""Benchmark one training step: tinygrad_bn against hand-written numpy, PyTorch and micrograd.

    python benchmarks/run.py            # the full run (about a minute)
    python benchmarks/run.py --quick    # a smoke run (about 15 s); `tinygrad-bn bench` runs this

The harness lives in the package (tinygrad_bn/benchmark.py) so that `tinygrad-bn bench` works
from an installed copy too; this script is only its front door. What is measured, and how, is
in that module's docstring and in docs/performance.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run from a source checkout without installing: the package is one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinygrad_bn.benchmark import main  # noqa: E402  (after the path set-up, on purpose)

if __name__ == "__main__":
    sys.exit(main())
