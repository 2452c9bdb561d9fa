"""`Optimizer`: what every optimizer shares — parameter groups, validation, zero_grad.

Parameters can be given as one iterable, or as a list of dicts ("param groups"), each with its
own options, e.g. no weight decay on BatchNorm's γ and β:

    SGD([{"params": weights}, {"params": bn_params, "weight_decay": 0.0}], lr=0.1,
        weight_decay=1e-4)
"""
from __future__ import annotations

from typing import Any, Iterable

from ..tensor import Tensor

__all__ = ["Optimizer"]


class Optimizer:
    """Base class: subclasses set their defaults and implement ``step()``."""

    def __init__(self, params: Iterable[Any], defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError("params should be an iterable of Tensors or dicts, got a single "
                            "Tensor (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = defaults
        self.param_groups: list[dict] = []
        self.state: dict = {}  # per-parameter state (e.g. momentum buffers), keyed by Parameter
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters with its own options (missing options take defaults)."""
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"optimizer can only optimize Tensors that require grad, got "
                                f"{type(p).__name__}")
            if id(p) in seen:
                raise ValueError("some parameters appear in more than one parameter group")
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} in a parameter group; "
                             f"known: {sorted(self.defaults)}")
        full = {**self.defaults, **group, "params": params}
        self._validate(full)
        self.param_groups.append(full)

    def _validate(self, group: dict) -> None:
        """Check a group's options, raising ValueError with PyTorch's wording.

        The options every optimizer here has are checked once, here; subclasses check their
        own and call this too.
        """
        if not group["lr"] >= 0.0:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None (PyTorch's default, set_to_none=True)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])
