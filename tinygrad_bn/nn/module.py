"""`Module` and `Parameter`: how layers hold their state, with PyTorch's contract.

A Module keeps three ordered registries, filled simply by assigning attributes:

* parameters — `Parameter`s, the tensors an optimizer trains (a Linear's weight, BN's γ and β);
* buffers    — state that is saved but not trained (BN's running mean and variance);
* children   — sub-modules, whose entries appear under dotted names (``"0.weight"``).

Training mode is a per-module flag: ``train()`` and ``eval()`` set it on a module and all its
children, and return the module so calls can be chained.

Hooks (PyTorch's three) let code watch or change a call without editing the layer:
``register_forward_pre_hook``, ``register_forward_hook`` and ``register_full_backward_hook``.

Read next: linear.py and batchnorm.py, two modules built on this.
"""
from __future__ import annotations

from typing import Any, Iterator, NamedTuple

import numpy as np

from ..function import is_grad_enabled
from ..hooks import RemovableHandle
from ..tensor import Tensor, increment_version
from .hooks import BackwardHook

__all__ = ["Module", "Parameter"]


class Parameter(Tensor):
    """A Tensor that a Module registers for training; it always requires grad.

    Its ``.grad`` is None until a backward pass reaches it.
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _as_buffer(value: Any) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    return Tensor(value)


def _check_hook(hook: Any) -> Any:
    if not callable(hook):
        raise TypeError(f"a hook must be a function, got {type(hook).__name__}")
    return hook


class IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list


class Module:
    """Base class of every layer and model.

    Subclasses assign Parameters, buffers (`register_buffer`) and sub-modules in
    ``__init__`` and compute their output in ``forward``; calling the module calls forward.
    """

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these registries to exist already.
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", {})
        object.__setattr__(self, "_forward_hooks", {})
        object.__setattr__(self, "_backward_hooks", {})

    # --- registration by assignment ---------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning {name!r}")
        if isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)  # e.g. BatchNorm1d.gamma, an alias of weight
            return
        if isinstance(value, Parameter):
            self._buffers.pop(name, None)
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._buffers.pop(name, None)
            self._modules[name] = value
        elif name in self._buffers:
            value = _as_buffer(value)
            self._buffers[name] = value
        elif name in self._parameters or name in self._modules:
            kind = "parameter" if name in self._parameters else "sub-module"
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to the {kind} {name!r} "
                                f"(a {'Parameter' if kind == 'parameter' else 'Module'} or None "
                                "expected)")
            (self._parameters if kind == "parameter" else self._modules)[name] = None
        # The object is also a plain attribute, so reading `self.weight` is an ordinary lookup.
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: Any) -> None:
        """Register saved, untrained state (a Tensor, an array, or None for "absent")."""
        value = _as_buffer(value)
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register a Parameter (None records that this module has no such parameter)."""
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    # --- calling ------------------------------------------------------------------------------

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._forward_pre_hooks or self._forward_hooks or self._backward_hooks:
            return self._call_with_hooks(args, kwargs)
        out = self.forward(*args, **kwargs)
        # Remember which module made a graph node and from which inputs, so viz/ can draw
        # each layer's ops as one labelled group. The innermost module wins: a Sequential
        # returns its last layer's output, which that layer has already marked.
        if type(out) is Tensor and out._ctx is not None and out._module_call is None:
            out._module_call = (self, args)
        return out

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        # PyTorch's order: pre-hooks, forward, forward hooks; the backward hook wraps the
        # inputs forward() sees and the output the caller gets (nn/hooks.py says how).
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        backward_hook = None
        if self._backward_hooks and is_grad_enabled():
            backward_hook = BackwardHook(self, list(self._backward_hooks.values()))
            args = backward_hook.setup_input_hook(args)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        if backward_hook is not None:
            out = backward_hook.setup_output_hook(out)
        if type(out) is Tensor and out._ctx is not None and out._module_call is None:
            out._module_call = (self, args)
        return out

    # --- hooks ------------------------------------------------------------------------------

    def register_forward_pre_hook(self, hook: Any) -> RemovableHandle:
        """Call ``hook(module, args)`` before every forward; ``args`` is the tuple of positional
        inputs. A non-None result replaces them (a single value is wrapped in a tuple).

        Returns a handle whose ``remove()`` unregisters the hook.
        """
        return RemovableHandle(self._forward_pre_hooks, _check_hook(hook))

    def register_forward_hook(self, hook: Any) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every forward; a non-None result replaces
        the output.

        Example:
            >>> layer = Linear(3, 2)
            >>> seen = []
            >>> handle = layer.register_forward_hook(lambda m, args, out: seen.append(out.shape))
            >>> _ = layer(Tensor.ones((4, 3)))
            >>> seen
            [(4, 2)]
            >>> handle.remove()
        """
        return RemovableHandle(self._forward_hooks, _check_hook(hook))

    def register_full_backward_hook(self, hook: Any) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when backward has computed ∂L/∂input
        for every input of a call; a non-None result (a tuple) replaces ``grad_input``.

        ``grad_input`` holds ∂L/∂(each positional input) and ``grad_output`` ∂L/∂(each output),
        as numpy arrays (None for an input that is not a tensor requiring grad). When no input
        requires grad (the first layer), the hook runs with ``grad_input`` all None as soon as
        ``grad_output`` is known. Hooks registered after a forward do not fire for it.
        """
        return RemovableHandle(self._backward_hooks, _check_hook(hook))

    def has_hooks(self) -> bool:
        """True if this module (not its children) has any forward, pre or backward hook."""
        return bool(self._forward_pre_hooks or self._forward_hooks or self._backward_hooks)

    # --- walking the tree ---------------------------------------------------------------------

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every descendant, depth first."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()
                        if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from ((k, m) for k, m in self._modules.items() if m is not None)

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str) -> Iterator[tuple[str, Tensor]]:
        seen = set()
        for module_name, module in self.named_modules():
            for name, member in getattr(module, registry).items():
                if member is None or id(member) in seen:
                    continue
                seen.add(id(member))
                yield (f"{module_name}.{name}" if module_name else name), member

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        return self._named_members("_parameters")

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers")

    def buffers(self) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers():
            yield buffer

    # --- modes and gradients ------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and all descendants; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode) expects a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (BatchNorm uses its running statistics, Dropout does nothing)."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for param in self.parameters():
            param.grad = None

    # --- state --------------------------------------------------------------------------------

    def _state_items(self) -> Iterator[tuple[str, Tensor]]:
        # PyTorch's order: each module's parameters, then its buffers, then its children's.
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for registry in (module._parameters, module._buffers):
                for name, tensor in registry.items():
                    if tensor is not None:
                        yield prefix + name, tensor

    def state_dict(self) -> dict:
        """Every parameter and buffer as a copied numpy array, under PyTorch's dotted keys."""
        return {key: tensor.data.copy() for key, tensor in self._state_items()}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into this module's parameters and buffers, checking everything first.

        Raises RuntimeError listing *every* problem at once: missing keys and unexpected keys
        (when ``strict``), and values whose shape does not match (always). Nothing is changed
        unless the whole state fits. Returns (missing_keys, unexpected_keys).
        """
        own = dict(self._state_items())
        state_dict = dict(state_dict)  # a copy: modules may add entries that old files lack
        for module_name, module in self.named_modules():
            module._complete_state_dict(state_dict, f"{module_name}." if module_name else "")
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict:
            problems += [f'missing key "{k}"' for k in missing]
            problems += [f'unexpected key "{k}"' for k in unexpected]
        for key, tensor in own.items():
            if key not in state_dict:
                continue
            value = np.asarray(state_dict[key].data if isinstance(state_dict[key], Tensor)
                               else state_dict[key])
            if value.dtype.kind not in "biuf":
                problems.append(f'"{key}" holds non-numeric data ({value.dtype})')
            elif value.shape != tensor.shape:
                problems.append(f'size mismatch for "{key}": the checkpoint has shape '
                                f"{value.shape}, the model has {tensor.shape}")
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n  "
                               + "\n  ".join(problems))
        for key, tensor in own.items():
            if key in state_dict:
                value = state_dict[key]
                tensor.data[...] = value.data if isinstance(value, Tensor) else value
                increment_version(tensor)  # a graph built before must not use the old values
        return IncompatibleKeys(missing, unexpected)

    def _complete_state_dict(self, state_dict: dict, prefix: str) -> None:
        """Fill in, in ``state_dict``, entries this module can do without (keys start with
        ``prefix``). Called by `load_state_dict` before it checks the keys; nothing by default.
        """

    def to(self, dtype: Any) -> Module:
        """Convert floating parameters and buffers to ``dtype`` (e.g. np.float64); returns self."""
        dtype = np.dtype(dtype)
        for tensor in list(self.parameters()) + list(self.buffers()):
            if tensor.dtype.kind == "f":
                tensor.data = tensor.data.astype(dtype)
                tensor.grad = None
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # --- printing -----------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The arguments shown between the parentheses of this module's repr."""
        return ""

    def __repr__(self) -> str:
        children = [f"({name}): " + repr(module).replace("\n", "\n  ")
                    for name, module in self.named_children()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = "\n  ".join(children)
        return f"{type(self).__name__}(\n  {lines}\n)"
