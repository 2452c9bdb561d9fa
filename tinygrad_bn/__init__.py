"""tinygrad_bn — see how backpropagation and Batch Normalization work, and train with them.

Reading order: graph.py → value.py → function.py → ops.py (then ops_conv.py) → tensor.py →
gradcheck.py → nn/ → optim/ → viz/.
"""
from __future__ import annotations

__version__ = "0.1.0"

# function must be imported before tensor: Function.apply creates Tensors and tensor.py's ops
# subclass Function (function.py finishes importing tensor itself, at its end).
from .function import Context, Function, is_grad_enabled, no_grad
from . import nn, optim
from .checkpoint import load, save
from .gradcheck import GradcheckError, gradcheck
from .graph import topological_order
from .jit import jit
from .optim import DivergenceError
from .random import manual_seed
from .tensor import Tensor, cat, stack, where
from .value import Value

__all__ = [
    "Context", "DivergenceError", "Function", "GradcheckError", "Tensor", "Value", "gradcheck",
    "is_grad_enabled", "jit", "load", "manual_seed", "nn", "no_grad", "optim", "save",
    "topological_order", "__version__", "cat", "stack", "where",
]
