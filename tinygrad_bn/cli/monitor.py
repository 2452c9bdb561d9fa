"""``tinygrad-bn train --monitor DIR`` and ``tinygrad-bn monitor compare``: watch training.

`start_monitor` checks the directory and matplotlib before any training is done and returns
the `Monitor` that `placement.train` attaches; `finish_monitor` writes the statistics, figures
and page. ``monitor compare A B`` draws two saved runs side by side.
"""
from __future__ import annotations

from pathlib import Path

import click

from ..experiments.plotting import INSTALL_HINT
from ..monitor import Monitor, Recording
from .options import FileProblem

__all__ = ["monitor_command", "start_monitor", "finish_monitor"]


def _check_directory(path: str) -> None:
    if Path(path).exists() and not Path(path).is_dir():
        raise FileProblem(f"cannot write the monitor's output to {path}: it is a file, not a "
                          "folder")


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FileProblem(f"the monitor draws its figures with matplotlib: {INSTALL_HINT}") \
            from None


def start_monitor(directory: str | None, every: int, title: str) -> Monitor | None:
    """A Monitor for ``train --monitor DIR`` (None without DIR), after checking DIR."""
    if directory is None:
        return None
    _check_directory(directory)
    _check_matplotlib()
    return Monitor(every=every, title=title)


def finish_monitor(monitor: Monitor | None, directory: str | None) -> str | None:
    """Write stats.npz, stats.json, the PNGs and index.html; returns the page's path."""
    if monitor is None:
        return None
    from ..monitor.report import write_report  # imports matplotlib's helpers lazily
    monitor.recording.save(directory)
    return str(write_report(directory, [monitor.recording]))


@click.group("monitor")
def monitor_command() -> None:
    """Look at runs recorded with `tinygrad-bn train --monitor DIR`."""


@monitor_command.command("compare")
@click.argument("directories", nargs=-1, required=True, metavar="DIR_A DIR_B ...",
                type=click.Path(file_okay=False))
@click.option("--out", "out_dir", default="monitor-compare", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the figures and index.html.")
@click.option("--title", "titles", multiple=True,
              help="A name for each run, in order (default: each run's own title).")
def compare_command(directories: tuple, out_dir: str, titles: tuple) -> None:
    """Draw the same figures for several runs side by side, one column per run. Example:

        tinygrad-bn train --activation tanh --monitor bn/
        tinygrad-bn train --activation tanh --no-batch-norm --monitor plain/
        tinygrad-bn monitor compare bn/ plain/ --out compare/
    """
    if len(directories) < 2:
        raise click.UsageError("compare needs two or more run folders")
    if titles and len(titles) != len(directories):
        raise click.BadParameter(f"{len(titles)} titles for {len(directories)} runs",
                                 param_hint="--title")
    runs = []
    for directory in directories:
        try:
            runs.append(Recording.load(directory))
        except ValueError as error:
            raise FileProblem(str(error)) from None
    _check_directory(out_dir)
    _check_matplotlib()
    from ..monitor.report import write_report
    if not titles:
        titles = tuple(run.title or Path(d).name for run, d in zip(runs, directories))
    page = write_report(out_dir, runs, titles)
    click.echo(f"Wrote the comparison to {page}")
