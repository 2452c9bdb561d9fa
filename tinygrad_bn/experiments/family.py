"""What the BatchNorm-family experiments share (placement-order, batch-size, bn-lite, convnet):
networks NetSpec cannot describe, built from one seed, and a few measurements.

* `mlp` — hidden blocks ``Linear → norm → ReLU`` (or ``Linear → ReLU → norm``) with any
  normalisation layer, initialised by `training.init_linears` (the same seed gives the same
  Linear weights to every variant, as in the other experiments);
* `PartialBatchNorm` — BatchNorm with one of its parts switched off (bn-lite);
* `convnet` — Conv → [BatchNorm2d] → ReLU → MaxPool, twice, then Linear, for square images;
* `steps_to_reach`, `train_mode_accuracy`, `block_statistics` — measurements.

Read next: placement_order.py, batch_size.py, bn_lite.py, convnet.py.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import nn
from ..function import no_grad
from ..loader import DataLoader, TensorDataset
from ..metrics import accuracy
from ..random import manual_seed
from ..tensor import Tensor
from .datasets import Task
from .report import mean_pm
from .training import Run, Tap, init_linears, untouched

__all__ = ["NORMS", "PartialBatchNorm", "mlp", "ImageView", "convnet", "steps_to_reach",
           "steps_cell", "train_mode_accuracy", "block_statistics", "task_or_fallback"]

GROUPS = 4   # GroupNorm's groups of the 64-wide hidden layers: 16 features each

# Name → factory(width) of a normalisation layer for (N, width) hidden values.
NORMS: dict = {
    "none": None,
    "BN": lambda width: nn.BatchNorm1d(width),
    "LN": lambda width: nn.LayerNorm(width),
    "GN": lambda width: nn.GroupNorm(GROUPS, width),
}


class PartialBatchNorm(nn.Module):
    """BatchNorm1d with parts removed, to see which part does the work:

        center only:  y = γ·(x − μ_B) + β          (no division by the spread)
        scale only:   y = γ·x / √(σ²_B + ε) + β    (no subtraction of the mean; σ²_B is still
                                                    the variance around the batch mean)

    Running estimates of μ and σ² (PyTorch's momentum rule) stand in for the batch
    statistics in evaluation mode, as in BatchNorm. Built from primitive ops.
    """

    def __init__(self, num_features: int, center: bool, scale: bool, eps: float = 1e-5,
                 momentum: float = 0.1):
        super().__init__()
        if not (center or scale):
            raise ValueError("PartialBatchNorm needs center or scale (or use nn.Identity)")
        self.center, self.scale, self.eps, self.momentum = center, scale, eps, momentum
        self.weight = nn.Parameter(np.ones(num_features, dtype=np.float32))
        self.bias = nn.Parameter(np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))

    def forward(self, input: Tensor) -> Tensor:
        if self.training:
            mean = input.mean(0, keepdims=True)
            var = ((input - mean) * (input - mean)).mean(0, keepdims=True)
            n = input.shape[0]
            m = self.momentum
            self.running_mean.data[...] = (1 - m) * self.running_mean.data + m * mean.data[0]
            self.running_var.data[...] = ((1 - m) * self.running_var.data
                                          + m * var.data[0] * n / max(n - 1, 1))
        else:
            mean = Tensor._make(self.running_mean.data[None, :], False)
            var = Tensor._make(self.running_var.data[None, :], False)
        out = input - mean if self.center else input
        if self.scale:
            out = out / (var + self.eps).sqrt()
        return out * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"center={self.center}, scale={self.scale}"


def mlp(norm: Callable[[int], nn.Module] | None, *, hidden: tuple = (64, 64, 64),
        order: str = "before", taps: bool = False) -> Callable[[int, int, int], nn.Module]:
    """A builder ``(inputs, classes, seed) → model`` for `train_network`'s ``network``.

    Each hidden block is ``Linear → norm → ReLU`` (order "before": the norm before the
    nonlinearity, as the paper puts it) or ``Linear → ReLU → norm`` ("after"). The Linear has
    no bias when a norm follows it directly (the norm would remove it). With ``taps``, a
    `Tap` after each ReLU (``"act"``) and at the end of each block (``"out"``) records what
    flows there, for `block_statistics`.
    """
    if order not in ("before", "after"):
        raise ValueError(f"order must be 'before' or 'after', got {order!r}")

    def build(inputs: int, classes: int, seed: int) -> nn.Module:
        layers: list = []
        width = inputs
        for size in hidden:
            direct = norm is not None and order == "before"
            layers.append(nn.Linear(width, size, bias=not direct))
            block = [nn.ReLU()] + ([Tap()] if taps else [])
            if norm is not None:
                block = [norm(size)] + block if order == "before" else block + [norm(size)]
            layers += block + ([Tap()] if taps else [])
            width = size
        layers.append(nn.Linear(width, classes))
        model = nn.Sequential(*layers)
        init_linears(model, seed)
        return model

    return build


class ImageView(nn.Module):
    """(N, side²) rows of pixels → (N, 1, side, side) images (how the tasks store images)."""

    def __init__(self, side: int):
        super().__init__()
        self.side = side

    def forward(self, input: Tensor) -> Tensor:
        return input.reshape(-1, 1, self.side, self.side)

    def extra_repr(self) -> str:
        return f"side={self.side}"


def convnet(batch_norm: bool, channels: tuple = (16, 32)) -> Callable[[int, int, int], Any]:
    """A builder for ``Conv(3×3, pad 1) → [BatchNorm2d] → ReLU → MaxPool(2)``, twice, then
    Flatten → Linear, on square images given as rows of side² pixels.

    Convolutions get no bias before BatchNorm2d; weights have PyTorch's default initialisation
    (`nn.Conv2d`, `nn.Linear`) drawn from ``manual_seed(seed)``, so both variants start from the
    same kernels.
    """

    def build(inputs: int, classes: int, seed: int) -> nn.Module:
        side = int(round(math.sqrt(inputs)))
        if side * side != inputs or side % 4:
            raise ValueError(f"convnet needs square images with a side divisible by 4, got "
                             f"{inputs} pixels per row")
        manual_seed(seed)
        layers: list = [ImageView(side)]
        width = 1
        for size in channels:
            layers.append(nn.Conv2d(width, size, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(size))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            width = size
        layers += [nn.Flatten(), nn.Linear(width * (side // 4) ** 2, classes)]
        return nn.Sequential(*layers)

    return build


def steps_to_reach(run: Run, train_loss: float) -> float:
    """The first evaluated step whose training loss is at most ``train_loss`` (NaN: never)."""
    step = None if run.diverged else run.first_step_below(train_loss)
    return math.nan if step is None else float(step)


def steps_cell(steps: list) -> str:
    """"mean ± sd" of the runs that got there, and how many never did (NaN in `steps`)."""
    reached = [s for s in steps if math.isfinite(s)]
    text = mean_pm(reached, 0) if reached else "never"
    missing = len(steps) - len(reached)
    return text if missing == 0 or not reached else f"{text} ({missing}/{len(steps)} never)"


def train_mode_accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray, batch_size: int,
                        seed: int = 0) -> float:
    """Accuracy with the model in *training* mode, on shuffled batches of ``batch_size`` — what
    a BN layer computes while it trains (batch statistics); the running statistics are left
    as they were. Layers without batch statistics give their evaluation-mode answer."""
    was_training = model.training
    model.train()
    correct = 0
    batches = DataLoader(TensorDataset(X, y), batch_size, shuffle=True, seed=seed,
                         drop_last=len(X) % batch_size == 1)
    counted = 0
    with no_grad(), untouched(model), np.errstate(all="ignore"):
        for X_batch, y_batch in batches:
            correct += accuracy(model(X_batch), y_batch) * len(y_batch.data)
            counted += len(y_batch.data)
    model.train(was_training)
    return correct / counted


def block_statistics(model: nn.Module, X: np.ndarray) -> dict:
    """On ``X`` in evaluation mode, for the last hidden block: the mean |mean| and the mean
    standard deviation of its output features (what the next Linear receives), and the
    fraction of ReLU units that are zero for every example ("dead"). Needs ``taps=True``."""
    taps = [m for m in model.modules() if isinstance(m, Tap)]
    if len(taps) < 2:
        raise ValueError("block_statistics needs a model built with taps=True")
    was_training = model.training
    model.eval()
    with no_grad(), np.errstate(all="ignore"):
        model(Tensor(X))
    model.train(was_training)
    act_tap, out_tap = taps[-2], taps[-1]
    out = out_tap.last.astype(np.float64)
    return {"abs_mean": float(np.abs(out.mean(axis=0)).mean()),
            "std": float(out.std(axis=0).mean()),
            "dead": float(np.mean(np.all(act_tap.last == 0, axis=0)))}


def task_or_fallback(load: Callable[[], Task], fallback: Callable[[], Task]) -> tuple:
    """(task, note): the real data set when installed, else the synthetic fallback and a note
    saying so."""
    from ..datasets import DatasetUnavailable

    try:
        return load(), ""
    except DatasetUnavailable as missing:
        return fallback(), f"real data unavailable ({missing}); used synthetic data instead"
