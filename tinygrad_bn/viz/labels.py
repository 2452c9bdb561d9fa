"""Who is who in a computation graph: the names, colours and words both pictures use.

`draw_graph` (draw.py) and the explorer (explore.py) show the same graph the same way, so what a
node is called is worked out here, once:

* a `Value` is called by its ``label``; a `Tensor` by its ``name`` (given where it was built:
  ``nn.functional.batch_norm`` names μ_B, σ²_B, √(σ²_B+ε), ẑ, γ·ẑ and y) — nothing is guessed
  from the shape of the graph;
* a leaf tensor is a parameter (named by its ``state_dict`` key, BatchNorm's marked γ and β), a
  buffer, an input or a constant; `TensorRoles` works that out, and which module call (cluster)
  each tensor belongs to;
* numbers are written in at most 4 significant digits, arrays as their values when tiny, else
  as mean and standard deviation.

Read next: draw.py (the Graphviz pictures), then explore.py (the step-through page).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..graph import topological_order
from ..nn.batchnorm import BatchNorm1d
from ..nn.linear import Linear
from ..nn.module import Module, Parameter
from ..tensor import Tensor

__all__ = ["COLOURS", "FORMULAS", "SYMBOLS", "TINY", "Cluster", "TensorRoles", "number",
           "summary", "count", "shape_text", "formula", "op_title", "module_text"]

TINY = 4  # arrays with at most this many elements show their values, not mean/std

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

# What each Function computes, shown under its name. a, b: the inputs in order; x: the input.
FORMULAS = {
    "Add": "a + b", "Sub": "a − b", "Mul": "a × b", "Div": "a ÷ b", "Neg": "−x",
    "Exp": "eˣ", "Log": "ln x", "Sqrt": "√x", "Tanh": "tanh x", "Sigmoid": "σ(x)",
    "ReLU": "max(0, x)", "MatMul": "a @ b", "LogSoftmax": "log softmax", "Permute": "permute",
    "GetItem": "x[index]", "LinearFunction": "y = x Wᵀ + b",
    "BatchNormFunction": "y = γ·(x − μ_B)/√(σ²_B + ε) + β",
    "BCEWithLogitsFunction": "BCE(σ(logit), target)", "BCEFunction": "BCE(p, target)",
}
# Ops that do several of the notes' steps at once say so, in italics, above their formula.
FUSED_STEPS = {"BatchNormFunction": "all steps in one fused op"}
SYMBOLS = {"Add": "+", "Sub": "−", "Mul": "×", "Div": "÷"}


# --- numbers and arrays as text -----------------------------------------------------------------

def number(x: Any) -> str:
    """A number in at most 4 significant digits (0 for −0, so runs print the same)."""
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.4g}"


def summary(array: np.ndarray) -> str:
    """The values of a tiny array, else its mean and standard deviation."""
    array = np.asarray(array)
    if array.size == 0:
        return "empty"
    if array.size <= TINY:
        values = [number(v) for v in array.reshape(-1)]
        return values[0] if array.ndim == 0 else "[" + ", ".join(values) + "]"
    wide = array.astype(np.float64)
    return f"mean {number(wide.mean())}, std {number(wide.std())}"


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def shape_text(array: np.ndarray) -> str:
    shape = "scalar" if array.ndim == 0 else str(tuple(array.shape))
    return f"{shape} {array.dtype}"


# --- ops ----------------------------------------------------------------------------------------

def formula(node: Tensor, folded: set) -> str:
    """What the op computed, with folded constants written in (``× 0.25``)."""
    op = node.op
    if op in SYMBOLS and len(node.parents) == 2:
        a, b = node.parents
        if b in folded:
            return f"{SYMBOLS[op]} {number(b.data.reshape(-1)[0])}"
        if a in folded:
            return f"{number(a.data.reshape(-1)[0])} {SYMBOLS[op]} x"
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
        return "xᵏ" if exponent is None else f"x ** {number(exponent)}"
    if op == "Reshape":
        return "reshape"
    return FORMULAS.get(op, "")


def op_title(op: str) -> str:
    """``LinearFunction`` → ``Linear``: the name a learner knows the op by."""
    return op[:-len("Function")] if op.endswith("Function") and op != "Function" else op


# --- modules ------------------------------------------------------------------------------------

@dataclass(eq=False)
class Cluster:
    """The ops one module call produced: from its output back to its inputs."""

    module: Module
    output: Tensor
    position: int                                  # the output's place in topological order
    members: set = field(default_factory=set)      # tensors drawn inside, nested ones included
    parent: Cluster | None = None                  # the cluster of the module that called it


def module_text(module: Module, path: str | None) -> str:
    """``(1): BatchNorm1d(16), composed``: a module call's cluster label."""
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
        cluster = Cluster(module, node, position[node])
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


# --- tensors ------------------------------------------------------------------------------------

class TensorRoles:
    """What each tensor of a graph is, and what it is called.

    ``order`` is the topological order (node ids follow it); ``kinds`` says what each leaf is
    (parameter, buffer, input, constant) and its name; ``folded`` are the scalar constants
    written into their op's box instead of getting one; ``clusters`` are the module calls and
    ``innermost`` the cluster each tensor sits in.

    Args:
        root: the tensor the graph is drawn from.
        module: the model, to name parameters and buffers by their ``state_dict`` keys.
        labels: names given by the caller, which win over the tensors' own ``name``.
    """

    def __init__(self, root: Tensor, module: Module | None = None,
                 labels: Mapping[Any, str] | None = None):
        self.root, self.module = root, module
        self.labels = dict(labels) if labels else {}
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
                       and not self.name(node)}
        self.visible = [node for node in self.order if node not in self.folded]

    def name(self, node: Tensor) -> str:
        """The caller's label for ``node``, else its own name ("" for none)."""
        return self.labels.get(node) or node.name

    def title(self, node: Tensor) -> str:
        """What a box is called: a leaf's name or role, an op's name, else the op itself."""
        if not node.parents:
            return self.kinds[node][1]
        return self.name(node) or op_title(node.op)

    def kind(self, node: Tensor) -> str:
        """"root", "op", or a leaf's kind (parameter, buffer, input, constant)."""
        if node is self.root:
            return "root"
        return self.kinds[node][0] if not node.parents else "op"

    def cluster_text(self, cluster: Cluster) -> str:
        return module_text(cluster.module, self.paths.get(id(cluster.module)))

    def _leaf_kinds(self) -> dict:
        """(kind, name) of every leaf: a label, else its state_dict name, else its name or role."""
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
                kinds[leaf] = ("parameter", names.get(id(leaf), leaf.name or "parameter"))
            elif leaf.requires_grad:
                kinds[leaf] = ("input", leaf.name or "leaf")
            elif leaf.data.size == 1 or cluster is not None:
                # A number, or made inside a module (√(running var + ε) in evaluation mode).
                kinds[leaf] = ("constant", leaf.name or "constant")
            else:
                kinds[leaf] = ("input", leaf.name or "input")
        return kinds
