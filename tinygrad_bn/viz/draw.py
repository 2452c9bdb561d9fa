"""Drawing computation graphs with Graphviz: a picture of everything backward walks through.

`draw_graph(root)` returns a `graphviz.Digraph` of every node ``root`` was computed from:

* a `Value` graph is drawn as micrograd draws it: one record per value (label | data | grad),
  a small node per operation, arrows in the direction the data flowed;
* a `Tensor` graph gets one box per tensor: its name (or the op that made it) with the op's
  formula, shape and dtype, and a summary of its data and gradient. Parameters carry their
  ``state_dict`` names (``0.weight``, ``1.weight (γ)``) and their own colour; the ops each
  module produced sit in a labelled cluster (``Linear(2→16)``, ``BatchNorm1d(16)``), so a
  composed BatchNorm1d shows its steps μ_B → x − μ_B → σ²_B → ẑ → γ·ẑ → y by the names
  nn.functional.batch_norm gives them (labels.py decides what everything is called).

The walk is `graph.topological_order`, the one backward uses, and node ids follow it (``v0``,
``v1``, … for values, ``t0``, ``t1``, … for tensors), so the DOT text is the same on every run.
`render(root, "graph.svg")` writes a picture: Graphviz's ``dot`` program lays it out (a
``.dot`` file needs no Graphviz at all).

Read next: explore.py (the same graph, step by step in a browser), docs/graphs.md.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import graphviz

from ..files import atomic_write
from ..graph import topological_order
from ..nn.batchnorm import BatchNorm1d
from ..nn.module import Module, Parameter
from ..tensor import Tensor
from ..value import Value
from .labels import (COLOURS, FUSED_STEPS, Cluster, TensorRoles, count, formula, number,
                     op_title, shape_text, summary)

__all__ = ["FORMATS", "RANKDIRS", "GraphvizNotFoundError", "INSTALL_HINT", "draw_graph",
           "output_format", "render", "check_options", "draw_values", "TensorDrawing",
           "draw_tensors"]

FORMATS = ("svg", "png", "pdf", "dot")
RANKDIRS = ("LR", "TB", "RL", "BT")
INSTALL_HINT = ("install Graphviz with `apt-get install graphviz` (Debian/Ubuntu), "
                "`brew install graphviz` (macOS) or `conda install -c conda-forge graphviz`")

FONT = "Helvetica,Arial,sans-serif"
EARLIER = "earlier"  # id of the node that stands for the nodes left out of a large graph
CLUSTER_STYLE = {"default": ("#f7f7f7", "#b3b3b3"), "batchnorm": ("#fffbe6", "#d6b656")}


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
        labels: names for particular nodes, e.g. ``{x: "x"}`` (a Value's own ``label`` or a
            Tensor's own ``name`` is used when it has none here).

    Returns:
        A `graphviz.Digraph`; its ``.source`` is the DOT text, and `render` writes it to a file.

    Example:
        >>> a, b, c = Value(2.0, "a"), Value(-3.0, "b"), Value(10.0, "c")
        >>> d = a * b + c
        >>> d.backward()
        >>> print(draw_graph(d).source)      # 5 records, 2 op nodes, 6 arrows
    """
    check_options(root, rankdir, max_nodes, module)
    labels = dict(labels) if labels else {}
    if isinstance(root, Value):
        return draw_values(root, rankdir, show_data, show_grad, max_nodes, labels)
    return draw_tensors(TensorDrawing(root, module, labels, show_data, show_grad), rankdir,
                        max_nodes)


def check_options(root: Any, rankdir: str, max_nodes: int, module: Module | None) -> None:
    """Raise the error a person needs for a bad `draw_graph` (or `explore`) argument."""
    if not isinstance(root, (Value, Tensor)):
        raise TypeError(f"draw_graph needs a Value or a Tensor, got {type(root).__name__}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"max_nodes must be a positive integer, got {max_nodes!r}")
    if module is not None and not isinstance(module, Module):
        raise TypeError(f"module must be a tinygrad_bn.nn.Module, got {type(module).__name__}")
    if module is not None and isinstance(root, Value):
        raise ValueError("module= names the parameters of a Tensor graph; a Value graph "
                         "has none (name Values with their label instead)")


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

def draw_values(root: Value, rankdir: str, show_data: bool, show_grad: bool, max_nodes: int,
                labels: dict, grads: Mapping[Value, float] | None = None) -> graphviz.Digraph:
    """The Value graph's DOT (`draw_graph` without the checks).

    ``grads`` replaces ``.grad`` where given (the explorer draws each node's final gradient,
    before backward has run, so that the boxes have room for it).
    """
    grads = grads or {}
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
            fields.append(f"data {number(node.data)}")
        if show_grad:
            fields.append(f"grad {number(grads.get(node, node.grad))}")
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


# --- Tensor graphs: drawing ---------------------------------------------------------------------

@dataclass(eq=False)
class _Box:
    """One node of the drawing: a tensor, or a whole module collapsed into one node."""

    node_id: str
    position: int
    label: str
    cluster: Cluster | None
    beside: str | None = None  # a leaf is drawn level with the op that uses it


def _html_label(title: str, colour: str, rows: list) -> str:
    """An HTML-like table: a coloured title row, then small text rows.

    ``rows`` holds (text, style) pairs; style is "grey" (shape and dtype), "step" (in italics:
    what a fused op does in the notes' words) or None.
    """
    cells = [f'<TR><TD BGCOLOR="{colour}"><B>{html.escape(title)}</B></TD></TR>']
    for text, style in rows:
        text = html.escape(text)
        if style == "step":
            text = f"<I>{text}</I>"
        colour_attr = ' COLOR="#555555"' if style == "grey" else ""
        cells.append(f'<TR><TD><FONT POINT-SIZE="10"{colour_attr}>{text}</FONT></TD></TR>')
    return ('<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">'
            + "".join(cells) + "</TABLE>>")


def draw_tensors(drawing: TensorDrawing, rankdir: str, max_nodes: int) -> graphviz.Digraph:
    """The Tensor graph's DOT (`draw_graph` without the checks), from a `TensorDrawing`.

    Above ``max_nodes`` it collapses the drawing's modules (``drawing.collapsed`` then says
    which tensors each module box stands for) and then cuts the earliest boxes.
    """
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
    drawing.drawn = {box.node_id for box in boxes}
    drawing.caption = caption

    graph = _graph("tensor_graph", rankdir)
    graph.attr("node", shape="none", margin="0")
    if dropped:
        graph.node(EARLIER, label=graphviz.nohtml(f"⋯ {len(dropped)} earlier nodes"),
                   shape="note", style="filled", fillcolor=COLOURS["constant"], margin="0.1")
    _emit_boxes(graph, boxes, drawing.drawn, drawing.roles.cluster_text)
    for source, target in drawing.edges(drawing.drawn):
        graph.edge(source, target)
    _caption(graph, caption)
    return graph


class TensorDrawing:
    """The boxes and arrows of a Tensor graph, from `labels.TensorRoles` (who is who).

    ``collapsed`` holds the tensors hidden inside a collapsed module, ``drawn`` the ids of the
    boxes drawn and ``caption`` what was left out, once `draw_tensors` has run. ``grads``
    replaces ``.grad`` where given (the explorer draws each node's final gradient).
    """

    def __init__(self, root: Tensor, module: Module | None, labels: dict, show_data: bool,
                 show_grad: bool, grads: Mapping[Tensor, Any] | None = None):
        self.root = root
        self.roles = TensorRoles(root, module, labels)
        self.show_data, self.show_grad = show_data, show_grad
        self.grads = grads
        self.position = self.roles.position
        self.visible = self.roles.visible
        self.collapsed = {}
        self.drawn: set = set()
        self.caption: list = []

    def collapse(self) -> bool:
        """Hide each top-level module call behind one node; False if there are none."""
        top_level = [c for c in self.roles.clusters if c.parent is None]
        for cluster in top_level:
            for node in cluster.members:
                self.collapsed[node] = cluster
        return bool(top_level)

    def box_id(self, node: Tensor) -> str:
        cluster = self.collapsed.get(node)
        if cluster is not None:
            return f"m{cluster.position}"
        return f"t{self.position[node]}"

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
                innermost = self.roles.innermost
                if user is not None and innermost.get(node) is not None:
                    if innermost.get(user) is innermost.get(node):
                        beside = self.box_id(user)
                boxes.append(self._leaf_box(node, beside))
        return boxes

    def _rows(self, tensor: Tensor) -> list:
        rows = [(shape_text(tensor.data), "grey")]
        if self.show_data:
            rows.append((f"data {summary(tensor.data)}", None))
        if self.show_grad and tensor.requires_grad:
            grad = tensor.grad if self.grads is None else self.grads.get(tensor)
            rows.append((f"grad {'not computed' if grad is None else summary(grad)}", None))
        return rows

    def _colour(self, node: Tensor, kind: str) -> str:
        return COLOURS["root"] if node is self.root else COLOURS[kind]

    def _op_box(self, node: Tensor) -> _Box:
        title, what = op_title(node.op), formula(node, self.roles.folded)
        rows = []
        name = self.roles.name(node)
        if name:  # a named step (μ_B, ẑ, logits): the name is the title, the op moves down
            rows.append((title if what == title.lower() else f"{title} {what}".strip(), None))
            title, what = name, ""
        if node.op in FUSED_STEPS:
            rows.append((FUSED_STEPS[node.op], "step"))
        if what:
            rows.append((what, None))
        label = _html_label(title, self._colour(node, "op"), rows + self._rows(node))
        return _Box(self.box_id(node), self.position[node], label,
                    self.roles.innermost.get(node))

    def _leaf_box(self, node: Tensor, beside: str | None) -> _Box:
        kind, name = self.roles.kinds[node]
        label = _html_label(name, self._colour(node, kind), self._rows(node))
        return _Box(self.box_id(node), self.position[node], label,
                    self.roles.innermost.get(node), beside)

    def _module_box(self, node: Tensor, cluster: Cluster) -> _Box:
        ops = sum(1 for member in cluster.members if member.parents)
        parameters = sum(1 for member in cluster.members if isinstance(member, Parameter))
        rows = [(f"module: {count(ops, 'op')}, {count(parameters, 'parameter')}", None)]
        label = _html_label(self.roles.cluster_text(cluster), self._colour(node, "module"),
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
                if parent in self.roles.folded:
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

    def entries(cluster: Cluster | None) -> list:
        return chain.setdefault(cluster, [])

    placed = set()

    def place(cluster: Cluster | None, position: int) -> None:
        # Make sure each cluster appears in its parent's list, once, where it first starts.
        while cluster is not None and cluster not in placed:
            placed.add(cluster)
            entries(cluster.parent).append((position, cluster))
            cluster = cluster.parent

    for box in boxes:
        place(box.cluster, box.position)
        entries(box.cluster).append((box.position, box))

    def emit(container: graphviz.Digraph, cluster: Cluster | None) -> None:
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
