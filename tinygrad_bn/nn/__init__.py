"""Neural-network layers with PyTorch's names and semantics.

Reading order: module.py (Module, Parameter) → functional.py (the math, fused ops) →
linear.py → batchnorm.py → norm.py (LayerNorm, GroupNorm) → conv.py and pooling.py (with
functional_conv.py) → activation.py → flatten.py → container.py → loss.py → utils.py →
standardize.py; init.py (initialisers) and hooks.py (the full backward hook's bookkeeping) when
you need them.
"""
from . import functional, init, utils
from .activation import GELU, Dropout, Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv2d
from .flatten import Flatten
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import Module, Parameter
from .norm import GroupNorm, LayerNorm
from .pooling import AvgPool2d, MaxPool2d
from .standardize import Standardize

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "CrossEntropyLoss", "Dropout", "Identity",
    "Linear", "MSELoss", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh",
    "functional", "init",
    "AvgPool2d", "BatchNorm2d", "Conv2d", "Flatten", "GELU", "GroupNorm", "LayerNorm",
    "LeakyReLU", "MaxPool2d", "ModuleDict", "ModuleList", "Softplus", "utils",
    "Standardize",
]
