"""The convnet row of the benchmark: one training step of a small CNN, tinygrad_bn against
PyTorch eager (both float32, CPU, the same threads).

    Conv2d(1→8, 3×3, pad 1) → BatchNorm2d → ReLU → MaxPool2d(2)
    Conv2d(8→16, 3×3, pad 1) → BatchNorm2d → ReLU → MaxPool2d(2) → Flatten → Linear(784→10)

on a batch of 64 images of 1×28×28 (Fashion-MNIST's size) with cross-entropy and SGD. The
same code builds and steps both frameworks' models (they share PyTorch's API); both start from
the same weights, and after one step their parameters and running statistics must agree
before anything is timed. Called by `tinygrad_bn.benchmark.run`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import nn, optim
from .benchmark import EagerStep
from .random import manual_seed
from .tensor import Tensor

__all__ = ["BATCH", "ConvnetStep", "build_convnet_engines", "check_convnet_agreement"]

BATCH, SIDE, CLASSES, LR = 64, 28, 10, 0.05


def _layers(nn_module: Any) -> list:
    return [nn_module.Conv2d(1, 8, 3, padding=1), nn_module.BatchNorm2d(8), nn_module.ReLU(),
            nn_module.MaxPool2d(2),
            nn_module.Conv2d(8, 16, 3, padding=1), nn_module.BatchNorm2d(16), nn_module.ReLU(),
            nn_module.MaxPool2d(2), nn_module.Flatten(), nn_module.Linear(16 * 7 * 7, CLASSES)]


class ConvnetStep(EagerStep):
    """forward, cross-entropy, backward, SGD step, zero_grad — in either framework."""

    def __init__(self, name: str, nn_module: Any, optim_module: Any, state: dict,
                 x: Any, target: Any, to_native: Callable[[np.ndarray], Any]):
        self.name = name
        self.model = nn_module.Sequential(*_layers(nn_module))
        self.model.load_state_dict({k: to_native(v.copy()) for k, v in state.items()})
        self.optimizer = optim_module.SGD(self.model.parameters(), lr=LR)
        self.loss_fn = nn_module.CrossEntropyLoss()
        self.x, self.target = x, target

    def state_dict(self) -> dict:
        return {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v)
                for k, v in self.model.state_dict().items()}


def build_convnet_engines(with_torch: bool, seed: int = 0) -> list:
    """tinygrad_bn (and torch) steps from one initial state (the library's seeded init)."""
    manual_seed(seed)
    state = nn.Sequential(*_layers(nn)).state_dict()
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((BATCH, 1, SIDE, SIDE)).astype(np.float32)
    target = rng.integers(0, CLASSES, BATCH)
    engines = [ConvnetStep("tinygrad_bn", nn, optim, state, Tensor(x), target, np.asarray)]
    if with_torch:
        import torch

        engines.append(ConvnetStep("torch", torch.nn, torch.optim, state, torch.from_numpy(x),
                                   torch.from_numpy(target), torch.from_numpy))
    return engines


def check_convnet_agreement(engines: list, rtol: float = 1e-4, atol: float = 1e-5) -> float:
    """One step of each engine; every parameter and buffer must agree with the first engine's.
    Returns the largest |difference|; raises RuntimeError naming the first that disagrees."""
    for engine in engines:
        engine.step()
    reference = engines[0].state_dict()
    worst = 0.0
    for engine in engines[1:]:
        for key, value in engine.state_dict().items():
            expected = reference[key].astype(np.float64)
            difference = float(np.max(np.abs(value.astype(np.float64) - expected)))
            if not np.allclose(value, expected, rtol=rtol, atol=atol):
                raise RuntimeError(f"convnet: {engine.name} disagrees with tinygrad_bn on {key!r} "
                                   f"after one step: max |Δ| = {difference:.3g}")
            worst = max(worst, difference)
    return worst
