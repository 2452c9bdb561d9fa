"""Optimizers with PyTorch's names and update rules: read optimizer.py, then sgd.py, adam.py,
rmsprop.py."""
from .adam import Adam, AdamW
from .divergence import DivergenceError, check_loss
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adam", "AdamW", "DivergenceError", "Optimizer", "RMSprop", "SGD", "check_loss"]
