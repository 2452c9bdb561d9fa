"""`TensorDataset` and `DataLoader`: mini-batches for a training loop, with PyTorch's names.

A training loop visits the training set in mini-batches, in a new random order every epoch:

    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True, seed=0)
    for epoch in range(epochs):
        for x, y in loader:          # Tensors of up to 32 rows
            ...

Stochastic gradient descent needs the shuffle: a fixed order would make every epoch follow the
same path, and sorted data (all of class 0 first) would pull the weights one way, then the other.
BatchNorm cares about the batch too: it normalises with the statistics of the rows that happen to
be together, so a last batch of one row cannot be normalised (its variance is 0) — drop it with
``drop_last=True`` (`data.dropped_rows` tells when that case arises).

Read next: metrics.py (accuracy), then placement.py, a loop built on these.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from .random import generator
from .tensor import Tensor

__all__ = ["TensorDataset", "DataLoader"]


class TensorDataset:
    """Rows of several tensors taken together: ``dataset[i]`` is ``(X[i], y[i])``.

    Args:
        *tensors: Tensors or arrays, all with the same first dimension (the number of rows).

    Example:
        >>> dataset = TensorDataset(np.zeros((10, 2)), np.arange(10))
        >>> len(dataset), dataset[3][1].item()
        (10, 3)
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
        sizes = [len(t.data) if t.ndim else None for t in self.tensors]
        if None in sizes or len(set(sizes)) != 1:
            shapes = ", ".join(str(t.shape) for t in self.tensors)
            raise ValueError(f"TensorDataset needs tensors with the same number of rows "
                             f"(first dimension), got shapes {shapes}")

    def __len__(self) -> int:
        return len(self.tensors[0].data)

    def __getitem__(self, index: Any) -> tuple:
        # Rows are data, not graph nodes: plain copies, outside any computation graph.
        return tuple(Tensor(t.data[index]) for t in self.tensors)


def _collate(samples: list) -> Any:
    """Stack a list of samples into one batch: a tuple of fields stacks field by field."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(_collate([s[k] for s in samples]) for k in range(len(first)))
    return Tensor(np.stack([np.asarray(s.data if isinstance(s, Tensor) else s) for s in samples]))


class DataLoader:
    """Iterate a dataset in mini-batches; each batch is a tuple of Tensors, e.g. ``(x, y)``.

    Args:
        dataset: a `TensorDataset`, or any object with ``__len__`` and ``__getitem__`` returning
            a sample (a tuple of fields, each stacked into a batch tensor).
        batch_size: rows per batch; the last batch may be smaller.
        shuffle: visit the rows in a new random order at every iteration (epoch).
        drop_last: skip a last batch smaller than ``batch_size``.
        seed: where the shuffling order comes from. An int gives the loader its own generator,
            so the sequence of epochs is the same on every run; a ``numpy.random.Generator``
            is drawn from directly (sharing it with other code); None uses the library's
            generator, seeded by `manual_seed`.

    ``len(loader)`` is the number of batches per epoch.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | np.random.Generator | None = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader needs a dataset with __len__ and __getitem__, got "
                            f"{type(dataset).__name__}")
        if isinstance(seed, bool) or not (seed is None or isinstance(seed, np.random.Generator)
                                          or (isinstance(seed, (int, np.integer)) and seed >= 0)):
            raise ValueError(f"seed must be a non-negative integer, a numpy Generator or None, "
                             f"got {seed!r}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        if self.shuffle:
            order = (self._rng or generator()).permutation(n)
        else:
            order = np.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                return
            yield self._fetch(index)

    def _fetch(self, index: np.ndarray) -> Any:
        if isinstance(self.dataset, TensorDataset):
            return self.dataset[index]  # one fancy-indexing copy per tensor, not one per row
        return _collate([self.dataset[int(i)] for i in index])
