"""The monitor's directory: statistics, PNG figures and an ``index.html`` that explains them.

``write_report(directory, runs)`` draws every figure of plots.FIGURES for one run (what
``tinygrad-bn train --monitor DIR`` writes beside the run's stats.npz) or for several side by
side (``tinygrad-bn monitor compare A B``), and a page that shows them with a caption saying
what to look for, above a table of the key numbers (`summary_rows`).

Read next: ../cli/monitor.py, the command line around this.
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..experiments.plotting import save_figure
from .plots import FIGURES, activation_layers, weight_names
from .recorder import Recording

__all__ = ["write_report", "summary_rows", "SUMMARY_COLUMNS"]

SUMMARY_COLUMNS = ("run", "layer", "saturated or dead: first → last record (mean)",
                   "output std: first → last", "input 15–85th percentile width: first → last",
                   "median ‖ΔW‖/‖W‖")


def _first_last(values: np.ndarray, scale: float = 1.0, digits: int = 2) -> str:
    values = np.asarray(values, dtype=np.float64) * scale
    if values.size == 0 or np.all(np.isnan(values)):
        return "—"
    return f"{values[0]:.{digits}f} → {values[-1]:.{digits}f}"


def summary_rows(run: Recording, title: str) -> list:
    """One row per activation layer: the numbers the figures are about (see SUMMARY_COLUMNS)."""
    updates = [np.nanmedian(run.params[name]["update_data"]) for name in weight_names(run)
               if np.any(np.isfinite(run.params[name]["update_data"]))]
    update = f"{np.median(updates):.1e}" if updates else "—"
    rows = []
    for name in activation_layers(run):
        stats = run.layers[name]
        kind = run.kinds[name]
        fraction = np.asarray(stats["dead" if kind == "relu" else "saturated"])
        what = "dead" if kind == "relu" else "saturated"
        width = np.asarray(stats["input_p85"]) - np.asarray(stats["input_p15"])
        share = f"{_first_last(fraction, 100, 1)} % {what} ({100 * np.nanmean(fraction):.1f} %)"
        rows.append([title, run.layer_label(name), share, _first_last(stats["std"]),
                     _first_last(width), update])
    return rows


def _table(rows: list) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in SUMMARY_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; font-size: 0.9em; }}
figure {{ margin: 2em 0; }} img {{ max-width: 100%; }}
figcaption {{ max-width: 60em; color: #333; }}
</style></head><body>
<h1>{title}</h1>
<p>{intro}</p>
{table}
{figures}
<p>The numbers behind every figure: {files}
(load them with <code>tinygrad_bn.monitor.Recording.load</code>).</p>
</body></html>
"""


def write_report(directory: str | os.PathLike, runs: Sequence[Recording],
                 titles: Sequence[str] | None = None) -> Path:
    """Write ``<figure>.png`` for every figure and ``index.html`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    titles = list(titles or [run.title or f"run {i + 1}" for i, run in enumerate(runs)])
    for run, title in zip(runs, titles):
        run.title = title
    blocks = []
    for stem, (draw, options, caption) in FIGURES.items():
        figure = draw(runs, **options)
        save_figure(figure, directory / f"{stem}.png")
        blocks.append(f'<figure><img src="{stem}.png" alt="{stem}">'
                      f"<figcaption><b>{stem}.</b> {html.escape(caption)}</figcaption></figure>")
    rows = [row for run, title in zip(runs, titles) for row in summary_rows(run, title)]
    every = ", ".join(f"{run.every}" for run in runs)
    intro = (f"Statistics recorded every {every} training steps through hooks "
             f"({len(runs[0])} records{' per run' if len(runs) > 1 else ''}). "
             "The table gives the key numbers of each activation layer.")
    files = ("stats.npz and stats.json in this directory" if len(runs) == 1
             else "stats.npz and stats.json in each run's directory")
    page = PAGE.format(title=html.escape(" vs ".join(titles)), intro=html.escape(intro),
                       table=_table(rows), figures="\n".join(blocks), files=html.escape(files))
    (directory / "index.html").write_text(page, encoding="utf-8")
    return directory / "index.html"
