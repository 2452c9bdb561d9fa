"""Build the compared networks and train them, so that every experiment runs the same way.

A network is described by a `NetSpec`; the same seed gives the same initial weights with and
without BatchNorm, because the weights are drawn layer by layer from one seeded generator and
the layers have the same shapes in both (BN adds γ = 1 and β = 0, which are not drawn).

Each hidden block is

    Linear → [BatchNorm1d] → [ShiftNoise] → [Tap] → activation → [Dropout]

* With BatchNorm the Linear has no bias: BN subtracts the batch mean, which removes any
  constant added before it, so that bias would get zero gradient (docs/batchnorm.md).
* Weights are drawn from N(0, (scale·gain)²/fan_in): gain √2 for ReLU layers (He
  initialisation), 1 for sigmoid layers and the output layer; biases start at 0.
  ``init_scale`` multiplies every standard deviation (the init-sweep experiment varies it).
* `Tap` records what enters the activation: the "pre-activation input" whose distribution
  the covariate-shift experiment follows.

Training is plain mini-batch SGD on the cross-entropy loss, counted in steps (mini-batches),
with the loss and accuracy on the whole training and test sets measured in evaluation mode
every ``eval_every`` steps. A run *diverges* when a mini-batch loss stops being finite; it is
stopped there, and the tables count it as diverged instead of averaging its numbers.

Read next: report.py (tables and summaries), then any experiment module.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import nn, optim
from ..data import dropped_rows
from ..function import no_grad
from ..loader import DataLoader, TensorDataset
from ..metrics import accuracy
from ..nn import functional as F
from ..random import manual_seed
from ..tensor import Tensor
from .datasets import Task

__all__ = ["NetSpec", "Tap", "ShiftNoise", "Run", "build_network", "evaluate", "train_network",
           "StepHook"]

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
DISPLAY = {"relu": "ReLU", "sigmoid": "Sigmoid"}
GAINS = {"relu": math.sqrt(2.0), "sigmoid": 1.0}


@dataclass(frozen=True)
class NetSpec:
    """One network of a comparison.

    Args:
        hidden: hidden layer widths.
        batch_norm: put BatchNorm1d between each hidden Linear and its activation.
        dropout: probability of Dropout after each hidden activation (0: none).
        activation: "relu" or "sigmoid".
        init_scale: multiplies the standard deviation of every initial weight.
        noise: the strength of a `ShiftNoise` after each BatchNorm (0: none).
        probe: put a `Tap` before the activation of this hidden layer (0-based; -1: last).
    """

    hidden: tuple = (64, 64, 64, 64)
    batch_norm: bool = False
    dropout: float = 0.0
    activation: str = "relu"
    init_scale: float = 1.0
    noise: float = 0.0
    probe: int | None = None

    def describe(self) -> str:
        """A one-line summary, e.g. ``4 × 64 ReLU, Linear → BN → ReLU``."""
        block = ["Linear"] + (["BN"] if self.batch_norm else []) + \
            ([f"noise {self.noise:g}"] if self.noise else []) + [DISPLAY[self.activation]] + \
            ([f"Dropout({self.dropout:g})"] if self.dropout else [])
        widths = sorted(set(self.hidden))
        width = str(widths[0]) if len(widths) == 1 else "/".join(map(str, self.hidden))
        return f"{len(self.hidden)} hidden layers of {width}, each {' → '.join(block)}"


class Tap(nn.Module):
    """y = x; keeps the values of its latest input in ``last`` (a numpy array)."""

    def __init__(self) -> None:
        super().__init__()
        self.last: np.ndarray | None = None

    def forward(self, input: Tensor) -> Tensor:
        self.last = input.data
        return input


class ShiftNoise(nn.Module):
    """In training, y = s·x + m per feature, with s and m drawn anew at every step.

    Per feature j and forward call, for a strength a: s_j ~ U(1/(1 + a), 1 + a) and
    m_j ~ U(−a, a). Placed after a BatchNorm, it breaks BN's promise of a steady input
    distribution on purpose: the next layer sees a mean and a spread that jump at every step,
    while no information is lost (each feature is only rescaled and shifted). A simplified
    version of the "noisy BatchNorm" of Santurkar et al. (2018), "How does batch normalization
    help optimization?", who drew noise for every activation of every example. In evaluation
    mode it does nothing. ``hold = True`` reuses the latest draw
    (to evaluate the network several times under the noise of one step).
    """

    def __init__(self, strength: float, seed: int) -> None:
        super().__init__()
        if not strength > 0:
            raise ValueError(f"ShiftNoise: strength must be positive, got {strength!r}")
        self.strength = strength
        self.rng = np.random.default_rng(seed)
        self.hold = False
        self.draw: tuple | None = None

    def forward(self, input: Tensor) -> Tensor:
        if not self.training:
            return input
        if not self.hold or self.draw is None:
            a, features = self.strength, input.shape[1]
            self.draw = (self.rng.uniform(1 / (1 + a), 1 + a, features),
                         self.rng.uniform(-a, a, features))
        scale, shift = (Tensor._make(v.astype(input.dtype), False) for v in self.draw)
        return input * scale + shift

    def extra_repr(self) -> str:
        return f"strength={self.strength:g}"


def build_network(spec: NetSpec, inputs: int, classes: int, seed: int) -> nn.Sequential:
    """The network of ``spec`` for ``inputs`` features and ``classes`` logits, initialised from
    ``seed`` (see the module docstring for the layers and the initialisation)."""
    if spec.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got "
                         f"{spec.activation!r}")
    probe = spec.probe % len(spec.hidden) if spec.probe is not None else None
    layers: list = []
    width = inputs
    for index, size in enumerate(spec.hidden):
        layers.append(nn.Linear(width, size, bias=not spec.batch_norm))
        if spec.batch_norm:
            layers.append(nn.BatchNorm1d(size))
            if spec.noise:
                layers.append(ShiftNoise(spec.noise, seed=seed * 1000 + index))
        if index == probe:
            layers.append(Tap())
        layers.append(ACTIVATIONS[spec.activation]())
        if spec.dropout:
            layers.append(nn.Dropout(spec.dropout))
        width = size
    layers.append(nn.Linear(width, classes))
    model = nn.Sequential(*layers)

    rng = np.random.default_rng([seed, 0])
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for i, layer in enumerate(linears):
        gain = GAINS[spec.activation] if i < len(linears) - 1 else 1.0
        std = spec.init_scale * gain / math.sqrt(layer.in_features)
        layer.weight.data[...] = rng.normal(0.0, std, layer.weight.shape)
        if layer.bias is not None:
            layer.bias.data[...] = 0.0
    return model


def evaluate(model: nn.Module, X: np.ndarray, y: np.ndarray) -> tuple:
    """(mean cross-entropy, accuracy) of ``model`` on (X, y), in evaluation mode."""
    was_training = model.training
    model.eval()
    with no_grad(), np.errstate(all="ignore"):
        logits = model(Tensor(X))
        loss = F.cross_entropy(logits, y).item()
        correct = accuracy(logits, y)
    model.train(was_training)
    return loss, correct


# Called after each backward pass, before the SGD step: (step, model, X_batch, y_batch, loss).
StepHook = Callable[[int, nn.Sequential, np.ndarray, np.ndarray, Tensor], None]


@dataclass
class Run:
    """One training run: its settings and measurements.

    ``history`` holds one record per evaluation: step, train_loss, train_accuracy, test_loss,
    test_accuracy (the first at step 0, before any update; the last at the final step).
    Evaluation mode at step 0 means a BN layer still uses its initial running statistics
    (mean 0, variance 1), so it does not normalise yet: ``first_batch_loss``, the loss of the
    first training step (training mode, batch statistics), is the untrained network's loss.
    """

    lr: float
    seed: int
    steps: int
    first_batch_loss: float = math.nan   # the untrained network's loss on its first batch
    diverged_at: int | None = None
    history: list = field(default_factory=list)
    seconds: float = 0.0
    model: Any = field(default=None, repr=False)   # the trained network

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    @property
    def final(self) -> dict:
        return self.history[-1]

    def first_step_below(self, train_loss: float) -> int | None:
        """The first evaluated step whose training-set loss is at most ``train_loss``."""
        for record in self.history:
            if record["train_loss"] <= train_loss:
                return record["step"]
        return None


def _mini_batches(task: Task, batch_size: int, rng: np.random.Generator):
    """Shuffled mini-batches for ever, epoch after epoch (a last batch of one row is dropped:
    BatchNorm needs two rows to compute a variance)."""
    loader = DataLoader(TensorDataset(task.X_train, task.y_train), batch_size, shuffle=True,
                        seed=rng, drop_last=dropped_rows(len(task.X_train), batch_size) > 0)
    while True:
        yield from loader


def train_network(task: Task, spec: NetSpec, *, lr: float, steps: int, seed: int,
                  batch_size: int = 64, eval_every: int = 100,
                  on_step: StepHook | None = None) -> Run:
    """Train the network of ``spec`` on ``task`` with SGD for ``steps`` mini-batches.

    The seed fixes the initial weights, the order of the mini-batches and the dropout masks;
    the same seed gives the same numbers on every run.
    """
    started = time.perf_counter()
    model = build_network(spec, task.features, task.classes, seed)
    manual_seed(seed)  # dropout masks come from the library's generator
    optimizer = optim.SGD(model.parameters(), lr=lr)
    run = Run(lr=lr, seed=seed, steps=steps, model=model)

    def record(step: int) -> None:
        train_loss, train_accuracy = evaluate(model, task.X_train, task.y_train)
        test_loss, test_accuracy = evaluate(model, task.X_test, task.y_test)
        run.history.append({"step": step, "train_loss": train_loss,
                            "train_accuracy": train_accuracy, "test_loss": test_loss,
                            "test_accuracy": test_accuracy})

    record(0)
    batches = _mini_batches(task, batch_size, np.random.default_rng([seed, 1]))
    # Overflow is expected when a run diverges: it is detected below, not reported as warnings.
    with np.errstate(all="ignore"):
        for step in range(1, steps + 1):
            X_batch, y_batch = next(batches)
            loss = F.cross_entropy(model(X_batch), y_batch)
            optimizer.zero_grad()
            loss.backward()
            if step == 1:
                run.first_batch_loss = loss.item()
            if not math.isfinite(loss.item()):
                run.diverged_at = step
                record(step)
                break
            if on_step is not None:
                on_step(step, model, X_batch.data, y_batch.data, loss)
            optimizer.step()
            if step % eval_every == 0 or step == steps:
                record(step)
    run.seconds = time.perf_counter() - started
    return run
