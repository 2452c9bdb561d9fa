"""``tinygrad-bn bench``: the quick benchmark, so users can see the numbers on their machine.

A thin front for `tinygrad_bn.benchmark` (the same harness as ``python benchmarks/run.py``).
"""
from __future__ import annotations

import sys

import click

from .. import benchmark

__all__ = ["bench_command"]


@click.command("bench")
@click.option("--full", is_flag=True,
              help="The full run (about a minute) instead of the quick one (about 15 s).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="BLAS / OpenMP / torch threads, the same for every engine.")
def bench_command(full: bool, threads: int) -> None:
    """Time one training step in tinygrad_bn, hand-written numpy, PyTorch and micrograd.

    Three MLPs of Linear → BatchNorm1d → ReLU blocks (the placement network, a medium
    784-256-256-10 and a large 784-1024-1024-10 one) are checked to compute the same thing,
    then timed interleaved; a table of times, memory and the performance targets follows.
    PyTorch and micrograd are compared when installed. Details: docs/performance.md.
    """
    argv = ["--threads", str(threads)] + ([] if full else ["--quick"])
    code = benchmark.main(argv)
    if code != 0:
        sys.exit(code)
