"""Seeing the graph: still pictures with Graphviz, and a page that steps through backprop.

* labels.py  — who is who: the names, colours and words both pictures use;
* draw.py    — `draw_graph` and `render`: the graph as a Graphviz picture (SVG, PNG, PDF, DOT);
* explore.py — `explore`: one self-contained HTML page (its script and style are explore.js
  and explore.css beside it) that replays the forward and backward pass one node at a time.

Read next: labels.py, draw.py, explore.py; docs/graphs.md explains how to read the pictures.
"""
from __future__ import annotations

from .draw import (CLUSTER_STYLE, EARLIER, FONT, FORMATS, INSTALL_HINT, RANKDIRS,
                   GraphvizNotFoundError, draw_graph, output_format, render)
from .explore import Explorer, explore
from .labels import COLOURS, FORMULAS, SYMBOLS, TINY

__all__ = ["FORMATS", "RANKDIRS", "GraphvizNotFoundError", "INSTALL_HINT", "draw_graph",
           "output_format", "render", "explore", "Explorer", "COLOURS", "FORMULAS", "SYMBOLS",
           "TINY", "FONT", "EARLIER", "CLUSTER_STYLE"]
