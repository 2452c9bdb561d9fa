"""`graph.collector_paused`: the garbage collector is paused while scalar graphs are built and
walked, always restored afterwards, and graphs are still freed (by reference counting); a
finished block ages its graph past the young generation (no collection walks it), leaves a
program's own `gc.freeze` alone, and cyclic garbage aged with it is still collected."""
from __future__ import annotations

import gc
import weakref

import pytest

from tinygrad_bn import Value
from tinygrad_bn.graph import collector_paused
from tinygrad_bn.scalar import MLP


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_paused_inside_and_restored_after(collector_on):
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():            # nested
            assert not gc.isenabled()
        assert not gc.isenabled()           # the inner block does not switch it back on
    assert gc.isenabled()


def test_it_is_restored_after_an_exception_and_left_off_if_it_was_off(collector_on):
    with pytest.raises(ZeroDivisionError):
        with collector_paused():
            1 / 0
    assert gc.isenabled()
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()               # it was off before: it stays off
    gc.enable()


def test_backward_pauses_it_and_restores_it_also_when_backward_fails(collector_on):
    seen = []

    class Spy(Value):
        __slots__ = ()

        @property
        def parents(self):
            seen.append(gc.isenabled())
            return ()

    x = Value(2.0)
    (x * x + 1.0).backward()
    assert gc.isenabled()
    spy = Spy(1.0)
    spy.backward()
    assert seen == [False] and gc.isenabled()

    class Broken(Value):
        __slots__ = ()

        @property
        def parents(self):
            raise RuntimeError("broken graph")

    with pytest.raises(RuntimeError, match="broken graph"):
        Broken(1.0).backward()
    assert gc.isenabled()


def test_a_graph_built_and_walked_while_paused_is_freed_without_the_collector(collector_on):
    class Leaf(Value):                      # a Value that a weak reference can watch
        __slots__ = ("__weakref__",)

    model = MLP(2, [4, 1])
    with collector_paused():
        x = Leaf(1.0)
        out = model([x, -2.0])
        total = out
        for _ in range(1000):
            total = total + out * 0.5
        total.backward()
        assert x.grad != 0.0
        probe = weakref.ref(x)
        del total, out, x
        assert probe() is None              # the graph held the leaf; reference counting freed
                                            # graph and leaf, with the collector still off


def test_cyclic_garbage_made_while_paused_is_collected_afterwards(collector_on):
    class Node:
        pass

    with collector_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a             # a cycle: only the collector frees it
        probe = weakref.ref(a)
        del a, b
        assert probe() is not None          # not collected while paused …
    gc.collect()
    assert probe() is None                  # … and not leaked afterwards


def test_a_finished_block_ages_its_graph_instead_of_leaving_it_to_be_walked(collector_on):
    threshold = gc.get_threshold()[0]
    starts = []

    def watch(phase, info):
        if phase == "start":
            starts.append(info["generation"])

    gc.collect()
    gc.callbacks.append(watch)
    try:
        with collector_paused():            # more new nodes than the young threshold
            out = Value(0.5)
            for _ in range(threshold):
                out = out + out * 0.5
        young_after = gc.get_count()[0]
        scratch = [[] for _ in range(threshold // 2)]  # would start the due collection
    finally:
        gc.callbacks.remove(watch)
    assert young_after < threshold
    assert starts == []                     # no collection walked the new graph …
    assert gc.get_freeze_count() == 0       # … and nothing was left frozen: it was aged
    del scratch, out


def test_a_freeze_of_the_program_is_left_alone(collector_on):
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_paused():
            total = Value(0.0)
            for i in range(2000):
                total = total + Value(float(i)) * 0.5
        assert gc.get_freeze_count() == frozen
        assert gc.isenabled()
    finally:
        gc.unfreeze()


def test_aged_cyclic_garbage_is_collected_by_a_later_block_without_gc_collect(
        collector_on, monkeypatch):
    from tinygrad_bn import graph

    class Node:
        pass

    threshold = gc.get_threshold()[0]
    monkeypatch.setattr(graph, "AGED_BETWEEN_FULL_COLLECTIONS", 10**12)
    with collector_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a             # a cycle: only the collector frees it
        probe = weakref.ref(a)
        del a, b
        graph_one = [Value(float(i)) * 2.0 for i in range(threshold)]
    assert probe() is not None              # aged with the graph, not collected …
    monkeypatch.setattr(graph, "AGED_BETWEEN_FULL_COLLECTIONS", 7 * threshold)
    for _ in range(4):                      # … until aging would pass the budget
        with collector_paused():
            more = [Value(float(i)) * 2.0 for i in range(threshold)]
        del more
    assert probe() is None                  # a block ran the full collection: no leak
    del graph_one
