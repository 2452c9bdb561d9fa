"""`RemovableHandle`: what every ``register_*_hook`` returns, so a hook can be taken out again.

A hook is a function the library calls at a fixed point of a computation — a module's forward,
a tensor's backward — to show you (or let you replace) the values passing through. Hooks live
in small dictionaries owned by the object they watch (a `Module`, a `Tensor`); the handle knows
its dictionary and its own key, so ``handle.remove()`` deletes exactly that entry. The handle
itself is the key: no counter shared between objects is needed, and dictionaries keep the
insertion order, so hooks run in the order they were registered, as in PyTorch.

Read next: tensor.py (``Tensor.register_hook``) and nn/module.py (the module hooks); nn/hooks.py
holds the bookkeeping of the full backward hook; monitor.py is a user of all of them.
"""
from __future__ import annotations

from typing import Any

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """A registered hook's receipt: ``remove()`` unregisters it (calling it twice is harmless).

    Also a context manager, so ``with model.register_forward_hook(f): ...`` removes the hook
    on leaving the block.
    """

    __slots__ = ("_registry",)

    def __init__(self, registry: dict, hook: Any) -> None:
        self._registry = registry
        registry[self] = hook

    def remove(self) -> None:
        self._registry.pop(self, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.remove()
