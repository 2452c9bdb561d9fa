"""The step-through explorer: watch the forward pass, then backprop, one node at a time.

`explore(root)` records what a backward pass from ``root`` does — for every node, in the order
backward visits them, the gradient it holds and the contribution it sends to each parent,
∂L/∂parent += ∂node/∂parent · ∂L/∂node, with the numbers — without touching any ``.grad``
(it runs the same chain rule beside the real one: `Value.local_derivatives`,
`Tensor.local_backward`). `Explorer.save(path)` writes one HTML page that replays it:

* the graph is laid out by Graphviz's ``dot`` when the page is written, and embedded as SVG
  (the same picture `draw_graph` draws, so the same names, colours and clusters);
* the page's behaviour is explore.js and its look explore.css, inlined into explore.html —
  files beside this one; Python only fills in the recorded data, as JSON;
* nothing is fetched from the network: the page forbids it (Content-Security-Policy).

In Jupyter, ``explore(loss)`` as the last line of a cell shows the page inline
(`Explorer._repr_html_`, an ``<iframe srcdoc>``).

Read next: explore.js (the page), docs/graphs.md ("Stepping through backprop").
"""
from __future__ import annotations

import html
import inspect
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import graphviz
import numpy as np

from ..files import atomic_write, check_destination
from ..function import Function
from ..graph import topological_order
from ..nn.module import Module
from ..tensor import Tensor
from ..value import Value
from .draw import (INSTALL_HINT, GraphvizNotFoundError, TensorDrawing, check_options,
                   draw_tensors, draw_values)
from .labels import TensorRoles, formula, op_title, shape_text, summary

__all__ = ["explore", "Explorer"]

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
DIGITS = 4  # significant digits of the numbers in the page's arrays (as in the drawings)
# Arrays with more elements than this are shown by their summary only: a page carries every
# array once per backward step that changes it, and a learner reads no 10 000 numbers anyway.
ARRAY_LIMIT = 4096
# The Value method that defines each scalar op, for its docstring (forward and derivative).
VALUE_METHODS = {"+": "__add__", "*": "__mul__", "-": "__sub__", "/": "__truediv__",
                 "neg": "__neg__", "exp": "exp", "log": "log", "sqrt": "sqrt", "tanh": "tanh",
                 "sigmoid": "sigmoid", "relu": "relu"}


def explore(root: Value | Tensor, *, max_nodes: int = 500, module: Module | None = None,
            labels: Mapping[Any, str] | None = None, rankdir: str = "LR") -> Explorer:
    """Record the forward and backward pass behind ``root`` for a step-through page.

    Works before or after ``root.backward()``: the explorer runs its own record of the
    backward pass and leaves every ``.grad`` as it was.

    Args:
        root: the `Value` or one-element `Tensor` (usually the loss) to explore.
        max_nodes: above this many nodes, modules are collapsed (then the earliest nodes cut),
            as `draw_graph` does; the page says so.
        module: the model, to name parameters by their ``state_dict`` keys (γ and β marked).
        labels: names for particular nodes, e.g. ``{x: "x"}``.
        rankdir: layout direction, "LR" (the default), "TB", "RL" or "BT".

    Returns:
        An `Explorer`: ``.save("page.html")`` writes the page; Jupyter shows it inline.

    Example:
        >>> a, b, c = Value(2.0, "a"), Value(-3.0, "b"), Value(10.0, "c")
        >>> explore(a * b + c).save("abc.html")     # open it, press →
    """
    check_options(root, rankdir, max_nodes, module)
    if isinstance(root, Tensor) and root.data.size != 1:
        raise ValueError(f"explore needs a one-element root (a loss), got a tensor of shape "
                         f"{root.shape}: reduce it first, e.g. .sum()")
    return Explorer(root, max_nodes=max_nodes, module=module, labels=labels, rankdir=rankdir)


class Explorer:
    """A recorded forward and backward pass, ready to be written as one HTML page.

    ``data`` is what the page gets (JSON): the nodes, the forward order and the backward steps.
    ``graph`` is the `graphviz.Digraph` laid out into the page.
    """

    def __init__(self, root: Value | Tensor, *, max_nodes: int = 500,
                 module: Module | None = None, labels: Mapping[Any, str] | None = None,
                 rankdir: str = "LR"):
        labels = dict(labels) if labels else {}
        if isinstance(root, Value):
            self.data, self.graph = _record_values(root, labels, max_nodes, rankdir)
        else:
            self.data, self.graph = _record_tensors(root, module, labels, max_nodes, rankdir)

    def html(self) -> str:
        """The whole page: explore.html with its style, script, data and picture filled in.

        Raises:
            GraphvizNotFoundError: ``dot`` is not installed (it lays out the picture).
        """
        try:
            svg = self.graph.pipe(format="svg").decode("utf-8")
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFoundError(
                f"the explorer's page needs Graphviz's `dot` program to lay out the graph, "
                f"which is not installed or not on PATH: {INSTALL_HINT}") from None
        svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype, invalid inside HTML
        # Inside <script>, "</" could end the element early: JSON allows "<\/" for it.
        data = json.dumps(_json_safe(self.data), ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False)
        data = data.replace("</", "<\\/").replace("<!--", "<\\!--")
        parts = {"TITLE": html.escape(self.data["title"]), "STYLE": _package_file("explore.css"),
                 "SCRIPT": _package_file("explore.js"), "DATA": data, "SVG": svg}
        # One pass over the template, so that text filled in is never read as a placeholder.
        return PLACEHOLDER.sub(lambda match: parts[match.group(1)],
                               _package_file("explore.html"))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page to ``path`` (one self-contained file; open it in any browser).

        The page is built completely before anything is written, so a failure (no ``dot``,
        a missing folder) leaves no half-written file.

        Raises:
            GraphvizNotFoundError: ``dot`` is not installed.
            OutputError: ``path`` cannot be written (no such folder, not a regular file, …).
        """
        path = Path(path)
        check_destination(path)  # before laying the graph out, so a bad path fails at once
        page = self.html().encode("utf-8")
        atomic_write(path, lambda file: file.write(page))
        return path

    def _repr_html_(self) -> str:
        """The page inline in Jupyter, in an iframe so that its script and style stay its own."""
        return (f'<iframe srcdoc="{html.escape(self.html(), quote=True)}" '
                'style="width: 100%; height: 640px; border: 1px solid #ccc"></iframe>')

    def __repr__(self) -> str:
        return (f"Explorer({self.data['title']!r}: {len(self.data['forward'])} forward and "
                f"{len(self.data['backward'])} backward steps)")


def _package_file(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


# --- numbers for the page -----------------------------------------------------------------------

def _rounded(array: np.ndarray) -> Any:
    """An array as nested lists of floats in DIGITS significant digits (for the JSON), or
    None when it has more than ARRAY_LIMIT elements."""
    wide = np.asarray(array, dtype=np.float64)
    if wide.size > ARRAY_LIMIT:
        return None
    text = np.vectorize(lambda x: float(f"{x:.{DIGITS}g}"), otypes=[float])
    return text(wide).tolist() if wide.size else wide.tolist()


def _json_safe(value: Any) -> Any:
    """``value`` with inf and nan written as text ("inf", "-inf", "nan"): JSON has no such
    numbers, and a page's JSON.parse rejects Python's NaN and Infinity."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _docstring(function: Any) -> str:
    """The first paragraph of a docstring: an op's forward and backward formulas."""
    doc = inspect.getdoc(function) or ""
    return doc.split("\n\n")[0].strip()


def _function_classes() -> dict:
    """Every Function subclass by name (the library's ops and any a user wrote)."""
    found, stack = {}, [Function]
    while stack:
        for sub in stack.pop().__subclasses__():
            found.setdefault(sub.__name__, sub)
            stack.append(sub)
    return found


# --- Value graphs -------------------------------------------------------------------------------

def _value_name(node: Value, index: int, names: dict, labels: dict) -> str:
    """A node's name for the captions: its label, else a short expression, else its number."""
    name = labels.get(node, node.label)
    if name:
        return name
    if not node.parents:
        return f"{node.data:g}"  # a nameless leaf is a number written into the expression
    parents = [names[p] for p in node.parents]
    if any(name.startswith("node ") for name in parents):
        return f"node {index} ({node.op})"  # an expression of expressions says nothing
    if len(parents) == 2:
        text = f"({parents[0]} {node.op} {parents[1]})"
    else:
        text = f"{node.op}({parents[0]})" if not node.op.startswith("**") \
            else f"({parents[0]}){node.op[1:]}"
    return text if len(text) <= 28 else f"node {index} ({node.op})"


def _value_doc(op: str) -> str:
    method = "__pow__" if op.startswith("**") else VALUE_METHODS.get(op)
    return _docstring(getattr(Value, method)) if method else ""


def _record_values(root: Value, labels: dict, max_nodes: int, rankdir: str) -> tuple:
    order = topological_order(root)
    index = {node: i for i, node in enumerate(order)}
    names: dict = {}
    nodes = []
    for i, node in enumerate(order):
        names[node] = _value_name(node, i, names, labels)
        nodes.append({"id": i, "name": names[node], "box": f"v{i}",
                      "opBox": f"v{i}_op" if node.parents else None, "op": node.op,
                      "parents": [index[p] for p in node.parents], "data": node.data,
                      "doc": _value_doc(node.op) if node.parents else ""})

    # The backward pass, recorded: the chain rule in the order Value.backward applies it.
    grads = {root: 1.0}
    steps = [{"node": index[root], "grad": 1.0, "sends": []}]
    for node in reversed(order):
        if not node.parents:
            continue
        g = grads.get(node, 0.0)
        sends = []
        for parent, local in zip(node.parents, node.local_derivatives):
            contribution = local * g
            grads[parent] = grads.get(parent, 0.0) + contribution
            sends.append({"to": index[parent], "local": local, "value": contribution,
                          "total": grads[parent]})
        if node is root:
            steps[0]["sends"] = sends  # the root's step: seeded with 1, then sends
        else:
            steps.append({"node": index[node], "grad": g, "sends": sends})

    graph = draw_values(root, rankdir, True, True, max_nodes, labels, grads=grads)
    note = []
    if len(order) > max_nodes:
        note.append(f"{len(order)} values are more than max_nodes={max_nodes}: the "
                    f"{max_nodes} nearest the root are drawn; the steps still visit every node.")
        for record in nodes[:len(order) - max_nodes]:
            record["box"] = record["opBox"] = None
    data = {"engine": "value", "title": f"{names[root]} = {root.data:.4g}", "note": note,
            "nodes": nodes, "forward": list(range(len(order))), "backward": steps,
            "clusters": []}
    return data, graph


# --- Tensor graphs ------------------------------------------------------------------------------

def _record_tensors(root: Tensor, module: Module | None, labels: dict, max_nodes: int,
                    rankdir: str) -> tuple:
    roles = TensorRoles(root, module, labels)
    order = roles.order
    index = {node: i for i, node in enumerate(order)}
    functions = _function_classes()

    # The backward pass, recorded: the chain rule in the order Tensor.backward applies it.
    steps = []
    grads = {}
    if root.requires_grad:
        grads[root] = np.ones_like(root.data)
        steps.append({"node": index[root], "grad": _rounded(grads[root]),
                      "gradText": summary(grads[root]), "sends": []})
        for node in reversed(order):
            g = grads.get(node)
            if g is None or not node.parents:
                continue
            sends = []
            for parent, contribution in zip(node.parents, node.local_backward(g)):
                if contribution is None:
                    continue
                grads[parent] = grads[parent] + contribution if parent in grads else contribution
                # The contribution as a summary; the running total also in full, for the
                # page's "gradient so far".
                sends.append({"to": index[parent], "text": summary(contribution),
                              "total": _rounded(grads[parent]),
                              "totalText": summary(grads[parent])})
            if node is not root:
                steps.append({"node": index[node], "grad": _rounded(g), "gradText": summary(g),
                              "sends": sends})
            else:
                steps[0]["sends"] = sends  # the root's step: seeded with 1, then sends

    drawing = TensorDrawing(root, module, labels, True, True, grads=grads)
    graph = draw_tensors(drawing, rankdir, max_nodes)
    nodes = []
    for i, node in enumerate(order):
        box = drawing.box_id(node)
        cluster = drawing.collapsed.get(node)
        drawn = box in drawing.drawn and node not in roles.folded
        function = functions.get(node.op)
        nodes.append({
            "id": i, "name": roles.title(node), "box": box if drawn else None,
            # A collapsed module's box shows its output's numbers.
            "owner": drawn and (cluster is None or cluster.output is node),
            "op": op_title(node.op) if node.parents else "",
            "formula": formula(node, roles.folded) if node.parents else "",
            "kind": roles.kind(node), "parents": [index[p] for p in node.parents],
            "shape": shape_text(node.data), "data": _rounded(node.data),
            "dataText": summary(node.data), "requiresGrad": node.requires_grad,
            "doc": _docstring(function) if function is not None else "",
        })
    clusters = []
    if not drawing.collapsed:
        for cluster in roles.clusters:
            boxes = sorted({drawing.box_id(m) for m in cluster.members
                            if drawing.box_id(m) in drawing.drawn and m not in roles.folded})
            clusters.append({"svg": f"cluster_{cluster.position}",
                             "label": roles.cluster_text(cluster),
                             "output": drawing.box_id(cluster.output), "boxes": boxes})
    note = list(drawing.caption)
    if drawing.collapsed:
        note.append("The steps still visit every tensor: a step inside a module lights up the "
                    "module's box.")
    title = f"{roles.title(root)} = {summary(root.data)}"
    data = {"engine": "tensor", "title": title, "note": note, "nodes": nodes,
            "forward": [i for i, node in enumerate(order) if node not in roles.folded],
            "backward": steps, "clusters": clusters}
    return data, graph
