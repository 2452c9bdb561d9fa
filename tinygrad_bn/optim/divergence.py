"""`DivergenceError` and `check_loss`: the opt-in guard that stops training when it diverges.

Too large a learning rate makes the updates overshoot until the weights overflow and the loss
becomes ``inf`` or ``nan``. Nothing fails by itself after that — every later update is ``nan``
too — so a loop that does not look ends with a useless model that still "trained". Calling
``check_loss(loss, step=..., epoch=...)`` once per step turns that moment into an exception
that says where it happened:

    for step, (x, y) in enumerate(batches, start=1):
        loss = loss_fn(model(x), y)
        check_loss(loss, step=step)          # raises DivergenceError if loss is nan or ±inf
        optimizer.zero_grad(); loss.backward(); optimizer.step()

`placement.train` (and so ``tinygrad-bn train``) always checks; the experiments catch the
error to count diverged runs.
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["DivergenceError", "check_loss"]


class DivergenceError(FloatingPointError):
    """Training diverged: the loss stopped being a finite number.

    Attributes: ``loss`` (the non-finite value), ``step`` and ``epoch`` (None when not given).
    """

    def __init__(self, loss: float, step: int, epoch: int | None = None) -> None:
        self.loss, self.step, self.epoch = loss, step, epoch
        where = f"step {step}" if epoch is None else f"epoch {epoch}, step {step}"
        super().__init__(f"training diverged at {where}: the loss became {loss}; try a "
                         "smaller learning rate")


def check_loss(loss: Any, *, step: int, epoch: int | None = None) -> float:
    """Return ``loss`` (a Tensor with one element, or a number) as a float if it is finite;
    raise `DivergenceError` naming ``step`` (and ``epoch``) if it is ``nan`` or ``±inf``."""
    value = float(loss.item() if hasattr(loss, "item") else loss)
    if not math.isfinite(value):
        raise DivergenceError(value, step, epoch)
    return value
