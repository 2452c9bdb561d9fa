"""Neural-network layers with PyTorch's names and semantics.

Reading order: module.py (Module, Parameter) → functional.py (the math, fused ops) →
linear.py → batchnorm.py → activation.py → container.py → loss.py → standardize.py.
"""
from . import functional
from .activation import Dropout, Identity, ReLU, Sigmoid, Tanh
from .batchnorm import BatchNorm1d
from .container import Sequential
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import Module, Parameter
from .standardize import Standardize

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "CrossEntropyLoss", "Dropout", "Identity",
    "Linear", "MSELoss", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh",
    "functional",
    "Standardize",
]
