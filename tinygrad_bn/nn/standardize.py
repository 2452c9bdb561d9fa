"""`Standardize`: the input scaling z = (x − mean) / std as a layer, so it travels with a model.

Training fits the statistics on the training split (`tinygrad_bn.data.Standardizer`); putting
them in a layer in front of the network lets an exported model (ONNX, PyTorch) take raw
features.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .module import Module

__all__ = ["Standardize"]


class Standardize(Module):
    r"""z = (x − mean) / std for each feature, with fixed (not learned) statistics.

    Args:
        mean: per-feature means, shape (C,).
        std: per-feature standard deviations, shape (C,), all positive.

    Both are buffers (saved in ``state_dict`` as ``mean`` and ``std``, never trained).

    Shape: (N, C) → (N, C).

    Example:
        >>> scale = Standardize([7.0, 100.0], [1.0, 15.0])
        >>> z = scale(Tensor([[8.0, 130.0]]))          # [[1.0, 2.0]]
    """

    def __init__(self, mean: Any, std: Any):
        super().__init__()
        mean = np.asarray(mean.data if isinstance(mean, Tensor) else mean)
        std = np.asarray(std.data if isinstance(std, Tensor) else std)
        if mean.ndim != 1 or std.shape != mean.shape:
            raise ValueError(f"Standardize: mean and std must be 1-D of the same length, got "
                             f"shapes {mean.shape} and {std.shape}")
        if not np.all(std > 0):
            raise ValueError(f"Standardize: every std must be positive, got {std.tolist()}")
        self.num_features = len(mean)
        # float32 like every layer's state; `.double()` converts the model, this included.
        self.register_buffer("mean", mean.astype(np.float32))
        self.register_buffer("std", std.astype(np.float32))

    def forward(self, input: Tensor) -> Tensor:
        return (input - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"{self.num_features}"
