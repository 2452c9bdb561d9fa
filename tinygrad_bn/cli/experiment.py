"""``tinygrad-bn experiment NAME``: run one of the BatchNorm experiments (tinygrad_bn.experiments)
and print its tables, optionally drawing its figure."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..datasets import DatasetUnavailable
from ..experiments import (EXPERIMENTS, INSTALL_HINT, PLOT_FORMATS, TASKS, PlotUnavailable,
                           plot_experiment, run_experiment)
from .options import FileProblem, check_writable

__all__ = ["experiment_command"]


class _ProgressDisplay:
    """Progress on stderr: a bar on a terminal, otherwise one line per training run (so that a
    log file shows how far a long experiment got)."""

    def __init__(self, name: str):
        self.name = name
        self.bar: Any = None
        self.terminal = sys.stderr.isatty()

    def __call__(self, done: int, total: int, label: str) -> None:
        if not self.terminal:
            if label:
                click.echo(f"[{done + 1:>{len(str(total))}}/{total}] {label}", err=True)
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.name, file=sys.stderr,
                                         show_pos=True, item_show_func=lambda item: item)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos, current_item=label)
        if done == total:
            self.bar.__exit__(None, None, None)


def _check_plot_path(path: str | None) -> None:
    if path is None:
        return
    if Path(path).suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise click.BadParameter(f"{path!r} must end in "
                                 f"{', '.join('.' + f for f in PLOT_FORMATS)}",
                                 param_hint="--plot")
    check_writable(path)


def _experiment_options(name: str, **given: Any) -> dict:
    """The options given on the command line, checked against what experiment ``name`` takes
    (a usage error, exit 2, names the option)."""
    module = EXPERIMENTS[name]
    options = {key: value for key, value in given.items() if value is not None}
    for key in options:
        if key not in module.OPTIONS:
            flag = "--" + key.replace("_", "-")
            users = [n for n, m in EXPERIMENTS.items() if key in m.OPTIONS]
            raise click.UsageError(f"{flag} does not apply to {name} (only to "
                                   f"{', '.join(users)})")
    if "dataset" in options and options["dataset"] not in module.DATASETS:
        raise click.BadParameter(f"{name} runs on {', '.join(module.DATASETS)}, not "
                                 f"{options['dataset']!r}", param_hint="--dataset")
    return options


_NAMES = "\n".join(f"  {name:<16} {module.SUMMARY}" for name, module in EXPERIMENTS.items())


@click.command("experiment", epilog="\b\nExperiments:\n" + _NAMES)
@click.argument("name", metavar="NAME", type=click.Choice(list(EXPERIMENTS)))
@click.option("--quick", is_flag=True,
              help="A seconds-long version (few steps, values and seeds): it shows the "
                   "mechanics, not the effects.")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help="How many seeds (0 … N−1) per setting. Default: the experiment's own "
                   "(3; 5 for regularization, 1 for paper-fig1; 2 with --quick).")
@click.option("--dataset", type=click.Choice(list(TASKS)), default=None,
              help="lr-sweep, init-sweep: train on this data set instead of the synthetic ones "
                   "(digits needs scikit-learn; fashion-mnist Debian's dataset-fashion-mnist). "
                   "paper-fig1: fashion-mnist (default), digits or mnist. convnet: digits "
                   "(default) or fashion-mnist.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="paper-fig1: SGD steps per run (default 50000, the paper's).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="paper-fig1: learning rate on the mean loss (default 0.5).")
@click.option("--init-std", type=click.FloatRange(min=0, min_open=True), default=None,
              help="paper-fig1: every weight starts from N(0, STD²) (default 0.01).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Also draw the figure into this .png, .svg or .pdf file (needs the optional "
                   "extra: pip install \"tinygrad-bn[plot]\").")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (settings, tables, findings, data) instead of text.")
def experiment_command(name: str, quick: bool, seeds: int | None, dataset: str | None,
                       steps: int | None, lr: float | None, init_std: float | None,
                       plot_path: str | None, as_json: bool) -> None:
    """Compare the same network with and without BatchNorm, from the same seeds.

    Prints a table of mean ± spread over the seeds, and findings computed from it; progress
    goes to stderr. The full experiments take a few minutes each on two cores; --quick
    takes seconds. Example:

        tinygrad-bn experiment lr-sweep --plot lr-sweep.png

    The BatchNorm paper's Figure 1 on handwritten digits (about 5 minutes):

        tinygrad-bn experiment paper-fig1 --dataset digits --plot fig1.png
    """
    options = _experiment_options(name, dataset=dataset, steps=steps, lr=lr,
                                  init_std=init_std)
    _check_plot_path(plot_path)
    try:
        result = run_experiment(name, quick=quick, seeds=seeds,
                                progress=_ProgressDisplay(name), **options)
    except DatasetUnavailable as missing:
        raise FileProblem(str(missing)) from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1, ensure_ascii=False))
    else:
        click.echo(result.text())
    if plot_path is None:
        return
    try:
        plot_experiment(result, plot_path)
    except PlotUnavailable:
        raise FileProblem(f"cannot draw {plot_path}: plotting needs matplotlib, an optional "
                          f"extra: {INSTALL_HINT}") from None
    except OSError as error:
        raise FileProblem(f"cannot write {plot_path}: {error.strerror or error}") from None
    click.echo(f"Wrote the plot to {plot_path}", err=as_json)
