"""`accuracy`: the fraction of examples a classifier gets right.

Read next: loader.py (mini-batches) and placement.py (a training loop that reports this).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["accuracy", "predicted_classes"]


def _array(value: Any) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def predicted_classes(output: Any) -> np.ndarray:
    """The class each row of a model's output predicts.

    * (N, C) class scores with C ≥ 2 (logits or probabilities): the largest, ``argmax`` over
      axis 1;
    * (N,) or (N, 1) binary logits z: class 1 when z ≥ 0, i.e. when σ(z) ≥ 0.5.
    """
    scores = _array(output)
    if scores.ndim == 2 and scores.shape[1] > 1:
        return np.argmax(scores, axis=1)
    if scores.ndim == 1 or (scores.ndim == 2 and scores.shape[1] == 1):
        return (scores.reshape(-1) >= 0).astype(np.int64)
    raise ValueError(f"accuracy expects (N, C) class scores or (N,)/(N, 1) binary logits, got "
                     f"shape {scores.shape}")


def accuracy(output: Any, target: Any) -> float:
    """Fraction of rows whose predicted class (see `predicted_classes`) equals ``target``.

    Example:
        >>> accuracy(Tensor([[2.0, 1.0], [0.0, 3.0]]), [0, 0])
        0.5
    """
    predicted = predicted_classes(output)
    actual = _array(target).reshape(-1)
    if actual.shape != predicted.shape:
        raise ValueError(f"accuracy: {len(predicted)} predictions but target has shape "
                         f"{_array(target).shape}")
    return float(np.mean(predicted == actual))
