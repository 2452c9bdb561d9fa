"""`Sequential`: modules applied one after another, registered as "0", "1", ..."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

from .module import Module

__all__ = ["Sequential"]


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
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        try:
            return modules[index]
        except IndexError:
            raise IndexError(f"index {index} is out of range for a Sequential of "
                             f"{len(modules)} modules") from None
