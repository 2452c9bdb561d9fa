"""The way to PyTorch and back: `to_torch`, `from_torch`, and the source of the torch model.

Layers here and in ``torch.nn`` share names, constructor arguments and ``state_dict`` keys, so
converting is: build the twin layer from the same arguments, then copy every parameter and
buffer under the same key. Dtypes are kept (a float64 model gives a float64 twin). PyTorch
(the optional extra: ``pip install "tinygrad-bn[torch]"``) is imported only when a function
here runs.

What each layer becomes is decided in one table, `LAYERS`; a layer missing from it is refused
with an error naming it, in both directions. ``torch.nn`` has no `Standardize`; its PyTorch
twin is the small class in `torch_twins.py`, which `definition` prints for PyTorch users.

Read next: onnx.py, the other way out.
"""
from __future__ import annotations

import inspect
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from . import nn
from .optional import require

__all__ = ["LAYERS", "definition", "from_torch", "to_torch",
           "torch_standardize_class"]


def _linear_args(m: Any) -> dict:
    return {"in_features": m.in_features, "out_features": m.out_features,
            "bias": m.bias is not None}


def _batch_norm_args(m: Any) -> dict:
    if m.affine and m.bias is None:  # torch ≥ 2.13 can drop β alone; ours cannot
        raise ValueError("affine=True with bias=False has no equivalent")
    return {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum,
            "affine": m.affine, "track_running_stats": m.track_running_stats}


def _conv2d_args(m: Any) -> dict:
    if getattr(m, "padding_mode", "zeros") != "zeros" or isinstance(m.padding, str):
        raise ValueError("only zero padding given as sizes is supported")
    return {"in_channels": m.in_channels, "out_channels": m.out_channels,
            "kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding,
            "dilation": m.dilation, "groups": m.groups, "bias": m.bias is not None}


def _max_pool2d_args(m: Any) -> dict:
    if getattr(m, "return_indices", False):
        raise ValueError("return_indices=True is not supported")
    return {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding,
            "dilation": m.dilation, "ceil_mode": m.ceil_mode}


def _avg_pool2d_args(m: Any) -> dict:
    if getattr(m, "divisor_override", None) is not None:
        raise ValueError("divisor_override is not supported")
    return {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding,
            "ceil_mode": m.ceil_mode, "count_include_pad": m.count_include_pad}


def _layer_norm_args(m: Any) -> dict:
    if m.elementwise_affine and m.bias is None:
        raise ValueError("elementwise_affine=True with bias=False has no equivalent")
    return {"normalized_shape": tuple(m.normalized_shape), "eps": m.eps,
            "elementwise_affine": m.elementwise_affine}


def _group_norm_args(m: Any) -> dict:
    return {"num_groups": m.num_groups, "num_channels": m.num_channels, "eps": m.eps,
            "affine": m.affine}


def _no_args(m: Any) -> dict:
    return {}


# The one table: (our class, the torch class's name in torch.nn, constructor arguments). The
# argument function reads attributes that both libraries' layers have under the same names,
# so it serves both directions; it raises ValueError for a setting the other side lacks.
# Containers (Sequential) are handled by the walkers below.
LAYERS: tuple = (
    (nn.Linear, "Linear", _linear_args),
    (nn.BatchNorm1d, "BatchNorm1d", _batch_norm_args),
    (nn.BatchNorm2d, "BatchNorm2d", _batch_norm_args),
    (nn.Conv2d, "Conv2d", _conv2d_args),
    (nn.MaxPool2d, "MaxPool2d", _max_pool2d_args),
    (nn.AvgPool2d, "AvgPool2d", _avg_pool2d_args),
    (nn.Flatten, "Flatten", lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim}),
    (nn.LayerNorm, "LayerNorm", _layer_norm_args),
    (nn.GroupNorm, "GroupNorm", _group_norm_args),
    (nn.ReLU, "ReLU", _no_args),
    (nn.LeakyReLU, "LeakyReLU", lambda m: {"negative_slope": m.negative_slope}),
    (nn.GELU, "GELU", lambda m: {"approximate": m.approximate}),
    (nn.Softplus, "Softplus", lambda m: {"beta": m.beta, "threshold": m.threshold}),
    (nn.Sigmoid, "Sigmoid", _no_args),
    (nn.Tanh, "Tanh", _no_args),
    (nn.Dropout, "Dropout", lambda m: {"p": m.p}),
    (nn.Identity, "Identity", _no_args),
    (nn.Standardize, "Standardize", lambda m: {"num_features": m.num_features}),
)

def torch_standardize_class() -> type:
    """PyTorch's twin of `nn.Standardize` (tinygrad_bn.torch_twins, imported only now)."""
    require("torch", "torch")
    from .torch_twins import Standardize
    return Standardize


def standardize_source() -> str:
    """The source of `torch_standardize_class`, as `definition` prints it."""
    return inspect.getsource(torch_standardize_class())


def _torch_class(name: str) -> type:
    if name == "Standardize":
        return torch_standardize_class()
    return getattr(require("torch", "torch").nn, name)


def _refuse(direction: str, module: Any, path: str, known: list) -> TypeError:
    where = f" at {path!r}" if path else ""
    return TypeError(f"{direction}: {type(module).__module__}.{type(module).__name__}{where} "
                     f"has no equivalent (supported: {', '.join(sorted(known))}, Sequential)")


def _convert(module: Any, path: str, row_of: Callable, build: Callable, sequential: Callable,
             sequential_type: type, direction: str, known: list) -> Any:
    """Rebuild ``module``'s tree layer by layer with ``build`` (state is copied afterwards)."""
    if type(module) is sequential_type:
        children = OrderedDict((name, _convert(child, f"{path}.{name}" if path else name,
                                               row_of, build, sequential, sequential_type,
                                               direction, known))
                               for name, child in module.named_children())
        return sequential(children)
    row = row_of(module)
    if row is None:
        raise _refuse(direction, module, path, known)
    try:
        return build(row, module)
    except ValueError as error:  # a setting the other library lacks
        where = f" at {path!r}" if path else ""
        raise TypeError(f"{direction}: {type(module).__name__}{where}: {error}") from None


def to_torch(model: nn.Module) -> Any:
    """The equivalent ``torch.nn.Module``: same layers, same ``state_dict`` (keys, values,
    dtypes), same training/evaluation mode per module.

    Raises TypeError naming the first layer that has no ``torch.nn`` equivalent.

    Example:
        >>> twin = to_torch(nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU()))
    """
    torch = require("torch", "torch")
    rows = {ours: (name, args) for ours, name, args in LAYERS}
    twin = _convert(model, "", lambda m: rows.get(type(m)),
                    lambda row, m: _torch_class(row[0])(**row[1](m)),
                    torch.nn.Sequential, nn.Sequential, "to_torch",
                    [ours.__name__ for ours in rows])
    # assign=True keeps each array's own dtype (a copy, so the twin shares no memory with us).
    twin.load_state_dict({key: torch.from_numpy(np.array(value))
                          for key, value in model.state_dict().items()}, assign=True)
    modes = {name: m.training for name, m in model.named_modules()}
    for name, m in twin.named_modules():
        m.training = modes[name]
    return twin


def from_torch(module: Any) -> nn.Module:
    """The tinygrad_bn model equivalent to a ``torch.nn.Module`` built from the layers in
    `LAYERS` and ``torch.nn.Sequential``: same ``state_dict`` (keys, values, dtypes) and modes.

    Raises TypeError naming the first layer that has no tinygrad_bn equivalent (a subclass of a
    supported torch layer is refused too: its forward may differ).
    """
    torch = require("torch", "torch")
    rows = {_torch_class(name): (ours, args) for ours, name, args in LAYERS}

    def build(row: tuple, twin: Any) -> nn.Module:
        ours, args = row
        if ours is nn.Standardize:  # its constructor takes the statistics themselves
            return nn.Standardize(np.zeros(twin.num_features), np.ones(twin.num_features))
        return ours(**args(twin))

    model = _convert(module, "", lambda m: rows.get(type(m)), build, nn.Sequential,
                     torch.nn.Sequential, "from_torch", [t.__name__ for t in rows])
    state = {}
    for key, value in module.state_dict().items():
        if value.dtype == torch.bfloat16:
            raise TypeError(f"from_torch: {key!r} is bfloat16, which numpy cannot hold; "
                            "convert the module with .float() first")
        state[key] = value.detach().cpu().numpy().copy()
    model.load_state_dict(state)  # checks that every key and shape fits
    # load_state_dict casts into our arrays; assigning the copies keeps torch's dtypes.
    for key, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        tensor.data = state[key]
    modes = {name: m.training for name, m in module.named_modules()}
    for name, m in model.named_modules():
        m.training = modes[name]
    return model


def _call(name: str, args: dict) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def _source(module: Any, indent: str) -> str:
    """Python source building ``module`` (a torch module made by `to_torch`)."""
    if type(module) is require("torch", "torch").nn.Sequential:
        children = list(module.named_children())
        inner = indent + "    "
        if [name for name, _ in children] == [str(i) for i in range(len(children))]:
            lines = [f"{inner}{_source(child, inner)}," for _, child in children]
            return "nn.Sequential(\n" + "\n".join(lines) + f"\n{indent})"
        lines = [f"{inner}({name!r}, {_source(child, inner)})," for name, child in children]
        return "nn.Sequential(OrderedDict([\n" + "\n".join(lines) + f"\n{indent}]))"
    for _, name, args in LAYERS:
        if type(module) is _torch_class(name):
            prefix = "" if name == "Standardize" else "nn."
            return prefix + _call(name, args(module))
    raise _refuse("definition", module, "", [name for _, name, _ in LAYERS])


def definition(model: nn.Module | Any, name: str = "model") -> str:
    """Python source that builds the ``torch.nn`` twin of ``model`` as the variable ``name``
    (imports included; the `Standardize` class too when the model uses it).

    Paste it, then ``model.load_state_dict(torch.load("model.pt", weights_only=True))``
    loads the weights that ``torch.save(to_torch(model).state_dict(), "model.pt")`` wrote.
    """
    torch = require("torch", "torch")
    twin = model if isinstance(model, torch.nn.Module) else to_torch(model)
    body = _source(twin, "")
    lines = ["import torch", "from torch import nn"]
    if "OrderedDict(" in body:
        lines.insert(0, "from collections import OrderedDict")
    text = "\n".join(lines) + "\n\n"
    if any(type(m) is torch_standardize_class() for m in twin.modules()):
        text += "\n" + standardize_source() + "\n\n"
    return text + f"{name} = {body}\n"
