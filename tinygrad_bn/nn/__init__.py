"""Neural-network layers with PyTorch's names and semantics.

Reading order: module.py (Module, Parameter) → functional.py (the math, fused ops) →
linear.py → batchnorm.py → activation.py → container.py → loss.py; init.py (initialisers)
and hooks.py (the full backward hook's bookkeeping) when you need them.
"""
from . import functional, init
from .activation import Dropout, Identity, ReLU, Sigmoid, Tanh
from .batchnorm import BatchNorm1d
from .container import Sequential
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import Module, Parameter

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "CrossEntropyLoss", "Dropout", "Identity",
    "Linear", "MSELoss", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh",
    "functional", "init",
]
