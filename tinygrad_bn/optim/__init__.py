"""Optimizers with PyTorch's names and update rules: read optimizer.py, then sgd.py, adam.py."""
from .adam import Adam
from .divergence import DivergenceError, check_loss
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "DivergenceError", "Optimizer", "SGD", "check_loss"]
