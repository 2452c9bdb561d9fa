"""``tinygrad-bn explore``: write the step-through explorer page (tinygrad_bn.viz.explore).

The graph choices are `tinygrad-bn graph`'s own (graph.py: `graph_options`, `chosen_graph`):
one training step of the placement model, or the notes' BatchNorm-by-hand example.
"""
from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from ..data import bundled_placement_path
from ..files import OutputError
from ..viz import GraphvizNotFoundError, explore
from .graph import check_graph_options, chosen_graph, graph_options
from .options import FileProblem, check_writable

__all__ = ["explore_command"]

PAGE_SUFFIXES = (".html", ".htm")


@click.command("explore")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The page to write (.html): one file, nothing fetched from the network.")
@graph_options
@click.option("--open", "open_page", is_flag=True,
              help="Open the page in the default web browser once it is written.")
@click.pass_context
def explore_command(ctx: click.Context, out_path: str, example: str, model_path: str | None,
                    seed: int, batch_size: int, fused: bool, rankdir: str, max_nodes: int,
                    open_page: bool) -> None:
    """Write a page that steps through the forward and backward pass, one node at a time.

    The same graphs as `tinygrad-bn graph`: by default one training step of the placement
    model, or the notes' BatchNorm example. In the page, → and ← step, Home and End jump;
    backward shows each chain-rule update with its numbers. Examples:

    \b
        tinygrad-bn explore --out step.html --open
        tinygrad-bn explore --out by-hand.html --example batchnorm-by-hand --rankdir TB

    Graphviz's `dot` lays the graph out when the page is written (the page itself needs
    nothing but a browser). See docs/graphs.md.
    """
    if Path(out_path).suffix.lower() not in PAGE_SUFFIXES:
        raise click.BadParameter(f"{out_path} does not end in .html: the explorer writes a web "
                                 "page", param_hint="--out")
    check_graph_options(ctx, example)
    check_writable(out_path, inputs=[model_path, bundled_placement_path()])

    root, model, labels, what = chosen_graph(example, model_path, seed, batch_size, fused)
    explorer = explore(root, max_nodes=max_nodes, module=model, labels=labels,
                       rankdir=rankdir.upper())
    try:
        explorer.save(out_path)
    except GraphvizNotFoundError as error:
        raise FileProblem(f"{error}. Nothing was written to {out_path}.") from None
    except OutputError as error:
        raise FileProblem(str(error)) from None
    steps = len(explorer.data["forward"]) + len(explorer.data["backward"])
    click.echo(f"Wrote {out_path}: {what}, {steps} steps")
    if open_page:
        webbrowser.open(Path(out_path).resolve().as_uri())
