"""`Optimizer`: what every optimizer shares — parameter groups, validation, zero_grad,
``step(closure)`` and the state dict.

Parameters can be given as one iterable, or as a list of dicts ("param groups"), each with its
own options, e.g. no weight decay on BatchNorm's γ and β:

    SGD([{"params": weights}, {"params": bn_params, "weight_decay": 0.0}], lr=0.1,
        weight_decay=1e-4)
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

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

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, in place.

        ``closure``, if given, is called first (it should zero the gradients, compute the
        loss, call backward and return the loss); step returns its result, as in PyTorch.
        """
        loss = closure() if closure is not None else None
        # The updates work on .data arrays, so no graph is built (no no_grad() needed).
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group: dict) -> None:
        """Update every parameter of ``group`` that has a gradient: `_update` on each.

        An optimizer may override this to read the group's options once rather than once per
        parameter (SGD does: its update is two numpy calls, so the bookkeeping around them
        shows).
        """
        for p in group["params"]:
            if p.grad is not None:
                self._update(p, p.grad, group)

    def _update(self, p: Tensor, grad: Any, group: dict) -> None:
        """One parameter's update rule; each optimizer writes its own."""
        raise NotImplementedError

    # --- saving and restoring (PyTorch's layout) -------------------------------------------

    def state_dict(self) -> dict:
        """``{"state": {index: {name: value}}, "param_groups": [{option: value, "params":
        [index, …]}]}`` — PyTorch's structure: parameters are numbered in group order, so the
        dict holds no tensors of the model, only this optimizer's own state (copied)."""
        index = {}
        groups = []
        for group in self.param_groups:
            numbers = []
            for p in group["params"]:
                index[id(p)] = len(index)
                numbers.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": numbers})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: np.copy(v) if isinstance(v, np.ndarray) else v
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and per-parameter state saved by `state_dict` from an optimizer
        over parameters of the same shapes, in the same groups."""
        groups = state_dict.get("param_groups")
        if not isinstance(groups, list) or "state" not in state_dict:
            raise ValueError("optimizer state_dict needs 'state' and 'param_groups' entries")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(groups)} parameter groups, this "
                             f"optimizer has {len(self.param_groups)}")
        params = []
        for k, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"parameter group {k}: loaded state dict has "
                                 f"{len(saved['params'])} parameters, this optimizer has "
                                 f"{len(group['params'])}")
            params += list(zip(saved["params"], group["params"]))
        new_state = {}
        saved_state = state_dict["state"]
        for number, p in params:
            entry = saved_state.get(number, saved_state.get(str(number)))
            if entry is None:
                continue
            new_state[p] = {}
            for name, value in entry.items():
                array = np.asarray(value)
                if array.ndim and array.shape != p.shape:
                    raise ValueError(f"state {name!r} of parameter {number} has shape "
                                     f"{array.shape}, the parameter has shape {p.shape}")
                # Buffers take the parameter's dtype (a float64 model after a float32 save);
                # a step count (0-d; torch saves it as a float) becomes a 0-d int64 array,
                # as the optimizers keep it, so that a compiled step (jit/) can trace it.
                new_state[p][name] = (array.astype(p.dtype) if array.ndim
                                      else np.asarray(int(array.item()), np.int64))
        for saved, group in zip(groups, self.param_groups):
            options = {k: v for k, v in saved.items() if k != "params"}
            options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
            group.update(options)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])
