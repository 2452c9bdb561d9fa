"""Containers: `Sequential` (modules applied one after another, registered as "0", "1", …),
`ModuleList` (a list whose modules are registered) and `ModuleDict` (the same, by name)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable, Iterator, Mapping

from .module import Module

__all__ = ["Sequential", "ModuleList", "ModuleDict"]


class Sequential(Module):
    """Chain modules: ``Sequential(a, b, c)(x)`` is ``c(b(a(x)))``.

    Children are named by position, so state_dict keys read ``"0.weight"``,
    ``"1.running_mean"``, … exactly as in PyTorch. As in PyTorch, a single ``OrderedDict``
    names them instead: ``Sequential(OrderedDict(scale=..., net=...))`` has keys
    ``"net.0.weight"``. Indexable (``model[0]``, ``model[-1]``, ``model[1:]``) and sized
    (``len(model)``).
    """

    def __init__(self, *modules: Module | OrderedDict):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self._add(str(name), module)
            return
        for module in modules:
            self.append(module)

    def _add(self, name: str, module: Module) -> None:
        if not name or "." in name or hasattr(type(self), name):
            # A dot would split the state_dict key; an attribute name would hide a method.
            raise KeyError(f"Sequential: {name!r} cannot name a module (it must be non-empty, "
                           "without '.', and not an attribute of Sequential)")
        if not isinstance(module, Module):
            raise TypeError(f"Sequential takes Modules, got {type(module).__name__}")
        setattr(self, name, module)

    def append(self, module: Module) -> Sequential:
        self._add(str(len(self._modules)), module)
        return self

    def forward(self, input: Any) -> Any:
        for module in self._modules.values():
            input = module(input)
        return input

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        return _child(self, index, lambda modules: Sequential(*modules))


class ModuleList(Module):
    """A list of modules whose parameters the parent sees (a plain list would hide them).

    Children are named "0", "1", … as in Sequential, but ModuleList has no forward: the
    owner decides how to call its entries.
    """

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        for module in modules or ():
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList takes Modules, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module | ModuleList:
        return _child(self, index, ModuleList)


class ModuleDict(Module):
    """A dict of modules, registered under their keys (state_dict keys read "key.weight")."""

    def __init__(self, modules: Mapping[str, Module] | None = None):
        super().__init__()
        for key, module in (modules or {}).items():
            self[key] = module

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict keys must be non-empty strings without '.', got {key!r}")
        if hasattr(type(self), key):  # the module is also an attribute: it would hide a method
            raise KeyError(f"ModuleDict key {key!r} clashes with a ModuleDict attribute")
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict takes Modules, got {type(module).__name__}")
        setattr(self, key, module)

    def __getitem__(self, key: str) -> Module:
        try:
            return self._modules[key]
        except KeyError:
            raise KeyError(f"ModuleDict has no module {key!r}; it has {list(self._modules)}") \
                from None

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()


def _child(container: Module, index: int | slice, make: Any) -> Module:
    """The child at ``index`` of a positional container; a slice builds a new container of the
    same kind with ``make(list_of_modules)``."""
    modules = list(container._modules.values())
    if isinstance(index, slice):
        return make(modules[index])
    try:
        return modules[index]
    except IndexError:
        raise IndexError(f"index {index} is out of range for a {type(container).__name__} of "
                         f"{len(modules)} modules") from None
