"""The ``tinygrad-bn`` command line (click). Each command is a thin front for library code.

Exit codes: 0 success; 1 a problem with a file's existence or contents (data or model files),
or training diverged; 2 a usage error (a bad option value); 130 Ctrl-C; 143 SIGTERM. Errors
are one line on stderr, never a traceback (docs/cli.md lists the guarantees).
"""
from __future__ import annotations

import click

from .. import __version__
from .bench import bench_command
from .experiment import experiment_command
from .explore import explore_command
from .export import export_command
from .graph import graph_command
from .interrupts import InterruptibleGroup
from .monitor import monitor_command
from .placement import data_command, info_command, predict_command, train_command

__all__ = ["main"]


@click.group(cls=InterruptibleGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tinygrad-bn")
def main() -> None:
    """tinygrad_bn: see how backpropagation and Batch Normalization work, and train with them.

    Start with `tinygrad-bn train`, which trains the course notes' placement example
    (predict `placed` from `cgpa` and `iq`) with a BatchNorm network.
    """


main.add_command(train_command)
main.add_command(predict_command)
main.add_command(info_command)
main.add_command(data_command)
main.add_command(graph_command)
main.add_command(explore_command)
main.add_command(experiment_command)
main.add_command(bench_command)
main.add_command(monitor_command)
main.add_command(export_command)
