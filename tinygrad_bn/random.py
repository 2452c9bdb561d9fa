"""The library's random number generator, seeded with `manual_seed` (as in PyTorch).

Weight initialisation, dropout masks, data shuffling and ``Tensor.randn`` all draw from this one
generator, so ``manual_seed(0)`` makes a whole training run repeatable.
"""
from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "generator", "set_generator"]


class _State:
    # Held on a class so that manual_seed can replace the generator without `global`.
    rng = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the library's generator; returns it (PyTorch returns its generator too)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _State.rng = np.random.default_rng(int(seed))
    return _State.rng


def generator() -> np.random.Generator:
    """The generator every random draw in the library uses."""
    return _State.rng


def set_generator(rng: np.random.Generator) -> None:
    """Make ``rng`` the library's generator (the jit swaps in a recording one while tracing)."""
    _State.rng = rng
