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
              help="The full run (a minute or two) instead of the quick one (about 15 s).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="BLAS / OpenMP / torch threads, the same for every engine.")
@click.option("--blas-kernel", type=click.Choice(["auto", "default"]), default="auto",
              show_default=True,
              help="auto: numpy's OpenBLAS uses its AVX-512 kernels on an AVX-512 CPU it did "
                   "not recognise; default: OpenBLAS's own choice.")
def bench_command(full: bool, threads: int, blas_kernel: str) -> None:
    """Time one training step in tinygrad_bn, hand-written numpy, PyTorch and micrograd.

    Four MLPs of Linear → BatchNorm1d → activation blocks (the placement network, a medium
    784-256-256-10, a large 784-1024-1024-10 and the BN paper's sigmoid network), eager and
    compiled (tinygrad_bn.jit), and a small convnet are checked to compute the same thing, then
    timed interleaved; a table of times, memory and the performance targets follows. PyTorch
    and micrograd are compared when installed. Details: docs/performance.md.
    """
    argv = ["--threads", str(threads), "--blas-kernel", blas_kernel] + ([] if full
                                                                         else ["--quick"])
    code = benchmark.main(argv)
    if code != 0:
        sys.exit(code)
