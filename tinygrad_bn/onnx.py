"""Export a model to ONNX, so onnxruntime can run it and Netron can draw it.

`export` walks the module tree and writes one ONNX node (or a few) per layer, using the `onnx`
package's helpers (the optional extra: ``pip install "tinygrad-bn[onnx]"``; imported only when
`export` runs). What each layer becomes is decided in one table, `CONVERTERS`: a new layer adds
one converter function and one row.

The exported graph is the model in **evaluation mode** — what ``model.eval()`` computes:

* Linear → ``Gemm`` (``MatMul`` + ``Add`` for inputs of more than two axes);
* BatchNorm1d → ``BatchNormalization`` with the running statistics as inputs — a node of its
  own, not folded into the Linear before it, so Netron shows it. Without ``affine`` its scale
  and shift are constant ones and zeros. Without ``track_running_stats`` PyTorch (and this
  library) normalise with the statistics of the batch itself even in evaluation mode; the
  export does the same: two ``ReduceMean`` nodes compute the batch mean and biased variance
  and feed them to the ``BatchNormalization`` node (so, as in PyTorch, each output row then
  depends on the other rows of the batch);
* BatchNorm2d → the same ``BatchNormalization``, over (N, C, H, W);
* Conv2d → ``Conv``; MaxPool2d → ``MaxPool``; AvgPool2d → ``AveragePool``; Flatten →
  ``Flatten`` (``Reshape`` for other axes); LayerNorm → ``LayerNormalization`` (opset 17+);
  GroupNorm → its formula over (N, G, rest) with ``ReduceMean``, then the per-channel γ and β;
* ReLU, Sigmoid, Tanh, LeakyReLU, Softplus → the ONNX op of the same name (Softplus with β ≠ 1
  rescaled around it); GELU → ``Gelu`` from opset 20, before that its formula with ``Erf`` (or
  ``Tanh`` for ``approximate="tanh"``); Dropout and Identity → ``Identity``;
* Standardize → ``Sub`` then ``Div``; Sequential → its children in order. (ModuleList and
  ModuleDict have no forward of their own, so they are refused like any unknown layer.)

Initializers are named by ``state_dict`` key and nodes by module path, so Netron's labels
match ``model.state_dict()``.

Read next: torch_bridge.py, the way to PyTorch and back.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Sequence

import numpy as np

from . import __version__, nn
from .files import atomic_write
from .function import no_grad
from .nn.functional_conv import pair
from .optional import require
from .tensor import Tensor

__all__ = ["CONVERTERS", "MIN_OPSET", "export"]

MIN_OPSET = 15  # BatchNormalization-15: the first version whose inputs may differ in type


class _Graph:
    """The nodes and initializers of the graph being built, and the converter dispatch."""

    def __init__(self, dtype: np.dtype, opset: int):
        self.helper = importlib.import_module("onnx.helper")
        self.numpy_helper = importlib.import_module("onnx.numpy_helper")
        self.dtype, self.opset = dtype, opset
        self.nodes: list = []
        self.initializers: list = []

    def constant(self, name: str, array: Any) -> str:
        """Add an initializer (floating arrays take the graph's dtype); returns its name."""
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(self.dtype)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: Sequence[str], name: str, **attributes: Any) -> str:
        """Add one node whose single output is named like the node; returns that name."""
        self.nodes.append(self.helper.make_node(op, list(inputs), [name], name=name,
                                                **attributes))
        return name

    def reduce_mean(self, x: str, axes: Sequence[int], name: str) -> str:
        """ReduceMean over ``axes``, keeping them (opset 18 moved ``axes`` to an input)."""
        if self.opset >= 18:
            axes_name = self.constant(f"{name}.axes", np.array(axes, dtype=np.int64))
            return self.node("ReduceMean", [x, axes_name], name, keepdims=1)
        return self.node("ReduceMean", [x], name, axes=list(axes), keepdims=1)

    def add(self, module: nn.Module, name: str, x: str, example: Tensor) -> tuple:
        """Convert ``module`` applied to the graph value ``x``; ``example`` is a real input of
        the same shape, run through the module to know each layer's input shape.

        Returns (name of the output value, the module's output for ``example``).
        """
        converter = CONVERTERS.get(type(module))
        if converter is None:
            where = f" at {name!r}" if name else ""
            supported = ", ".join(sorted(t.__name__ for t in CONVERTERS))
            raise TypeError(f"cannot export {type(module).__name__}{where} to ONNX: no "
                            f"converter for it (supported: {supported})")
        return converter(self, module, name, x, example), module(example)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# --- one converter per layer: (graph, module, node name, input value, example input) → output --

def _linear(graph: _Graph, module: nn.Linear, name: str, x: str, example: Tensor) -> str:
    bias = [graph.constant(f"{name}.bias", module.bias.data)] if module.bias is not None else []
    if example.ndim == 2:
        weight = graph.constant(f"{name}.weight", module.weight.data)
        return graph.node("Gemm", [x, weight] + bias, name, transB=1)  # x·Wᵀ + b
    # Gemm takes matrices only; a batch of sequences multiplies by Wᵀ on its last axis.
    weight = graph.constant(f"{name}.weight.T", module.weight.data.T)
    if not bias:
        return graph.node("MatMul", [x, weight], name)
    product = graph.node("MatMul", [x, weight], f"{name}.matmul")
    return graph.node("Add", [product] + bias, name)


def _batch_norm(graph: _Graph, module: nn.BatchNorm1d, name: str, x: str,
                example: Tensor) -> str:
    channels = module.num_features
    if module.affine:
        scale = graph.constant(f"{name}.weight", module.weight.data)
        shift = graph.constant(f"{name}.bias", module.bias.data)
    else:  # γ = 1, β = 0: the node still needs them as inputs
        scale = graph.constant(f"{name}.weight(ones)", np.ones(channels))
        shift = graph.constant(f"{name}.bias(zeros)", np.zeros(channels))
    if module.track_running_stats:
        mean = graph.constant(f"{name}.running_mean", module.running_mean.data)
        var = graph.constant(f"{name}.running_var", module.running_var.data)
    else:
        # PyTorch's eval mode without running statistics: μ_B and the biased σ²_B of this batch.
        axes = [0] + list(range(2, example.ndim))
        mean_kept = graph.reduce_mean(x, axes, f"{name}.batch_mean")
        centred = graph.node("Sub", [x, mean_kept], f"{name}.centred")
        squared = graph.node("Mul", [centred, centred], f"{name}.centred²")
        var_kept = graph.reduce_mean(squared, axes, f"{name}.batch_var")
        shape = graph.constant(f"{name}.channels", np.array([channels], dtype=np.int64))
        mean = graph.node("Reshape", [mean_kept, shape], f"{name}.μ_B")
        var = graph.node("Reshape", [var_kept, shape], f"{name}.σ²_B")
    return graph.node("BatchNormalization", [x, scale, shift, mean, var], name,
                      epsilon=float(module.eps))


def _elementwise(op: str) -> Callable:
    def convert(graph: _Graph, module: nn.Module, name: str, x: str, example: Tensor) -> str:
        return graph.node(op, [x], name)
    return convert


def _standardize(graph: _Graph, module: nn.Standardize, name: str, x: str,
                 example: Tensor) -> str:
    mean = graph.constant(f"{name}.mean", module.mean.data)
    std = graph.constant(f"{name}.std", module.std.data)
    centred = graph.node("Sub", [x, mean], f"{name}.centred")
    return graph.node("Div", [centred, std], name)


def _sequential(graph: _Graph, module: nn.Sequential, name: str, x: str,
                example: Tensor) -> str:
    for key, child in module.named_children():
        x, example = graph.add(child, _join(name, key), x, example)
    return x


def _conv2d(graph: _Graph, module: nn.Conv2d, name: str, x: str, example: Tensor) -> str:
    weight = graph.constant(f"{name}.weight", module.weight.data)
    bias = [graph.constant(f"{name}.bias", module.bias.data)] if module.bias is not None else []
    (ph, pw) = module.padding
    return graph.node("Conv", [x, weight] + bias, name, kernel_shape=list(module.kernel_size),
                      strides=list(module.stride), pads=[ph, pw, ph, pw],
                      dilations=list(module.dilation), group=module.groups)


def _pool_attributes(module: nn.Module) -> dict:
    kernel = pair(module.kernel_size, "kernel_size")
    stride = kernel if module.stride is None else pair(module.stride, "stride")
    (ph, pw) = pair(module.padding, "padding", minimum=0)
    return {"kernel_shape": list(kernel), "strides": list(stride), "pads": [ph, pw, ph, pw],
            "ceil_mode": int(module.ceil_mode)}


def _max_pool2d(graph: _Graph, module: nn.MaxPool2d, name: str, x: str,
                example: Tensor) -> str:
    # ONNX, like PyTorch, treats padding as −∞ here: it never wins a maximum.
    return graph.node("MaxPool", [x], name, dilations=list(pair(module.dilation, "dilation")),
                      **_pool_attributes(module))


def _avg_pool2d(graph: _Graph, module: nn.AvgPool2d, name: str, x: str,
                example: Tensor) -> str:
    return graph.node("AveragePool", [x], name, count_include_pad=int(module.count_include_pad),
                      **_pool_attributes(module))


def _flatten(graph: _Graph, module: nn.Flatten, name: str, x: str, example: Tensor) -> str:
    start, end = module.start_dim % example.ndim, module.end_dim % example.ndim
    if start == 1 and end == example.ndim - 1:  # ONNX's own Flatten: (N, everything else)
        return graph.node("Flatten", [x], name, axis=1)
    # Otherwise a Reshape: 0 keeps an axis as it is (the batch stays free), −1 is the merged one.
    shape = ([0] * start + [-1] + list(example.shape[end + 1:]))
    target = graph.constant(f"{name}.shape", np.array(shape, dtype=np.int64))
    return graph.node("Reshape", [x, target], name)


def _layer_norm(graph: _Graph, module: nn.LayerNorm, name: str, x: str,
                example: Tensor) -> str:
    if graph.opset < 17:
        raise ValueError(f"LayerNorm at {name!r} needs opset 17 or later (LayerNormalization), "
                         f"got opset {graph.opset}")
    shape = module.normalized_shape
    if module.elementwise_affine:
        scale = graph.constant(f"{name}.weight", module.weight.data)
        shift = [graph.constant(f"{name}.bias", module.bias.data)]
    else:
        scale, shift = graph.constant(f"{name}.weight(ones)", np.ones(shape)), []
    return graph.node("LayerNormalization", [x, scale] + shift, name, axis=-len(shape),
                      epsilon=float(module.eps))


def _group_norm(graph: _Graph, module: nn.GroupNorm, name: str, x: str,
                example: Tensor) -> str:
    # View (N, C, *) as (N, G, rest), normalise each (sample, group) with its own μ and biased
    # σ², view back, then scale and shift per channel. (ONNX's GroupNormalization changed
    # meaning between opsets 18 and 21, and onnxruntime's InstanceNormalization has no float64.)
    groups, channels = module.num_groups, module.num_channels
    grouped_shape = graph.constant(f"{name}.grouped_shape", np.array([0, groups, -1], np.int64))
    grouped = graph.node("Reshape", [x, grouped_shape], f"{name}.grouped")
    mean = graph.reduce_mean(grouped, [2], f"{name}.μ")
    centred = graph.node("Sub", [grouped, mean], f"{name}.centred")
    squared = graph.node("Mul", [centred, centred], f"{name}.centred²")
    var = graph.reduce_mean(squared, [2], f"{name}.σ²")
    eps = graph.constant(f"{name}.eps", np.array(module.eps))
    std = graph.node("Sqrt", [graph.node("Add", [var, eps], f"{name}.σ²+ε")], f"{name}.σ")
    normalised = graph.node("Div", [centred, std], f"{name}.normalised")
    input_shape = graph.node("Shape", [x], f"{name}.input_shape")
    y = graph.node("Reshape", [normalised, input_shape], f"{name}.ungrouped")
    if not module.affine:
        return graph.node("Identity", [y], name)
    per_channel = (channels,) + (1,) * (example.ndim - 2)  # broadcasts over the positions
    gamma = graph.constant(f"{name}.weight", module.weight.data.reshape(per_channel))
    beta = graph.constant(f"{name}.bias", module.bias.data.reshape(per_channel))
    scaled = graph.node("Mul", [y, gamma], f"{name}.scaled")
    return graph.node("Add", [scaled, beta], name)


def _leaky_relu(graph: _Graph, module: nn.LeakyReLU, name: str, x: str,
                example: Tensor) -> str:
    return graph.node("LeakyRelu", [x], name, alpha=float(module.negative_slope))


def _gelu(graph: _Graph, module: nn.GELU, name: str, x: str, example: Tensor) -> str:
    if graph.opset >= 20:  # ONNX has had a Gelu op since opset 20
        return graph.node("Gelu", [x], name, approximate=module.approximate)
    half = graph.constant(f"{name}.half", np.array(0.5))
    one = graph.constant(f"{name}.one", np.array(1.0))
    if module.approximate == "tanh":  # ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
        cube = graph.node("Mul", [x, graph.node("Mul", [x, x], f"{name}.x²")], f"{name}.x³")
        k = graph.constant(f"{name}.0.044715", np.array(0.044715))
        inner = graph.node("Add", [x, graph.node("Mul", [cube, k], f"{name}.kx³")],
                           f"{name}.inner")
        root = graph.constant(f"{name}.√(2/π)", np.array(np.sqrt(2 / np.pi)))
        s = graph.node("Tanh", [graph.node("Mul", [inner, root], f"{name}.scaled")],
                       f"{name}.tanh")
    else:  # ½x(1 + erf(x/√2))
        root2 = graph.constant(f"{name}.√2", np.array(np.sqrt(2.0)))
        s = graph.node("Erf", [graph.node("Div", [x, root2], f"{name}.x/√2")], f"{name}.erf")
    half_x = graph.node("Mul", [x, half], f"{name}.½x")
    return graph.node("Mul", [half_x, graph.node("Add", [s, one], f"{name}.1+")], name)


def _softplus(graph: _Graph, module: nn.Softplus, name: str, x: str, example: Tensor) -> str:
    # ONNX's Softplus is log(1 + eˣ): β rescales around it. PyTorch's switch to y = x above
    # the threshold changes the value by less than e^(−threshold) relative, not represented.
    if module.beta == 1:
        return graph.node("Softplus", [x], name)
    beta = graph.constant(f"{name}.beta", np.array(module.beta))
    scaled = graph.node("Mul", [x, beta], f"{name}.βx")
    return graph.node("Div", [graph.node("Softplus", [scaled], f"{name}.softplus"), beta], name)


# The one table: module class → converter. Exact classes only, so a subclass with its own
# forward is refused rather than exported as something it is not.
CONVERTERS: dict = {
    nn.Linear: _linear,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.Conv2d: _conv2d,
    nn.MaxPool2d: _max_pool2d,
    nn.AvgPool2d: _avg_pool2d,
    nn.Flatten: _flatten,
    nn.LayerNorm: _layer_norm,
    nn.GroupNorm: _group_norm,
    nn.ReLU: _elementwise("Relu"),
    nn.LeakyReLU: _leaky_relu,
    nn.GELU: _gelu,
    nn.Softplus: _softplus,
    nn.Sigmoid: _elementwise("Sigmoid"),
    nn.Tanh: _elementwise("Tanh"),
    nn.Dropout: _elementwise("Identity"),   # evaluation mode: Dropout passes its input through
    nn.Identity: _elementwise("Identity"),
    nn.Standardize: _standardize,
    nn.Sequential: _sequential,
}

_ONNX_TYPES = {np.dtype(np.float32): "FLOAT", np.dtype(np.float64): "DOUBLE"}


def _check_dtypes(model: nn.Module, dtype: np.dtype) -> None:
    # ONNX ops take operands of one type, so every floating array must match the input's.
    for key, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.data.dtype.kind == "f" and tensor.data.dtype != dtype:
            raise ValueError(f"example_input is {dtype} but {key!r} is {tensor.data.dtype}: "
                             "give an input of the model's dtype (or convert the model with "
                             ".float() / .double())")


def export(model: nn.Module, example_input: Any, path: str | os.PathLike | None = None, *,
           opset: int = 17, input_names: Sequence[str] = ("input",),
           output_names: Sequence[str] = ("output",), dynamic_batch: bool = True,
           metadata: dict | None = None) -> Any:
    """Write ``model`` (in evaluation mode) to ``path`` as an ONNX file; returns the ModelProto.

    Args:
        model: a module built from the layers in `CONVERTERS`; others raise TypeError naming
            the layer and its path.
        example_input: one input batch (Tensor or array, float32 or float64, the model's
            dtype). It fixes the input's shape and type; it is run through the model (in
            evaluation mode, restored afterwards) to find every layer's shapes.
        path: where to write; the file appears complete or not at all (written to a
            temporary file and renamed). None: build and check the model, write nothing.
        opset: the ONNX opset version (at least `MIN_OPSET`).
        input_names, output_names: one name each, for the graph's input and output.
        dynamic_batch: name the first axis ``"batch"`` so any batch size runs; False fixes it
            to the example's.
        metadata: strings stored as the model's metadata_props (e.g. the feature names).

    The result passes ``onnx.checker.check_model(..., full_check=True)`` before it is written.

    Shape: example_input (N, *) → the model's output (N, *).
    """
    onnx = require("onnx", "onnx")
    helper = importlib.import_module("onnx.helper")
    checker = importlib.import_module("onnx.checker")
    if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"opset must be between {MIN_OPSET} and "
                         f"{onnx.defs.onnx_opset_version()} (this onnx's newest), got {opset}")
    if len(input_names) != 1 or len(output_names) != 1:
        raise ValueError(f"a model has one input and one output: got input_names="
                         f"{list(input_names)}, output_names={list(output_names)}")
    data = np.asarray(example_input.data if isinstance(example_input, Tensor)
                      else example_input)
    if data.dtype not in _ONNX_TYPES or data.ndim < 1:
        raise ValueError(f"example_input must be a float32 or float64 batch, got dtype "
                         f"{data.dtype} and shape {data.shape}")
    _check_dtypes(model, data.dtype)

    graph = _Graph(data.dtype, opset)
    input_name, output_name = input_names[0], output_names[0]
    was_training = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            # Names are state_dict paths; a lone layer (no container) is named after its class.
            root = "" if type(model) is nn.Sequential else type(model).__name__.lower()
            last, output = graph.add(model, root, input_name, Tensor(data))
    finally:
        for module, training in was_training:
            module.training = training
    if graph.nodes and graph.nodes[-1].output[0] == last:  # it becomes the graph's output
        graph.nodes[-1].output[0] = output_name
    else:  # e.g. an empty Sequential: the output is the input
        graph.node("Identity", [last], output_name)

    batch = "batch" if dynamic_batch else data.shape[0]
    elem_type = getattr(onnx.TensorProto, _ONNX_TYPES[data.dtype])
    inputs = [helper.make_tensor_value_info(input_name, elem_type, [batch, *data.shape[1:]])]
    # The output's first axis is the batch axis unless a layer merged it (Flatten(0, …)).
    first = batch if output.shape[0] == data.shape[0] else None
    out_shape = [first, *output.shape[1:]]
    outputs = [helper.make_tensor_value_info(output_name, elem_type, out_shape)]
    onnx_graph = helper.make_graph(graph.nodes, type(model).__name__, inputs, outputs,
                                   graph.initializers)
    opsets = [helper.make_opsetid("", opset)]
    # The oldest IR version that can carry this opset, so older runtimes can open the file.
    proto = helper.make_model(onnx_graph, opset_imports=opsets,
                              ir_version=helper.find_min_ir_version_for(opsets),
                              producer_name="tinygrad_bn", producer_version=__version__,
                              doc_string=repr(model))
    if metadata:
        helper.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
    checker.check_model(proto, full_check=True)
    if path is not None:
        atomic_write(path, lambda file: file.write(proto.SerializeToString()))
    return proto
