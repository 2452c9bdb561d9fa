"""Figures for the experiments, with matplotlib as an optional extra (``pip install
"tinygrad-bn[plot]"``). Nothing here imports matplotlib until a figure is asked for.

Figures are built with ``matplotlib.figure.Figure`` directly rather than pyplot, so drawing
one changes no global state (no backend switch, no open windows).
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["PlotUnavailable", "INSTALL_HINT", "new_figure", "save_figure", "style",
           "PLOT_FORMATS", "same_length"]

INSTALL_HINT = 'pip install "tinygrad-bn[plot]" (or, in a checkout, pip install -e ".[plot]")'
PLOT_FORMATS = ("png", "svg", "pdf")

# One colour per variant, the same in every figure.
COLOURS = {
    "plain": "#d62728", "BN": "#1f77b4", "dropout": "#ff7f0e", "BN + dropout": "#9467bd",
    "BN + noise 0.25": "#2ca02c", "BN + noise 1": "#8c564b",
}


class PlotUnavailable(ImportError):
    """Plotting was asked for but matplotlib is not installed."""


def new_figure(rows: int, columns: int, size: tuple) -> tuple:
    """A constrained-layout figure and a 2-D array of its axes."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotUnavailable(f"plotting needs matplotlib: {INSTALL_HINT}") from None
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def save_figure(figure: Any, path: str | os.PathLike) -> None:
    """Write the figure; the format follows the file's extension (png, svg or pdf)."""
    figure.savefig(path, dpi=110)


def style(variant: str) -> dict:
    """Line and marker options for a variant's curves."""
    return {"color": COLOURS.get(variant, "#7f7f7f"), "label": variant}


def same_length(curves: list) -> list:
    """Cut every seed's curve to the shortest one (a diverged run stops early)."""
    length = min(len(c) for c in curves)
    return [c[:length] for c in curves]
