"""The ``tinygrad-bn`` command line (click). Each subcommand is a thin front for library code."""
from __future__ import annotations

import click

from . import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tinygrad-bn")
def main() -> None:
    """tinygrad_bn: see how backpropagation and Batch Normalization work, and train with them."""
