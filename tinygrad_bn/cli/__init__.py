"""The ``tinygrad-bn`` command line (click). Each command is a thin front for library code.

Exit codes: 0 success; 1 a problem with a file's existence or contents (data or model files);
2 a usage error (a bad option value). Errors are one line on stderr, never a traceback.
"""
from __future__ import annotations

import click

from .. import __version__
from .bench import bench_command
from .experiment import experiment_command
from .graph import graph_command
from .monitor import monitor_command
from .placement import data_command, info_command, predict_command, train_command

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
main.add_command(experiment_command)
main.add_command(bench_command)
main.add_command(monitor_command)
