"""``tinygrad-bn graph``: draw a computation graph with Graphviz (tinygrad_bn.viz).

Two graphs are on offer: one training step of the placement model (forward, loss, backward),
and the course notes' BatchNorm-by-hand example on scalar Values. docs/graphs.md shows both and
explains how to read them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
from click.core import ParameterSource

from ..data import (DEFAULT_FEATURES, DEFAULT_TARGET, DataError, Standardizer,
                    bundled_placement_path, load_csv)
from ..nn import BatchNorm1d, BCEWithLogitsLoss
from ..placement import build_model, load_model
from ..random import manual_seed
from ..scalar import batch_norm
from ..tensor import Tensor
from ..value import Value
from ..viz import FORMATS, RANKDIRS, GraphvizNotFoundError, draw_graph, output_format, render
from ..files import OutputError
from .options import FileProblem, check_writable

__all__ = ["graph_command", "graph_options", "check_graph_options", "chosen_graph",
           "placement_step", "batchnorm_by_hand", "HAND_BATCH"]

EXAMPLES = ("placement-step", "batchnorm-by-hand")
# Options that only the placement step uses (parameter name → flag).
STEP_OPTIONS = {"model_path": "--model", "seed": "--seed", "batch_size": "--batch-size",
                "fused": "--fused/--composed"}

# The notes' batch: m = 4 students, features (cgpa, iq).
HAND_BATCH = ((7.0, 70.0), (8.0, 80.0), (9.0, 90.0), (6.0, 60.0))
# Weights of the toy loss of the by-hand example. With equal weights every ∂L/∂x would be 0:
# Σᵢ ẑᵢ = 0 whatever the batch is, so a plain sum of BatchNorm's outputs cannot change.
HAND_WEIGHTS = (1.0, 2.0, 3.0, 4.0)


def batchnorm_by_hand() -> Value:
    """The notes' BatchNorm example on scalar Values, reduced to one loss Value to draw.

    The batch is `HAND_BATCH` (x[i, 0] = cgpa, x[i, 1] = iq of student i), normalised by
    `scalar.batch_norm` with γ = 1 and β = 0, so every μ_B, σ²_B, ẑ and y is a labelled node.
    The toy loss L = Σᵢ wᵢ·(y[i,0] + y[i,1]) with w = (1, 2, 3, 4) gives every node a
    gradient worth looking at.

    Example:
        >>> loss = batchnorm_by_hand()
        >>> loss.backward()
        >>> draw_graph(loss)
    """
    batch = [[Value(value, f"x[{i},{c}]") for c, value in enumerate(row)]
             for i, row in enumerate(HAND_BATCH)]
    gamma = [Value(1.0, f"γ[{c}]") for c in range(len(HAND_BATCH[0]))]
    beta = [Value(0.0, f"β[{c}]") for c in range(len(HAND_BATCH[0]))]
    normalised = batch_norm(batch, gamma, beta)
    loss = None
    for i, row in enumerate(normalised):
        term = (row[0] + row[1]) * Value(HAND_WEIGHTS[i], f"w[{i}]")
        loss = term if loss is None else loss + term
    loss.label = "L"
    return loss


def placement_step(model_path: str | None = None, *, seed: int = 0, batch_size: int = 4,
                   fused: bool = False) -> tuple:
    """Forward one batch of the bundled placement data through the model and compute the loss.

    The model is `placement.build_model` freshly initialised with ``seed`` (as
    ``tinygrad-bn train --seed`` starts), or the one saved at ``model_path``, in training mode.
    The batch is ``batch_size`` rows drawn with ``seed``, standardised with the model file's
    statistics, or with statistics of the whole bundled file for a fresh model.

    Returns:
        (loss, model, labels): the loss Tensor before backward, the model, and names for the
        input and target tensors, ready for `draw_graph`.

    Raises:
        FileProblem: the model file is missing or unusable.
        click.BadParameter: ``batch_size`` is larger than the data.
    """
    if model_path is not None:
        try:
            model, scaler, metadata = load_model(model_path)
        except (FileNotFoundError, ValueError) as error:
            raise FileProblem(str(error)) from None
        features = tuple(metadata["features"])
        target = metadata.get("options", {}).get("target", DEFAULT_TARGET)
    else:
        features, target = DEFAULT_FEATURES, DEFAULT_TARGET
    try:
        dataset = load_csv(bundled_placement_path(), features, target)
    except DataError as error:
        raise FileProblem(f"{model_path} was trained on columns the bundled placement data does "
                          f"not have: {error}") from None
    if batch_size > len(dataset):
        raise click.BadParameter(f"{batch_size} is more than the {len(dataset)} rows of the "
                                 "bundled placement data", param_hint="--batch-size")
    if model_path is None:
        scaler = Standardizer.fit(dataset.X)
        manual_seed(seed)
        model = build_model(len(features), fused=fused)
    else:
        for module in model.modules():
            if isinstance(module, BatchNorm1d):
                module.fused = fused
    model.train()  # one training step: BatchNorm uses the batch's own statistics
    rows = np.random.default_rng(seed).permutation(len(dataset))[:batch_size]
    x = Tensor(scaler.transform(dataset.X[rows]))
    y = Tensor(dataset.y[rows].reshape(-1, 1))
    loss = BCEWithLogitsLoss()(model(x), y)
    labels = {x: f"x: {batch_size} rows of ({', '.join(features)}), standardised",
              y: f"y: {target}"}
    return loss, model, labels


def _given(ctx: click.Context, name: str) -> bool:
    """True if the option was given on the command line (not left at its default)."""
    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def graph_options(command: Any) -> Any:
    """The options that choose and lay out the graph, shared by `graph` and `explore`."""
    options = [
        click.option("--example", type=click.Choice(EXAMPLES), default="placement-step",
                     show_default=True,
                     help="placement-step: one training step of the placement model. "
                          "batchnorm-by-hand: the notes' m = 4 BatchNorm example on scalar "
                          "Values."),
        click.option("--model", "model_path", type=click.Path(dir_okay=False),
                     help="Use the step of a model saved by `tinygrad-bn train --save` instead "
                          "of a freshly initialised one."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed for the fresh model's initialisation and for picking the "
                          "batch."),
        click.option("--batch-size", type=click.IntRange(min=2), default=4, show_default=True,
                     help="Rows in the batch (BatchNorm needs at least 2; few rows keep it "
                          "readable)."),
        click.option("--fused/--composed", default=False, show_default=True,
                     help="BatchNorm as one fused op, or composed of primitive ops so that "
                          "every step (μ_B → x − μ_B → σ²_B → ẑ → γ·ẑ → y) is a node."),
        click.option("--rankdir", type=click.Choice(RANKDIRS, case_sensitive=False),
                     default="LR", metavar="[LR|TB|RL|BT]", show_default=True,
                     help="Layout direction: LR is left to right, TB top to bottom."),
        click.option("--max-nodes", type=click.IntRange(min=1), default=500,
                     show_default=True,
                     help="Above this many nodes, each module is drawn as one node."),
    ]
    for option in reversed(options):  # decorators apply bottom-up: keep the order above
        command = option(command)
    return command


def check_graph_options(ctx: click.Context, example: str) -> None:
    """Refuse placement-step options given with --example batchnorm-by-hand (exit 2)."""
    if example == "batchnorm-by-hand":
        extra = [flag for name, flag in STEP_OPTIONS.items() if _given(ctx, name)]
        if extra:
            raise click.UsageError(f"{', '.join(extra)} apply to the placement step, not to "
                                   "--example batchnorm-by-hand")


def chosen_graph(example: str, model_path: str | None, seed: int, batch_size: int,
                 fused: bool) -> tuple:
    """The graph the `graph_options` chose: (root, model, labels, what it is in words).

    Raises:
        FileProblem, click.BadParameter: as `placement_step`.
    """
    if example == "batchnorm-by-hand":
        return (batchnorm_by_hand(), None, None,
                "the BatchNorm-by-hand example (m = 4, features cgpa and iq)")
    root, model, labels = placement_step(model_path, seed=seed, batch_size=batch_size,
                                         fused=fused)
    source = model_path or f"a fresh model (seed {seed})"
    mode = "fused" if fused else "composed"
    what = (f"one training step of {source}, {batch_size} rows, {mode} BatchNorm, "
            f"loss {root.item():.4f}")
    return root, model, labels, what


@click.command("graph")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The file to write: .svg, .png, .pdf (these need Graphviz's `dot`) or .dot.")
@graph_options
@click.option("--grad/--no-grad", "show_grad", default=True, show_default=True,
              help="Run backward and show each node's gradient, or draw the forward pass only.")
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False),
              help="Output format. Default: the suffix of --out.")
@click.pass_context
def graph_command(ctx: click.Context, out_path: str, example: str, model_path: str | None,
                  seed: int, batch_size: int, fused: bool, rankdir: str, max_nodes: int,
                  show_grad: bool, fmt: str | None) -> None:
    """Draw a computation graph: data and gradient at every node, BatchNorm step by step.

    By default one training step of the placement model (Linear → BatchNorm1d → ReLU, twice,
    then Linear → logit and the BCE-with-logits loss) on a batch of 4 rows. Examples:

    \b
        tinygrad-bn graph --out step.svg
        tinygrad-bn graph --out step.png --fused --rankdir TB
        tinygrad-bn graph --out by-hand.svg --example batchnorm-by-hand

    Without Graphviz's `dot` program the DOT text is written beside the requested file (with
    the suffix .dot, unless such a file exists already) and the command fails with the install
    hint. See docs/graphs.md.
    """
    try:
        chosen = output_format(out_path, fmt)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--out") from None
    check_graph_options(ctx, example)
    inputs = [model_path, bundled_placement_path()]
    check_writable(out_path, inputs=inputs)
    # Without `dot`, the DOT text goes to this file instead: check it now too.
    fallback = Path(out_path).with_suffix(".dot")
    if chosen != "dot":
        check_writable(str(fallback), inputs=inputs)

    root, model, labels, what = chosen_graph(example, model_path, seed, batch_size, fused)
    if show_grad:
        root.backward()
    graph = draw_graph(root, rankdir=rankdir.upper(), show_grad=show_grad, module=model,
                       max_nodes=max_nodes, labels=labels)
    try:
        render(graph, out_path, format=chosen)
    except GraphvizNotFoundError as error:
        if fallback.exists():  # a file the user did not name: never replace it silently
            raise click.ClickException(f"{error}. {fallback} already exists and was left as "
                                       f"it was; to write the DOT text anyway, name it: "
                                       f"--out {fallback}") from None
        render(graph, fallback, format="dot")
        raise click.ClickException(f"{error}. The DOT text was written to {fallback}; render "
                                   f"it later with: dot -T{chosen} {fallback} -o "
                                   f"{out_path}") from None
    except OutputError as error:
        raise FileProblem(str(error)) from None
    click.echo(f"Wrote {out_path}: {what}")
