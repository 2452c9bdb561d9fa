"""Drawing computation graphs with Graphviz: a picture of everything backward walks through.

`draw_graph(root)` returns a `graphviz.Digraph` of every node ``root`` was computed from:

* a `Value` graph is drawn as micrograd draws it: one record per value (label | data | grad),
  a small node per operation, arrows in the direction the data flowed;
* a `Tensor` graph gets one box per tensor: the op that made it with its formula, shape and
  dtype, and a summary of its data and gradient. Parameters carry their ``state_dict`` names
  (``0.weight``, ``1.weight (γ)``) and their own colour; the ops each module produced sit in a
  labelled cluster (``Linear(2→16)``, ``BatchNorm1d(16)``), so a composed BatchNorm1d shows its
  steps mean → centre → variance → normalise → ·γ → +β.

The walk is `graph.topological_order`, the one backward uses, and node ids follow it (``v0``,
``v1``, … for values, ``t0``, ``t1``, … for tensors), so the DOT text is the same on every run.
`render(root, "graph.svg")` writes a picture: Graphviz's ``dot`` program lays it out (a
``.dot`` file needs no Graphviz at all).

Read next: docs/graphs.md, which explains how to read the pictures.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import graphviz
import numpy as np

from .files import atomic_write
from .graph import topological_order
from .nn.batchnorm import BatchNorm1d
from .nn.linear import Linear
from .nn.module import Module, Parameter
from .tensor import Tensor
from .value import Value

__all__ = ["FORMATS", "RANKDIRS", "GraphvizNotFoundError", "INSTALL_HINT", "draw_graph",
           "output_format", "render"]

FORMATS = ("svg", "png", "pdf", "dot")
RANKDIRS = ("LR", "TB", "RL", "BT")
INSTALL_HINT = ("install Graphviz with `apt-get install graphviz` (Debian/Ubuntu), "
                "`brew install graphviz` (macOS) or `conda install -c conda-forge graphviz`")

FONT = "Helvetica,Arial,sans-serif"
TINY = 4            # arrays with at most this many elements show their values, not mean/std
EARLIER = "earlier"  # id of the node that stands for the nodes left out of a large graph

# One colour per kind of node; docs/graphs.md has the same legend.
COLOURS = {
    "op": "#dae8fc",         # blue: made by an operation
    "root": "#f8cecc",       # red: the node the graph was drawn from (the loss)
    "parameter": "#ffe6cc",  # orange: trained by the optimizer
    "input": "#d5e8d4",      # green: data fed in (or a leaf you made)
    "buffer": "#e1d5e7",     # purple: saved, untrained module state (running statistics)
    "constant": "#f5f5f5",   # grey: a number written into the computation
    "module": "#fff2cc",     # yellow: a whole module, collapsed into one node
    "named": "#fff2cc",      # yellow: a labelled intermediate Value (μ_B, ẑ, …)
}
CLUSTER_STYLE = {"default": ("#f7f7f7", "#b3b3b3"), "batchnorm": ("#fffbe6", "#d6b656")}

# What each Function computes, shown under its name. a, b: the inputs in order; x: the input.
FORMULAS = {
    "Add": "a + b", "Sub": "a − b", "Mul": "a × b", "Div": "a ÷ b", "Neg": "−x",
    "Exp": "eˣ", "Log": "ln x", "Sqrt": "√x", "Tanh": "tanh x", "Sigmoid": "σ(x)",
    "ReLU": "max(0, x)", "MatMul": "a @ b", "LogSoftmax": "log softmax", "Permute": "permute",
    "GetItem": "x[index]", "LinearFunction": "y = x Wᵀ + b",
    "BatchNormFunction": "y = γ·(x − μ_B)/√(σ²_B + ε) + β",
    "BCEWithLogitsFunction": "BCE(σ(logit), target)", "BCEFunction": "BCE(p, target)",
}
SYMBOLS = {"Add": "+", "Sub": "−", "Mul": "×", "Div": "÷"}


class GraphvizNotFoundError(RuntimeError):
    """Rendering to SVG, PNG or PDF needs Graphviz's ``dot`` program, and it is not installed."""


# --- the public functions ---------------------------------------------------------------------

def draw_graph(root: Value | Tensor, *, rankdir: str = "LR", show_data: bool = True,
               show_grad: bool = True, module: Module | None = None, max_nodes: int = 500,
               labels: Mapping[Any, str] | None = None) -> graphviz.Digraph:
    """Draw the computation graph behind ``root`` as a `graphviz.Digraph`.

    Value graphs: one record per value (label | data | grad) and one small node per op, as in
    micrograd. Tensor graphs: one box per tensor with its op, shape, dtype and a summary of its
    data and grad (the values themselves when there are at most four, else mean and std).
    Scalar constants mixed into a tensor expression (the 1/m of a mean, the ε of BatchNorm)
    are written into the box of the op that uses them instead of getting a box of their own.
    Ops that a module produced are grouped in a cluster named after the module; parameters
    are named by their ``state_dict`` path in ``module`` (BatchNorm's γ and β are marked).

    A graph with more than ``max_nodes`` nodes (values, or tensor boxes) is kept readable:
    each module cluster is collapsed into one node; if that is not enough (or there are no
    modules, as in a Value graph), only the ``max_nodes`` nodes nearest the root are drawn and
    one "⋯" node stands for the rest. The caption under the graph says what was done.

    Args:
        root: the `Value` or `Tensor` to draw the graph of (usually the loss).
        rankdir: layout direction, "LR" (left to right, the default), "TB", "RL" or "BT".
        show_data: show each node's data.
        show_grad: show each node's ``.grad`` (∂root/∂node after ``root.backward()``).
        module: the model the graph was computed with, to name its parameters and buffers.
        max_nodes: the largest graph drawn in full.
        labels: names for particular nodes, e.g. ``{x: "x"}`` (a Value's own ``label`` is used
            when it has none here).

    Returns:
        A `graphviz.Digraph`; its ``.source`` is the DOT text, and `render` writes it to a file.

    Example:
        >>> a, b, c = Value(2.0, "a"), Value(-3.0, "b"), Value(10.0, "c")
        >>> d = a * b + c
        >>> d.backward()
        >>> print(draw_graph(d).source)      # 5 records, 2 op nodes, 6 arrows
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"max_nodes must be a positive integer, got {max_nodes!r}")
    if module is not None and not isinstance(module, Module):
        raise TypeError(f"module must be a tinygrad_bn.nn.Module, got {type(module).__name__}")
    labels = dict(labels) if labels else {}
    if isinstance(root, Value):
        if module is not None:
            raise ValueError("module= names the parameters of a Tensor graph; a Value graph "
                             "has none (name Values with their label instead)")
        return _draw_values(root, rankdir, show_data, show_grad, max_nodes, labels)
    if isinstance(root, Tensor):
        return _draw_tensors(root, rankdir, show_data, show_grad, module, max_nodes, labels)
    raise TypeError(f"draw_graph needs a Value or a Tensor, got {type(root).__name__}")


def render(root: Value | Tensor | graphviz.Digraph, path: str | os.PathLike, *,
           format: str | None = None, **kw: Any) -> Path:
    """Draw ``root``'s graph and write it to ``path`` as SVG, PNG, PDF or DOT text.

    The format is ``format`` if given, else the suffix of ``path`` (``.svg``, ``.png``,
    ``.pdf``, ``.dot``); the file is written at exactly ``path``, replacing any file there.
    Writing ``.dot`` needs nothing else; the other formats need Graphviz's ``dot`` program.

    Args:
        root: a `Value` or `Tensor` (drawn with `draw_graph`), or a Digraph already drawn.
        path: where to write.
        format: "svg", "png", "pdf" or "dot"; by default taken from the suffix of ``path``.
        **kw: options for `draw_graph` (rankdir, show_grad, module, …).

    Returns:
        The path written.

    Raises:
        ValueError: the format is unknown or cannot be told from the path.
        FileNotFoundError: the folder of ``path`` does not exist.
        GraphvizNotFoundError: ``dot`` is not installed; the message says how to install it.

    Example:
        >>> loss.backward()
        >>> render(loss, "step.svg", module=model)
    """
    path = Path(path)
    chosen = output_format(path, format)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    if isinstance(root, graphviz.Digraph):
        if kw:
            raise TypeError(f"render got drawing options ({', '.join(sorted(kw))}) with a graph "
                            "that is already drawn; pass them to draw_graph instead")
        graph = root
    else:
        graph = draw_graph(root, **kw)
    if chosen == "dot":
        content = graph.source.encode("utf-8")
    else:
        try:
            content = graph.pipe(format=chosen)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFoundError(
                f"writing {path.name} ({chosen.upper()}) needs Graphviz's `dot` program, which "
                f"is not installed or not on PATH: {INSTALL_HINT} (a .dot file needs no "
                "Graphviz)") from None
    atomic_write(path, lambda file: file.write(content))
    return path


def output_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The format `render` writes: ``format`` if given, else the suffix of ``path``.

    Raises ValueError when it is not one of `FORMATS` (or ``path`` has no suffix).

    Example:
        >>> output_format("graph.SVG"), output_format("graph", "png")
        ('svg', 'png')
    """
    path = Path(path)
    if format is not None:
        chosen = format.lower().lstrip(".")
        if chosen not in FORMATS:
            raise ValueError(f"unknown graph format {format!r}: use one of {', '.join(FORMATS)}")
        return chosen
    suffix = path.suffix.lower().lstrip(".")
    if not suffix:
        raise ValueError(f"cannot tell the format of {str(path)!r} without a suffix: name it "
                         f"*.svg, *.png, *.pdf or *.dot, or pass format=")
    if suffix not in FORMATS:
        raise ValueError(f"cannot write {path.name}: the suffix .{suffix} is not a graph format "
                         f"(use .svg, .png, .pdf or .dot)")
    return suffix


# --- text helpers -------------------------------------------------------------------------------

def _number(x: Any) -> str:
    """A number in at most 4 significant digits (0 for −0, so runs print the same)."""
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.4g}"


def _summary(array: np.ndarray) -> str:
    """The values of a tiny array, else its mean and standard deviation."""
    array = np.asarray(array)
    if array.size == 0:
        return "empty"
    if array.size <= TINY:
        values = [_number(v) for v in array.reshape(-1)]
        return values[0] if array.ndim == 0 else "[" + ", ".join(values) + "]"
    wide = array.astype(np.float64)
    return f"mean {_number(wide.mean())}, std {_number(wide.std())}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _shape_text(array: np.ndarray) -> str:
    shape = "scalar" if array.ndim == 0 else str(tuple(array.shape))
    return f"{shape} {array.dtype}"


_RECORD_SPECIALS = re.compile(r"([\\{}|<>\"])")


def _record_text(text: str) -> str:
    """Escape the characters that structure a record label ({ } | < >)."""
    return _RECORD_SPECIALS.sub(r"\\\1", text)


def _graph(name: str, rankdir: str) -> graphviz.Digraph:
    return graphviz.Digraph(
        name=name,
        graph_attr={"rankdir": rankdir, "fontname": FONT, "nodesep": "0.25", "ranksep": "0.35",
                    "newrank": "true"},
        node_attr={"fontname": FONT, "fontsize": "11"},
        edge_attr={"color": "#555555", "arrowsize": "0.7"},
    )


def _caption(graph: graphviz.Digraph, lines: list) -> None:
    """Put ``lines`` under the graph. Set last, so that clusters do not inherit the label."""
    if lines:
        text = "".join(line + "\\l" for line in lines)  # \l ends a left-justified line
        graph.attr(label=graphviz.nohtml(text), labelloc="b", labeljust="l", fontsize="11")


# --- Value graphs -------------------------------------------------------------------------------

def _draw_values(root: Value, rankdir: str, show_data: bool, show_grad: bool, max_nodes: int,
                 labels: dict) -> graphviz.Digraph:
    order = topological_order(root)
    dropped = order[:max(0, len(order) - max_nodes)]
    kept = order[len(dropped):]
    ids = {node: f"v{i}" for i, node in enumerate(order)}
    drawn = set(kept)
    graph = _graph("value_graph", rankdir)
    # In a left-to-right layout the fields of {a | b} sit side by side; top-to-bottom needs
    # no braces for the same look.
    braces = ("{ ", " }") if rankdir in ("LR", "RL") else ("", "")
    if dropped:
        graph.node(EARLIER, label=graphviz.nohtml(f"⋯ {len(dropped)} earlier values"),
                   shape="note", style="filled", fillcolor=COLOURS["constant"])
    edges_from_earlier = set()
    for node in kept:
        node_id = ids[node]
        name = labels.get(node, node.label)
        fields = [_record_text(name)] if name else []
        if show_data:
            fields.append(f"data {_number(node.data)}")
        if show_grad:
            fields.append(f"grad {_number(node.grad)}")
        record = braces[0] + (" | ".join(fields) or " ") + braces[1]
        graph.node(node_id, label=graphviz.nohtml(record), shape="record",
                   **_value_style(node, name, node is root))
        if not node.parents:
            continue
        op_id = f"{node_id}_op"
        graph.node(op_id, label=graphviz.nohtml(node.op), shape="ellipse", style="filled",
                   fillcolor=COLOURS["op"], fontsize="12", height="0.3", margin="0.04,0.02")
        for parent in node.parents:
            if parent in drawn:
                graph.edge(ids[parent], op_id)
            elif op_id not in edges_from_earlier:
                edges_from_earlier.add(op_id)
                graph.edge(EARLIER, op_id, style="dashed")
        graph.edge(op_id, node_id)
    if dropped:
        _caption(graph, [f"{len(order)} values are more than max_nodes={max_nodes}: the "
                         f"{len(kept)} nearest the root are drawn, the {len(dropped)} before "
                         "them are the ⋯ node."])
    return graph


def _value_style(node: Value, name: str, is_root: bool) -> dict:
    if is_root:
        return {"style": "filled", "fillcolor": COLOURS["root"]}
    if not node.parents:  # a named leaf is an input or parameter; a nameless one a constant
        return {"style": "filled", "fillcolor": COLOURS["input" if name else "constant"]}
    if name:
        return {"style": "filled", "fillcolor": COLOURS["named"]}
    return {}


# --- Tensor graphs: who is who ------------------------------------------------------------------

@dataclass(eq=False)
class _Cluster:
    """The ops one module call produced: from its output back to its inputs."""

    module: Module
    output: Tensor
    position: int                                  # the output's place in topological order
    members: set = field(default_factory=set)      # tensors drawn inside, nested ones included
    parent: _Cluster | None = None                 # the cluster of the module that called it


def _state_names(module: Module | None) -> tuple:
    """(parameter names, buffer names, buffer names by array) under ``module``'s state_dict."""
    if module is None:
        return {}, {}, {}
    parameters = {id(p): name for name, p in module.named_parameters()}
    for _, sub in module.named_modules():
        if isinstance(sub, BatchNorm1d):  # the notes' names for BatchNorm's scale and shift
            for tensor, greek in ((sub.weight, "γ"), (sub.bias, "β")):
                if tensor is not None and id(tensor) in parameters:
                    parameters[id(tensor)] += f" ({greek})"
    buffers = {id(b): name for name, b in module.named_buffers()}
    # In evaluation mode BatchNorm normalises with *views* of its running buffers.
    arrays = {id(b.data): name for name, b in module.named_buffers()}
    return parameters, buffers, arrays


def _module_text(module: Module, path: str | None) -> str:
    if isinstance(module, Linear):
        text = f"Linear({module.in_features}→{module.out_features})"
        if module.bias is None:
            text += ", no bias"
    elif isinstance(module, BatchNorm1d):
        text = f"BatchNorm1d({module.num_features})"
        if not module.training:
            text += ", eval: running statistics"
        elif not module.fused:
            text += ", composed"
    else:
        text = f"{type(module).__name__}({module.extra_repr()})"
    return f"({path}): {text}" if path else text


def _find_clusters(order: list, position: dict) -> list:
    """One cluster per tensor that a Module returned (``_module_call``), nested as called."""
    clusters = []
    for node in order:
        call = getattr(node, "_module_call", None)
        if call is None or not node.parents:
            continue
        module, inputs = call
        stop = {x for x in inputs if isinstance(x, Tensor)}
        own = {id(p) for p in module.parameters()}
        cluster = _Cluster(module, node, position[node])
        stack = [node]
        while stack:
            tensor = stack.pop()
            if tensor in cluster.members or tensor in stop:
                continue
            if tensor.parents:
                cluster.members.add(tensor)
                stack.extend(tensor.parents)
            elif id(tensor) in own or not tensor.requires_grad:
                cluster.members.add(tensor)  # its parameters, and constants made inside it
        clusters.append(cluster)
    # A module calling another module: the inner call's cluster sits inside the outer one.
    # Its parent is the smallest cluster after it (by size) that holds all of it.
    by_size = sorted(clusters, key=lambda c: (len(c.members), c.position))
    for index, cluster in enumerate(by_size):
        for outer in by_size[index + 1:]:
            if cluster.output in outer.members and cluster.members <= outer.members:
                cluster.parent = outer
                break
    return clusters


def _is_op(node: Tensor, ops: tuple, arity: int) -> bool:
    """True if ``node`` was made by one of ``ops`` from ``arity`` inputs."""
    return node.op in ops and len(node.parents) == arity


def _uses(node: Tensor, parameter: Tensor) -> bool:
    """True if ``node`` is ``parameter`` itself or a reshape of it."""
    return node is parameter or (_is_op(node, ("Reshape",), 1) and node.parents[0] is parameter)


MEANS = ("Mul", "Div")  # a mean is Σ·(1/m) or Σ/m


def _batchnorm_steps(output: Tensor, bn: BatchNorm1d) -> dict:
    """Name the steps of one BatchNorm1d call by walking back from its output.

    The composed form (``fused=False``) is built by nn.functional.batch_norm as
    y = γ·((x − μ)/√(σ² + ε)) + β, with μ = Σx/m and σ² = Σ(x − μ)²/m in training and the
    running estimates in evaluation. Each check follows one arrow; where the graph has another
    shape the walk stops, and the nodes not reached keep their plain formulas.
    """
    steps = {}
    node = output
    if node.op == "BatchNormFunction":
        steps[node] = "all steps in one fused op"
        return steps
    if bn.bias is not None and _is_op(node, ("Add",), 2) and _uses(node.parents[1], bn.bias):
        steps[node] = "+β:  y = γ·ẑ + β"
        if node.parents[1] is not bn.bias:
            steps[node.parents[1]] = "β as a row, to add to every example"
        node = node.parents[0]
    if bn.weight is not None and _is_op(node, ("Mul",), 2) and _uses(node.parents[1], bn.weight):
        steps[node] = "·γ:  γ·ẑ"
        if node.parents[1] is not bn.weight:
            steps[node.parents[1]] = "γ as a row, to scale every example"
        node = node.parents[0]
    if not _is_op(node, ("Div",), 2):
        return steps
    centred, spread = node.parents
    batch = _is_op(centred, ("Sub",), 2) and bool(centred.parents[1].parents)
    mu, var = ("μ_B", "σ²_B") if batch else ("running mean", "running var")
    steps[node] = f"normalise:  ẑ = (x − {mu}) / √({var} + ε)"
    if _is_op(centred, ("Sub",), 2):
        steps[centred] = f"centre:  x − {mu}"
        mean = centred.parents[1]
        if _is_op(mean, MEANS, 2):
            steps[mean] = "mean:  μ_B = Σᵢ xᵢ / m"
            if _is_op(mean.parents[0], ("Sum",), 1):
                steps[mean.parents[0]] = "Σᵢ xᵢ"
    if not spread.parents:  # evaluation: √(running var + ε) was worked out outside the graph
        steps[spread] = f"√({var} + ε), a constant here"
    elif _is_op(spread, ("Sqrt",), 1):
        steps[spread] = f"√({var} + ε)"
        _variance_steps(spread.parents[0], var, steps)
    return steps


def _variance_steps(shifted: Tensor, var: str, steps: dict) -> None:
    """Name σ²_B + ε, σ²_B = Σ(x − μ_B)²/m, its sum, square and centring, as far as they match."""
    if not _is_op(shifted, ("Add",), 2):
        return
    steps[shifted] = f"{var} + ε"
    variance = shifted.parents[0]
    if not _is_op(variance, MEANS, 2):
        return
    steps[variance] = "variance:  σ²_B = Σᵢ (xᵢ − μ_B)² / m"
    total = variance.parents[0]
    if not _is_op(total, ("Sum",), 1):
        return
    steps[total] = "Σᵢ (xᵢ − μ_B)²"
    square = total.parents[0]
    if _is_op(square, ("Mul",), 2) and square.parents[0] is square.parents[1]:
        steps[square] = "(x − μ_B)²"
    elif _is_op(square, ("Pow",), 1):
        steps[square] = "(x − μ_B)²"
    else:
        return
    if _is_op(square.parents[0], ("Sub",), 2):
        steps[square.parents[0]] = "centre:  x − μ_B"


def _formula(node: Tensor, folded: set) -> str:
    """What the op computed, with folded constants written in (``× 0.25``)."""
    op = node.op
    if op in SYMBOLS and len(node.parents) == 2:
        a, b = node.parents
        if b in folded:
            return f"{SYMBOLS[op]} {_number(b.data.reshape(-1)[0])}"
        if a in folded:
            return f"{_number(a.data.reshape(-1)[0])} {SYMBOLS[op]} x"
    if op in ("Sum", "Max"):
        symbol = "Σ" if op == "Sum" else "max"
        source = node.parents[0].data
        if node.data.ndim == 0:
            return f"{symbol} over all elements"
        if node.data.ndim == source.ndim:
            axes = [i for i, (n, k) in enumerate(zip(source.shape, node.data.shape)) if n != k]
            if axes:
                return f"{symbol} over axis {', '.join(map(str, axes))}"
        return symbol
    if op == "Pow":
        exponent = getattr(node._ctx, "exponent", None)
        return "xᵏ" if exponent is None else f"x ** {_number(exponent)}"
    if op == "Reshape":
        return "reshape"
    return FORMULAS.get(op, "")


def _op_title(op: str) -> str:
    return op[:-len("Function")] if op.endswith("Function") and op != "Function" else op


# --- Tensor graphs: drawing ---------------------------------------------------------------------

@dataclass(eq=False)
class _Box:
    """One node of the drawing: a tensor, or a whole module collapsed into one node."""

    node_id: str
    position: int
    label: str
    cluster: _Cluster | None
    beside: str | None = None  # a leaf is drawn level with the op that uses it


def _html_label(title: str, colour: str, rows: list) -> str:
    """An HTML-like table: a coloured title row, then small text rows.

    ``rows`` holds (text, style) pairs; style is "grey" (shape and dtype), "step" (a named
    BatchNorm step, in italics) or None.
    """
    cells = [f'<TR><TD BGCOLOR="{colour}"><B>{html.escape(title)}</B></TD></TR>']
    for text, style in rows:
        text = html.escape(text)
        if style == "step":
            text = f"<I>{text}</I>"  # a BatchNorm step in the notes' words
        colour_attr = ' COLOR="#555555"' if style == "grey" else ""
        cells.append(f'<TR><TD><FONT POINT-SIZE="10"{colour_attr}>{text}</FONT></TD></TR>')
    return ('<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">'
            + "".join(cells) + "</TABLE>>")


def _draw_tensors(root: Tensor, rankdir: str, show_data: bool, show_grad: bool,
                  module: Module | None, max_nodes: int, labels: dict) -> graphviz.Digraph:
    drawing = _TensorDrawing(root, module, labels, show_data, show_grad)
    caption = []
    if len(drawing.visible) > max_nodes and drawing.collapse():
        caption.append(f"{len(drawing.visible)} tensors are more than max_nodes={max_nodes}: "
                       f"each module is drawn as one node (its output).")
    boxes = drawing.boxes()
    dropped = boxes[:max(0, len(boxes) - max_nodes)]
    if dropped:
        boxes = boxes[len(dropped):]
        caption.append(f"{len(dropped) + len(boxes)} nodes are more than max_nodes={max_nodes}: "
                       f"the {len(boxes)} nearest the root are drawn, the {len(dropped)} before "
                       "them are the ⋯ node.")
    drawn = {box.node_id for box in boxes}

    graph = _graph("tensor_graph", rankdir)
    graph.attr("node", shape="none", margin="0")
    if dropped:
        graph.node(EARLIER, label=graphviz.nohtml(f"⋯ {len(dropped)} earlier nodes"),
                   shape="note", style="filled", fillcolor=COLOURS["constant"], margin="0.1")
    _emit_boxes(graph, boxes, drawn, drawing.cluster_text)
    for source, target in drawing.edges(drawn):
        graph.edge(source, target)
    _caption(graph, caption)
    return graph


class _TensorDrawing:
    """Everything `draw_graph` works out about a Tensor graph before writing DOT.

    ``kinds`` says what each leaf is (parameter, buffer, input, constant) and its name;
    ``folded`` are the scalar constants written into their op's box; ``clusters`` are the
    module calls, ``innermost`` the cluster each tensor is drawn in, ``steps`` the named
    BatchNorm steps, and ``collapsed`` the tensors hidden inside a collapsed module.
    """

    def __init__(self, root: Tensor, module: Module | None, labels: dict, show_data: bool,
                 show_grad: bool):
        self.root, self.module, self.labels = root, module, labels
        self.show_data, self.show_grad = show_data, show_grad
        self.order = topological_order(root)
        self.position = {node: i for i, node in enumerate(self.order)}
        self.paths = {}
        if module is not None:
            self.paths = {id(m): path for path, m in module.named_modules()}
        self.clusters = _find_clusters(self.order, self.position)
        self.innermost = {}
        for cluster in sorted(self.clusters, key=lambda c: (len(c.members), c.position)):
            for node in cluster.members:
                self.innermost.setdefault(node, cluster)
        self.kinds = self._leaf_kinds()
        self.folded = {node for node, (kind, _) in self.kinds.items()
                       if kind == "constant" and node.data.size == 1 and node is not root
                       and node not in labels}
        self.visible = [node for node in self.order if node not in self.folded]
        self.steps = {}
        for cluster in self.clusters:
            if isinstance(cluster.module, BatchNorm1d):
                self.steps.update(_batchnorm_steps(cluster.output, cluster.module))
        self.collapsed = {}

    def _leaf_kinds(self) -> dict:
        """(kind, name) of every leaf: its label, else its state_dict name, else its role."""
        parameters, buffers, buffer_arrays = _state_names(self.module)
        kinds = {}
        for leaf in (node for node in self.order if not node.parents):
            base = leaf.data.base
            cluster = self.innermost.get(leaf)
            if leaf in self.labels:
                kind = "parameter" if isinstance(leaf, Parameter) else "input"
                kinds[leaf] = (kind, self.labels[leaf])
            elif id(leaf) in parameters:
                kinds[leaf] = ("parameter", parameters[id(leaf)])
            elif id(leaf) in buffers:
                kinds[leaf] = ("buffer", buffers[id(leaf)])
            elif base is not None and id(base) in buffer_arrays:
                kinds[leaf] = ("buffer", buffer_arrays[id(base)])  # BN's running stats, eval
            elif isinstance(leaf, Parameter):
                # Without module=, a parameter is named after its own module's attribute.
                names = _state_names(cluster.module)[0] if cluster is not None else {}
                kinds[leaf] = ("parameter", names.get(id(leaf), "parameter"))
            elif leaf.requires_grad:
                kinds[leaf] = ("input", "leaf")
            elif leaf.data.size == 1 or cluster is not None:
                kinds[leaf] = ("constant", "constant")  # a number, or made inside a module
            else:
                kinds[leaf] = ("input", "input")
        return kinds

    def collapse(self) -> bool:
        """Hide each top-level module call behind one node; False if there are none."""
        top_level = [c for c in self.clusters if c.parent is None]
        for cluster in top_level:
            for node in cluster.members:
                self.collapsed[node] = cluster
        return bool(top_level)

    def box_id(self, node: Tensor) -> str:
        cluster = self.collapsed.get(node)
        if cluster is not None:
            return f"m{cluster.position}"
        return f"t{self.position[node]}"

    def cluster_text(self, cluster: _Cluster) -> str:
        return _module_text(cluster.module, self.paths.get(id(cluster.module)))

    def boxes(self) -> list:
        """One box per visible tensor (or collapsed module), in topological order."""
        first_user = {}
        for node in self.visible:
            for parent in node.parents:
                first_user.setdefault(parent, node)
        boxes = []
        for node in self.visible:
            cluster = self.collapsed.get(node)
            if cluster is not None:
                if node is cluster.output:
                    boxes.append(self._module_box(node, cluster))
            elif node.parents:
                boxes.append(self._op_box(node))
            else:
                # A module's own leaves (its parameters) sit level with the op that uses them,
                # so that each module takes one step of the layout and the modules line up.
                user = first_user.get(node)
                beside = None
                if user is not None and self.innermost.get(node) is not None:
                    if self.innermost.get(user) is self.innermost.get(node):
                        beside = self.box_id(user)
                boxes.append(self._leaf_box(node, beside))
        return boxes

    def _rows(self, tensor: Tensor) -> list:
        rows = [(_shape_text(tensor.data), "grey")]
        if self.show_data:
            rows.append((f"data {_summary(tensor.data)}", None))
        if self.show_grad and tensor.requires_grad:
            grad = "not computed" if tensor.grad is None else _summary(tensor.grad)
            rows.append((f"grad {grad}", None))
        return rows

    def _colour(self, node: Tensor, kind: str) -> str:
        return COLOURS["root"] if node is self.root else COLOURS[kind]

    def _op_box(self, node: Tensor) -> _Box:
        title, formula = _op_title(node.op), _formula(node, self.folded)
        rows = []
        if node in self.labels:  # a name given by the caller; the op moves to the next row
            rows.append((f"{title} {formula}".strip(), None))
            title, formula = self.labels[node], ""
        if node in self.steps:
            rows.append((self.steps[node], "step"))
            # A step says more than a primitive's "a × b"; a folded constant (× 0.25) or a
            # fused op's formula still adds to it.
            fused = node.op.endswith("Function")
            if not fused and not any(parent in self.folded for parent in node.parents):
                formula = ""
        if formula:
            rows.append((formula, None))
        label = _html_label(title, self._colour(node, "op"), rows + self._rows(node))
        return _Box(self.box_id(node), self.position[node], label, self.innermost.get(node))

    def _leaf_box(self, node: Tensor, beside: str | None) -> _Box:
        kind, name = self.kinds[node]
        rows = [(self.steps[node], "step")] if node in self.steps else []
        label = _html_label(name, self._colour(node, kind), rows + self._rows(node))
        return _Box(self.box_id(node), self.position[node], label, self.innermost.get(node),
                    beside)

    def _module_box(self, node: Tensor, cluster: _Cluster) -> _Box:
        ops = sum(1 for member in cluster.members if member.parents)
        parameters = sum(1 for member in cluster.members if isinstance(member, Parameter))
        rows = [(f"module: {_count(ops, 'op')}, {_count(parameters, 'parameter')}", None)]
        label = _html_label(self.cluster_text(cluster), self._colour(node, "module"),
                            rows + self._rows(node))
        return _Box(self.box_id(node), self.position[node], label, None)

    def edges(self, drawn: set) -> list:
        """Arrows in data-flow order, parent → the node computed from it.

        An operand used twice gives two arrows (``x * x``); arrows into or out of a collapsed
        module, or from the ⋯ node, are drawn once.
        """
        edges, once = [], set()
        for node in self.visible:
            target = self.box_id(node)
            if target not in drawn:
                continue
            for parent in node.parents:
                if parent in self.folded:
                    continue
                source = self.box_id(parent)
                if source == target:
                    continue  # inside a collapsed module
                if source not in drawn:
                    source = EARLIER
                merged = source == EARLIER or parent in self.collapsed or node in self.collapsed
                if merged and (source, target) in once:
                    continue
                once.add((source, target))
                edges.append((source, target))
        return edges


def _emit_boxes(graph: graphviz.Digraph, boxes: list, drawn: set, cluster_text: Any) -> None:
    """Write the boxes into the graph, those of a module call inside its (nested) cluster."""
    chain = {}  # cluster → the list of boxes and sub-clusters drawn in it, by position

    def entries(cluster: _Cluster | None) -> list:
        return chain.setdefault(cluster, [])

    placed = set()

    def place(cluster: _Cluster | None, position: int) -> None:
        # Make sure each cluster appears in its parent's list, once, where it first starts.
        while cluster is not None and cluster not in placed:
            placed.add(cluster)
            entries(cluster.parent).append((position, cluster))
            cluster = cluster.parent

    for box in boxes:
        place(box.cluster, box.position)
        entries(box.cluster).append((box.position, box))

    def emit(container: graphviz.Digraph, cluster: _Cluster | None) -> None:
        levels = {}  # op id → the leaves drawn level with it
        for _, entry in sorted(entries(cluster), key=lambda item: item[0]):
            if isinstance(entry, _Box):
                container.node(entry.node_id, label=entry.label)
                if entry.beside in drawn:
                    levels.setdefault(entry.beside, []).append(entry.node_id)
                continue
            kind = "batchnorm" if isinstance(entry.module, BatchNorm1d) else "default"
            fill, border = CLUSTER_STYLE[kind]
            with container.subgraph(name=f"cluster_{entry.position}") as sub:
                sub.attr(label=graphviz.nohtml(cluster_text(entry)), labelloc="t",
                         labeljust="l", style="rounded,filled", fillcolor=fill, color=border,
                         fontsize="12")
                emit(sub, entry)
        for op_id, leaf_ids in levels.items():
            with container.subgraph() as level:
                level.attr(rank="same")
                for node_id in leaf_ids + [op_id]:
                    level.node(node_id)

    emit(graph, None)
