"""`graph.collector_paused`: the garbage collector is paused while scalar graphs are built and
walked, always restored afterwards, and graphs are still freed (by reference counting)."""
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
