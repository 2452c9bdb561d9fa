"""Graph traversal shared by every engine: one topological sort, written once.

Both engines (`Value` in value.py, `Tensor` in tensor.py) and the graph renderer (viz.py) see a
computation graph through the same tiny protocol: every node has

* ``.parents`` — the ordered tuple of nodes it was computed from (empty for a leaf),
* ``.op``      — the name of the operation that produced it ("" for a leaf),
* ``.data`` and ``.grad``.

Backpropagation needs the nodes in an order where each node comes after everything it depends
on; walking that order backwards applies the chain rule from the output to the leaves.

Read next: value.py (the scalar engine), then function.py and tensor.py.
"""
from __future__ import annotations

from typing import Any

__all__ = ["topological_order"]


def topological_order(root: Any) -> list:
    """Return every node reachable from ``root``, each listed after all of its parents.

    The walk is an iterative depth-first search with an explicit stack, so a chain of a
    hundred thousand operations does not hit Python's recursion limit (micrograd's recursive
    version fails near a thousand). Parents are visited in their stored order, so the result is
    the same on every run: the renderer relies on that to produce identical DOT text.

    Nodes are compared by identity (Tensors keep Python's identity ``==`` for this reason).
    """
    order: list = []
    visited: set = set()
    # Each stack entry is (node, parents_done). A node is pushed once to expand its parents and
    # once more, beneath them, to be emitted after they are all emitted (post-order).
    stack: list = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        # Reversed, so that the first parent is popped (and therefore emitted) first.
        for parent in reversed(node.parents):
            if parent not in visited:
                stack.append((parent, False))
    return order
