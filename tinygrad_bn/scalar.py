"""Networks and Batch Normalization on scalar `Value`s: every number is a visible graph node.

This is the study companion of tinygrad_bn.nn: too slow for real training, but each mean,
variance and normalised value is its own node, with its own ``.grad`` after backward, so the
course notes' worked example can be followed number by number (see
examples/03_batchnorm_by_hand.py, and ``tinygrad-bn graph --example batchnorm-by-hand``).
"""
from __future__ import annotations

from typing import Sequence

from .graph import collector_paused
from .random import generator
from .value import Value

__all__ = ["Neuron", "Layer", "MLP", "batch_norm"]


class _ScalarModule:
    """What Neuron, Layer and MLP share: a list of parameters and resetting their grads."""

    def parameters(self) -> list[Value]:
        raise NotImplementedError

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


class Neuron(_ScalarModule):
    """y = act(Σᵢ wᵢxᵢ + b), with act = ReLU, or nothing for a linear (output) neuron."""

    def __init__(self, nin: int, nonlinear: bool = True):
        rng = generator()
        self.w = [Value(float(rng.uniform(-1, 1)), label=f"w{i}") for i in range(nin)]
        self.b = Value(0.0, label="b")
        self.nonlinear = nonlinear

    def __call__(self, x: Sequence[Value | float]) -> Value:
        if len(x) != len(self.w):
            raise ValueError(f"Neuron expects {len(self.w)} inputs, got {len(x)}")
        total = self.b
        for wi, xi in zip(self.w, x):
            total = total + wi * xi
        return total.relu() if self.nonlinear else total

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlinear else 'Linear'}Neuron({len(self.w)})"


class Layer(_ScalarModule):
    """nout neurons that read the same inputs."""

    def __init__(self, nin: int, nout: int, nonlinear: bool = True):
        self.neurons = [Neuron(nin, nonlinear) for _ in range(nout)]

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        return [neuron(x) for neuron in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for neuron in self.neurons for p in neuron.parameters()]

    def __repr__(self) -> str:
        return f"Layer([{', '.join(map(repr, self.neurons))}])"


class MLP(_ScalarModule):
    """A multi-layer perceptron: ``MLP(2, [16, 16, 1])`` has ReLU hidden layers and a linear
    output layer. Calling it on one example (a list of numbers) returns a list of Values (or
    one Value when the last layer has a single neuron)."""

    def __init__(self, nin: int, nouts: Sequence[int]):
        sizes = [nin] + list(nouts)
        self.layers = [Layer(sizes[i], sizes[i + 1], nonlinear=i != len(nouts) - 1)
                       for i in range(len(nouts))]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        with collector_paused():  # building a graph: nothing for the collector (graph.py)
            for layer in self.layers:
                x = layer(x)
        return x[0] if len(x) == 1 else x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(map(repr, self.layers))}]"


def batch_norm(batch: Sequence[Sequence[Value | float]], gamma: Sequence[Value | float],
               beta: Sequence[Value | float], eps: float = 1e-5) -> list[list[Value]]:
    """Batch-normalise an m × C batch of Values, feature by feature, as the course notes do.

    For each feature c (column), over the m rows of the batch:

        μ_B = (1/m) Σᵢ xᵢ,   σ²_B = (1/m) Σᵢ (xᵢ − μ_B)²,
        ẑᵢ = (xᵢ − μ_B) / √(σ²_B + ε),   yᵢ = γ·ẑᵢ + β.

    Every intermediate is a labelled Value (``μ_B[c]``, ``σ²_B[c]``, ``ẑ[i,c]``, ``y[i,c]``), so a
    drawn graph and the gradients after backward show each step. The numbers equal those of
    `tinygrad_bn.nn.BatchNorm1d` in training mode (tested to 1e-12 in float64).

    Returns the normalised batch as a list of m rows of C Values.
    """
    m = len(batch)
    if m < 2:
        raise ValueError(f"Expected more than 1 value per channel when training, got a batch "
                         f"of {m} row(s)")
    features = len(batch[0])
    if any(len(row) != features for row in batch):
        raise ValueError("batch_norm: every row of the batch needs the same number of features")
    if len(gamma) != features or len(beta) != features:
        raise ValueError(f"batch_norm: {features} features need as many γ and β, got "
                         f"{len(gamma)} and {len(beta)}")
    out = [[None] * features for _ in range(m)]
    for c in range(features):
        column = [x if isinstance(x, Value) else Value(x) for x in (row[c] for row in batch)]
        mean = sum(column[1:], column[0]) * (1.0 / m)
        mean.label = f"μ_B[{c}]"
        centred = [x - mean for x in column]
        squares = [d ** 2 for d in centred]
        var = sum(squares[1:], squares[0]) * (1.0 / m)
        var.label = f"σ²_B[{c}]"
        std = (var + eps).sqrt()
        std.label = f"√(σ²_B[{c}]+ε)"
        for i, d in enumerate(centred):
            z_hat = d / std
            z_hat.label = f"ẑ[{i},{c}]"
            y = z_hat * gamma[c] + beta[c]
            y.label = f"y[{i},{c}]"
            out[i][c] = y
    return out
