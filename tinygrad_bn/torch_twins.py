"""PyTorch classes for the layers of ours that ``torch.nn`` lacks (imported by torch_bridge
only when torch is installed: this module imports torch at its top).

`torch_bridge.definition` prints each class's source as it stands here, so the text a PyTorch
user pastes is exactly the class that was converted and tested.
"""
import torch
from torch import nn

__all__ = ["Standardize"]


class Standardize(nn.Module):
    """z = (x - mean) / std per feature: tinygrad_bn's input scaling (fixed buffers)."""

    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))

    def forward(self, x):
        return (x - self.mean) / self.std
