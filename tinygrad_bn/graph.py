"""Graph traversal shared by every engine: one topological sort, written once.

Both engines (`Value` in value.py, `Tensor` in tensor.py) and the graph renderer (viz/) see a
computation graph through the same tiny protocol: every node has

* ``.parents`` — the ordered tuple of nodes it was computed from (empty for a leaf),
* ``.op``      — the name of the operation that produced it ("" for a leaf),
* ``.data`` and ``.grad``.

Backpropagation needs the nodes in an order where each node comes after everything it depends
on; walking that order backwards applies the chain rule from the output to the leaves. Building
and walking a large graph is also where Python's garbage collector would spend its time for
nothing: `collector_paused` keeps it off.

Read next: value.py (the scalar engine), then function.py and tensor.py.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Any, Iterator

__all__ = ["topological_order", "collector_paused", "AGED_BETWEEN_FULL_COLLECTIONS"]


# How many objects collector_paused has aged (moved to the oldest generation unscanned) since
# its last full collection; see _age_young_objects. Process-wide, as the collector is.
_aged_unscanned = 0

# After this many aged objects, the next block exit runs a full collection instead: the bound
# on how long cyclic garbage that was aged can wait (about 30 steps of micrograd's moons demo).
AGED_BETWEEN_FULL_COLLECTIONS = 2_000_000


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector off a graph while it is built or walked.

    Why: the collector runs after every 700 (by default) new container objects; each run walks
    every object of the *young* generation — the nodes made since the last run — and keeps the
    survivors for older generations, which it walks again on a growing schedule (a full
    collection walks every tracked object). A graph is all survivors: each node would be walked
    two or three times while it lives, for nothing. Neither engine needs the collector: a node
    holds numbers and its parents, never a reference back, so a graph has no cycles and
    reference counting frees it the moment the last reference goes.

    What it does: the collector is paused inside the block. When the outermost block ends with
    the young generation over its threshold (a run is due: it would walk the new nodes), every
    tracked object is moved to the oldest generation *without* a walk — ``gc.freeze()`` then
    ``gc.unfreeze()``, two list splices, nothing left frozen — and the collector is enabled
    again. Those nodes then cost the collector nothing until a full collection, and they are
    normally freed long before one.

    Nothing leaks: objects aged this way are still the collector's; cyclic garbage among them
    (made by other code) is found by the next full collection, and at the latest after
    ``AGED_BETWEEN_FULL_COLLECTIONS`` aged objects, when a block exit runs one itself. A
    program that froze objects itself (``gc.get_freeze_count() > 0``, e.g. before forking) is
    left alone: the block only pauses the collector, as ``gc.unfreeze`` would undo that freeze.

    Scope: `Value.backward` and the scalar `MLP` call use it; wrap your own graph building in
    it (``with collector_paused(): loss = build(...)``). On exit — also through an exception —
    the collector is enabled again if (and only if) it was enabled before; nesting is safe
    (inner blocks do nothing on exit). The switch is process-wide, as ``gc.disable`` is:
    another thread's allocations are not collected during the block either.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _age_young_objects()
            gc.enable()


def _age_young_objects() -> None:
    """Move the young generation to the oldest one unscanned, when a collection is due."""
    global _aged_unscanned
    young, threshold = gc.get_count()[0], gc.get_threshold()[0]
    if threshold == 0 or young <= threshold or gc.get_freeze_count() > 0:
        return  # no run is due (threshold 0: never), or someone else's freeze must stay
    if _aged_unscanned + young > AGED_BETWEEN_FULL_COLLECTIONS:
        gc.collect()  # a full collection: cyclic garbage among the aged objects goes now
        _aged_unscanned = 0
        return
    gc.freeze()    # every tracked object → the permanent generation (a list splice)
    gc.unfreeze()  # … and from there to the oldest generation (another splice)
    _aged_unscanned += young


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
    # The walk a recursive DFS would make, with its frames kept by hand. ``node`` and
    # ``parents`` (an iterator over its parents not yet looked at) are the running frame; the
    # stack holds the suspended ones, (node, parents) each. An unvisited parent that has
    # parents of its own suspends the frame and is explored first (its subtree is finished
    # before the node); a leaf parent is emitted on the spot, as a recursive call would at once.
    # When a node's parents are all done it is emitted (post-order) and its caller resumes.
    # Why this shape: it was the cheapest per node of the variants we timed — ``.parents`` is
    # read once per node, leaves (about half the nodes of a Tensor training step's graph) are
    # never pushed, and the running frame lives in two local variables rather than on the stack.
    stack: list = []
    node, parents = root, iter(root.parents)
    while True:
        for parent in parents:
            if parent not in visited:
                visited.add(parent)
                grandparents = parent.parents
                if grandparents:
                    stack.append((node, parents))
                    node, parents = parent, iter(grandparents)
                    break  # restart the for loop on the new frame
                order.append(parent)
        else:  # every parent emitted: so can the node be
            order.append(node)
            if not stack:
                return order
            node, parents = stack.pop()
