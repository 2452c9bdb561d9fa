"""Graph traversal shared by every engine: one topological sort, written once.

Both engines (`Value` in value.py, `Tensor` in tensor.py) and the graph renderer (viz/) see a
computation graph through the same tiny protocol: every node has

* ``.parents`` — the ordered tuple of nodes it was computed from (empty for a leaf),
* ``.op``      — the name of the operation that produced it ("" for a leaf),
* ``.data`` and ``.grad``.

Backpropagation needs the nodes in an order where each node comes after everything it depends
on; walking that order backwards applies the chain rule from the output to the leaves.

Read next: value.py (the scalar engine), then function.py and tensor.py.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Any, Iterator

__all__ = ["topological_order", "collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a graph is built or walked; restore it after.

    Why: the collector runs after every 700 new container objects and, on a growing schedule,
    walks *every* tracked object — so building a graph of a million `Value` nodes makes it walk
    those nodes again and again (a million-node build takes ~4.5× as long with it on). Neither
    engine needs it: a node holds numbers and its parents, never a reference back, so a graph
    has no cycles and reference counting frees it the moment the last reference goes.

    Scope: `Value.backward` and the scalar `MLP` call use it; wrap your own graph building in
    it (``with collector_paused(): loss = build(...)``). On exit — also through an exception —
    the collector is enabled again if (and only if) it was enabled before; nesting is safe.
    Nothing is frozen or exempted for later: cyclic garbage made inside the block (by other
    code) is collected at the collector's next run, so nothing leaks. The switch is
    process-wide, as ``gc.disable`` is: another thread's allocations are not collected during
    the block either.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def topological_order(root: Any) -> list:
    """Return every node reachable from ``root``, each listed after all of its parents.

    The walk is an iterative depth-first search with an explicit stack, so a chain of a
    hundred thousand operations does not hit Python's recursion limit (micrograd's recursive
    version fails near a thousand). Parents are visited in their stored order, so the result is
    the same on every run: the renderer relies on that to produce identical DOT text.

    Nodes are compared by identity (Tensors keep Python's identity ``==`` for this reason).
    """
    order: list = []
    visited: set = {root}
    # The stack holds the path being explored: (node, iterator over its parents), as the frames
    # of a recursive DFS would. The top node resumes its iterator; an unvisited parent with
    # parents of its own goes on top (its subtree is finished first), and a leaf parent is
    # emitted on the spot, as a recursive call would at once. When a node's parents are all
    # done it is emitted (post-order). Emitting leaves without pushing them saves most of the
    # pushes: in a training step about half the nodes are leaves (inputs, parameters).
    stack: list = [(root, iter(root.parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent not in visited:
                visited.add(parent)
                if parent.parents:
                    stack.append((parent, iter(parent.parents)))
                    break
                order.append(parent)
        else:  # every parent emitted: so can the node be
            stack.pop()
            order.append(node)
    return order
