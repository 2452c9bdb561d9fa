"""Optimizers with PyTorch's names and update rules: read optimizer.py, then sgd.py, adam.py,
rmsprop.py."""
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "RMSprop", "SGD"]
