"""The benchmark: one training step of the same network in tinygrad_bn, numpy, PyTorch, micrograd.

A *step* is what a training loop repeats: forward, loss, backward, SGD update, zero_grad. Each
configuration is an MLP of Linear → BatchNorm1d → ReLU blocks and a Linear output, in float32:

    config     layer sizes              batch  loss
    placement  2 → 16 → 16 → 1          32     BCE-with-logits (the placement example)
    medium     784 → 256 → 256 → 10     128    cross-entropy
    large      784 → 1024 → 1024 → 10   512    cross-entropy

The engines:

* ``tinygrad_bn`` — the library exactly as a user writes it (nn.Sequential, the loss module,
  optim.SGD): no private fast path;
* ``numpy`` — the same step written by hand, no graph and no autodiff, with the closed-form
  BatchNorm backward (`NumpyMLP`): the practical floor for an engine built on numpy;
* ``torch`` — PyTorch eager on the CPU, when it is installed;
* the scalar row: `tinygrad_bn.Value` against micrograd (when installed) on micrograd's moons
  demo, each engine in fresh interpreters (`_measure_scalar` says why).

How it measures:

1. Agreement first: from the same weights and batch, one float64 step of every engine must
   leave the same parameters and running statistics (`check_agreement`); an engine whose
   formulas are wrong is never timed.
2. Interleaved timing (`time_interleaved`): a block of steps of each engine in turn, in a
   rotating order, repeated; the table shows the median per step and the 25th–75th percentile.
   With one thread the clock is the process's CPU time (user + system): a busy neighbour on a
   shared machine delays a process but adds little to its CPU time (``--clock wall`` for
   elapsed time, the default with more threads, whose CPU times add up).
3. A pinned environment (`main` re-runs itself in a fresh interpreter to set it): every engine
   gets the same number of BLAS/OpenMP threads, and glibc's allocator keeps freed memory for
   reuse instead of handing it back to the kernel after every step. Without that, whether a
   step re-faults its pages depends on the heap's history rather than on the engine, and on a
   virtual machine the faults can cost as much as the arithmetic (``--malloc default`` shows
   it; the page-fault counts are printed either way). docs/performance.md has the details.
4. Hooks: the placement step through ``Module.__call__`` (which looks for hooks) against the
   same layers' ``forward`` called directly (`DirectForwardMLP`) — what the hook machinery
   costs when no hook is registered — and with a training monitor attached (`MonitoredMLP`).

Run it with ``python benchmarks/run.py [--quick]`` or ``tinygrad-bn bench``.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Sequence

import numpy as np

from . import nn, optim
from .graph import collector_paused
from .jit import jit
from .random import manual_seed
from .scalar import MLP
from .tensor import Tensor
from .value import Value

try:
    import resource  # Unix only: page-fault counts
except ImportError:  # pragma: no cover - Windows
    resource = None

__all__ = ["Config", "CONFIGS", "TARGETS", "EagerStep", "NumpyMLP", "TinygradMLP",
           "DirectForwardMLP", "MonitoredMLP", "TorchMLP", "CompiledMLP", "build_engines",
           "check_agreement", "initial_state", "make_batch", "moons", "scalar_step",
           "time_interleaved", "main"]

EPS = 1e-5             # BatchNorm's ε, as in PyTorch
BN_MOMENTUM = 0.1      # BatchNorm's running-average weight (not the optimizer's momentum)
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# glibc reads these at start-up: never give freed memory back (trim) and serve every array up
# to 32 MiB (the largest value glibc accepts) from the reusable heap instead of fresh mmaps.
KEEP_FREED_MEMORY = {"MALLOC_TRIM_THRESHOLD_": str(2**30), "MALLOC_MMAP_THRESHOLD_": str(2**25)}
PINNED_MARK = "TINYGRAD_BN_BENCH_PINNED"   # set in the re-run interpreter
BLAS_NOTE = "TINYGRAD_BN_BENCH_BLAS"       # the re-run interpreter's BLAS line, for the report
# OpenBLAS's kernel family for CPUs with AVX-512 (F, BW, DQ, VL and CD: what it needs)
AVX512_CORE, AVX512_FLAGS = "SkylakeX", {"avx512f", "avx512bw", "avx512dq", "avx512vl",
                                         "avx512cd"}
# Kernel families without AVX-512, which OpenBLAS may pick on a CPU it does not recognise
AVX2_CORES = {"Haswell", "Zen", "SandyBridge", "Nehalem", "Prescott", "Core2", "Penryn"}


@dataclass(frozen=True)
class Config:
    """One benchmarked network: layer sizes, batch size, loss and learning rate."""

    name: str
    sizes: tuple          # (inputs, hidden..., outputs)
    batch: int
    loss: str             # "bce" (one logit per row) or "ce" (class logits)
    lr: float = 0.05
    activation: str = "relu"   # or "sigmoid" (the paper's setup)


CONFIGS = (
    Config("placement", (2, 16, 16, 1), 32, "bce"),
    Config("medium", (784, 256, 256, 10), 128, "ce"),
    Config("large", (784, 1024, 1024, 10), 512, "ce"),
    # The Batch Normalization paper's MNIST network: three sigmoid layers of 100 with BN.
    Config("paper", (784, 100, 100, 100, 10), 60, "ce", activation="sigmoid"),
)


@dataclass(frozen=True)
class Target:
    """A goal of the performance issue: the measured ratio must be ≤ (or ≥) ``goal``."""

    text: str
    goal: float
    at_most: bool = True

    def passed(self, measured: float) -> bool:
        return measured <= self.goal if self.at_most else measured >= self.goal


TARGETS = {
    "placement-compiled": Target("placement step, compiled / hand numpy", 0.60),
    "placement": Target("placement step, eager / hand numpy", 1.20),
    "medium-compiled": Target("medium 784→256→256→10 b128, compiled / hand numpy", 1.00),
    "large-compiled": Target("large 784→1024→1024→10 b512, compiled / hand numpy", 1.00),
    "paper-compiled": Target("paper setup 784→100×3→10 sigmoid+BN b60, compiled / PyTorch", 0.5),
    "medium": Target("medium step: tinygrad_bn / numpy", 1.1),
    "large": Target("large step: tinygrad_bn / numpy", 1.1),
    "scalar": Target("scalar engine: micrograd's moons step, micrograd / ours", 20.0,
                     at_most=False),
    "gc": Target("scalar engine: 10⁶-node graph, gc on / gc off", 1.5),
    "rss": Target("memory: RSS after 10 000 compiled placement steps / after 1 000", 1.05),
    "peak": Target("peak memory of one large step: tinygrad_bn / numpy", 1.5),
    "convnet": Target("convnet step (batch 64, 1×28×28): tinygrad_bn / torch", 1.0),
    "hooks": Target("placement step, no hook registered: Module.__call__ / forward() called "
                    "directly", 1.05),
}


@dataclass(frozen=True)
class Plan:
    """How long to measure: the full run, or the quick one (CI and ``tinygrad-bn bench``)."""

    repeats: int           # interleaved rounds per configuration
    block_seconds: float   # each block of steps lasts at least this long
    scalar_rounds: int     # fresh interpreters per scalar engine
    scalar_steps: int      # timed steps in each of them (after one untimed step)
    flat_steps: tuple = (1000, 10000)   # resident memory is read after this many steps
    gc_nodes: int = 1_000_000           # size of the scalar graph timed with gc on and off


FULL = Plan(repeats=40, block_seconds=0.05, scalar_rounds=3, scalar_steps=4)
QUICK = Plan(repeats=9, block_seconds=0.02, scalar_rounds=1, scalar_steps=3, gc_nodes=200_000)


# --- the network's starting point, shared by every engine -------------------------------------

def initial_state(config: Config, seed: int = 0) -> dict:
    """Weights and buffers under PyTorch's ``state_dict`` keys, with PyTorch's initialisation.

    Layers are numbered as in ``Sequential(Linear, BatchNorm1d, ReLU, …, Linear)``: block i has
    its Linear at index 3i and its BatchNorm1d at 3i + 1.
    """
    rng = np.random.default_rng(seed)
    state = {}
    sizes = config.sizes
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1.0 / np.sqrt(fan_in)
        state[f"{3 * i}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        state[f"{3 * i}.bias"] = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        if i < len(sizes) - 2:
            bn = f"{3 * i + 1}."
            state[bn + "weight"] = np.ones(fan_out, np.float32)
            state[bn + "bias"] = np.zeros(fan_out, np.float32)
            state[bn + "running_mean"] = np.zeros(fan_out, np.float32)
            state[bn + "running_var"] = np.ones(fan_out, np.float32)
            state[bn + "num_batches_tracked"] = np.array(0, np.int64)
    return state


def make_batch(config: Config, seed: int = 1) -> tuple:
    """A batch of standard-normal inputs and its targets: 0/1 of shape (N, 1), or classes."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((config.batch, config.sizes[0])).astype(np.float32)
    if config.loss == "bce":
        target = (rng.random((config.batch, 1)) < 0.5).astype(np.float32)
    else:
        target = rng.integers(0, config.sizes[-1], config.batch)
    return x, target


# --- the engines: each builds the network from the state and offers step() and state_dict() ---

class NumpyMLP:
    """The step written by hand in numpy: no graph, no autodiff, closed-form BatchNorm backward.

    Written the way a careful person writes numpy, it does only the arithmetic the step needs,
    so its time is the floor for an engine built on numpy.
    """

    name = "numpy"

    def __init__(self, config: Config, state: dict, x: np.ndarray, target: np.ndarray):
        self.state = {key: value.copy() for key, value in state.items()}
        self.blocks = len(config.sizes) - 2
        self.lr, self.loss, self.x, self.target = config.lr, config.loss, x, target
        self.sigmoid = config.activation == "sigmoid"

    def step(self) -> float:
        s, n = self.state, len(self.x)
        saved = []                                   # what backward needs from each block
        h = self.x
        for i in range(self.blocks):
            lin, bn = f"{3 * i}.", f"{3 * i + 1}."
            z = h @ s[lin + "weight"].T              # Linear
            z += s[lin + "bias"]
            mean = z.mean(axis=0)                    # BatchNorm with batch statistics
            centred = z - mean
            var = (centred * centred).mean(axis=0)
            istd = 1.0 / np.sqrt(var + EPS)
            x_hat = centred * istd
            out = x_hat * s[bn + "weight"] + s[bn + "bias"]             # γ·x̂ + β
            out = 1 / (1 + np.exp(-out)) if self.sigmoid else np.maximum(out, 0)
            s[bn + "running_mean"] *= 1 - BN_MOMENTUM
            s[bn + "running_mean"] += BN_MOMENTUM * mean
            s[bn + "running_var"] *= 1 - BN_MOMENTUM
            s[bn + "running_var"] += BN_MOMENTUM * (n / (n - 1)) * var
            s[bn + "num_batches_tracked"] += 1
            saved.append((h, x_hat, istd, out))
            h = out
        last = f"{3 * self.blocks}."
        logits = h @ s[last + "weight"].T + s[last + "bias"]

        if self.loss == "bce":    # ℓ = max(x, 0) − x·y + log(1 + e^−|x|);  ∂ℓ/∂x = σ(x) − y
            y = self.target
            loss = np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits))))
            grad = (1 / (1 + np.exp(-logits)) - y) / n
        else:                     # ℓ = −log softmax(x)[y];  ∂ℓ/∂x = softmax(x) − onehot(y)
            rows = np.arange(n)
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss = -log_probs[rows, self.target].mean()
            grad = np.exp(log_probs)
            grad[rows, self.target] -= 1
            grad /= n

        grads = {last + "weight": grad.T @ h, last + "bias": grad.sum(axis=0)}
        grad_h = grad @ s[last + "weight"]
        for i in reversed(range(self.blocks)):
            lin, bn = f"{3 * i}.", f"{3 * i + 1}."
            h, x_hat, istd, out = saved[i]
            grad_a = grad_h * (out * (1 - out) if self.sigmoid else out > 0)  # σ' or ReLU'
            grad_beta = grad_a.sum(axis=0)                    # BatchNorm, closed form
            grad_gamma = (grad_a * x_hat).sum(axis=0)
            grad_z = (s[bn + "weight"] * istd) * (grad_a - grad_beta / n
                                                  - x_hat * (grad_gamma / n))
            grads[bn + "weight"], grads[bn + "bias"] = grad_gamma, grad_beta
            grads[lin + "weight"], grads[lin + "bias"] = grad_z.T @ h, grad_z.sum(axis=0)
            if i > 0:
                grad_h = grad_z @ s[lin + "weight"]
        for key, g in grads.items():                          # SGD
            s[key] -= self.lr * g
        return float(loss)

    def state_dict(self) -> dict:
        return self.state


class EagerStep:
    """forward, loss, backward, SGD step, zero_grad: the step as a user writes it, against
    PyTorch's API — which tinygrad_bn shares, so the same code steps either framework's model.
    Subclasses set ``model``, ``loss_fn``, ``optimizer``, ``x`` and ``target``."""

    def step(self) -> float:
        loss = self.loss_fn(self.model(self.x), self.target)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss.item()


class _EagerMLP(EagerStep):
    """The benchmark's MLP, built with either framework's ``nn`` and ``optim``."""

    def _build(self, nn_module: Any, optim_module: Any, config: Config, state: dict,
               dtype: Any) -> None:
        layers: list = []
        for fan_in, fan_out in zip(config.sizes[:-2], config.sizes[1:-1]):
            activation = nn_module.Sigmoid if config.activation == "sigmoid" else nn_module.ReLU
            layers += [nn_module.Linear(fan_in, fan_out), nn_module.BatchNorm1d(fan_out),
                       activation()]
        layers.append(nn_module.Linear(config.sizes[-2], config.sizes[-1]))
        # Cast before loading: load_state_dict copies into the parameters' own dtype.
        self.model = nn_module.Sequential(*layers).to(dtype)
        self.model.load_state_dict(state)
        self.optimizer = optim_module.SGD(self.model.parameters(), lr=config.lr)
        self.loss_fn = (nn_module.BCEWithLogitsLoss() if config.loss == "bce"
                        else nn_module.CrossEntropyLoss())


class TinygradMLP(_EagerMLP):
    """The step as a user writes it with tinygrad_bn."""

    name = "tinygrad_bn"

    def __init__(self, config: Config, state: dict, x: np.ndarray, target: np.ndarray):
        self._build(nn, optim, config, state, x.dtype)
        self.x, self.target = Tensor(x), target

    def state_dict(self) -> dict:
        return self.model.state_dict()


class CompiledMLP(TinygradMLP):
    """The same tinygrad_bn step compiled with `tinygrad_bn.jit`: traced, then replayed."""

    name = "compiled"

    def __init__(self, config: Config, state: dict, x: np.ndarray, target: np.ndarray):
        super().__init__(config, state, x, target)
        self.y = Tensor(target)
        self.compiled = jit(self.eager_step)

    def eager_step(self, x: Tensor, y: Tensor) -> Tensor:
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss

    def step(self) -> float:
        return self.compiled(self.x, self.y).item()


def _call_without_hooks(module: Any, *args: Any) -> Any:
    """What ``module(*args)`` costs with no hook machinery: one call, then ``forward``."""
    if isinstance(module, nn.Sequential):
        for layer in module:
            args = (_call_without_hooks(layer, *args),)
        return args[0]
    return module.forward(*args)


class DirectForwardMLP(TinygradMLP):
    """The tinygrad_bn step with ``Module.__call__`` replaced by a plain call of ``forward``
    (`_call_without_hooks`): the step as it would cost with no hook check at all."""

    name = "forward() directly"

    def step(self) -> float:
        loss = _call_without_hooks(self.loss_fn, _call_without_hooks(self.model, self.x),
                                   self.target)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss.item()


class MonitoredMLP(TinygradMLP):
    """The tinygrad_bn step with a `monitor.Monitor` attached, recording every 10th step."""

    name = "with a Monitor (every 10)"

    def __init__(self, config: Config, state: dict, x: np.ndarray, target: np.ndarray):
        super().__init__(config, state, x, target)
        from .monitor import Monitor  # only this engine needs it
        self.monitor = Monitor(self.model, every=10)

    def step(self) -> float:
        loss = super().step()
        self.monitor.step()
        return loss


class TorchMLP(_EagerMLP):
    """The step in PyTorch eager mode (float32, CPU)."""

    name = "torch"

    def __init__(self, config: Config, state: dict, x: np.ndarray, target: np.ndarray):
        import torch

        self.x, self.target = torch.from_numpy(x), torch.from_numpy(target)
        self._build(torch.nn, torch.optim, config,
                    {k: torch.from_numpy(v.copy()) for k, v in state.items()}, self.x.dtype)

    def state_dict(self) -> dict:
        return {k: v.detach().numpy() for k, v in self.model.state_dict().items()}


def build_engines(config: Config, with_torch: bool, dtype: Any = np.float32) -> list:
    """tinygrad_bn, compiled, numpy (and torch) engines from the same initial state and batch,
    with floating parameters, buffers and inputs in ``dtype``."""
    state = {key: value.astype(dtype) if value.dtype.kind == "f" else value
             for key, value in initial_state(config).items()}
    x, target = make_batch(config)
    x = x.astype(dtype)
    if target.dtype.kind == "f":
        target = target.astype(dtype)
    kinds = [TinygradMLP, CompiledMLP, NumpyMLP] + ([TorchMLP] if with_torch else [])
    return [kind(config, state, x, target) for kind in kinds]


# Tolerances for a float64 step: rounding leaves ~1e-15 relative; a wrong formula leaves far more.
AGREEMENT_64 = {"rtol": 1e-9, "atol": 1e-12}


def check_agreement(engines: Sequence[Any], rtol: float = 1e-4, atol: float = 1e-5) -> dict:
    """Run one step of each engine and compare every parameter and buffer with numpy's.

    Returns {engine name: largest |difference|}. Raises RuntimeError naming the first entry
    that disagrees: rounding differs between libraries, a wrong formula does far more.

    The benchmark checks engines built in float64 (``build_engines(..., dtype=np.float64)``)
    with a tight tolerance. In float32 a library's rounding, a few 1e-6 in a BatchNorm output,
    can move a value that sits next to ReLU's kink to its other side; that row's gradient then
    differs by its whole size, and a large network has such values in every batch.
    """
    for engine in engines:
        engine.step()
    reference = next(e for e in engines if e.name == "numpy").state_dict()
    worst = {}
    for engine in engines:
        ours = engine.state_dict()
        if sorted(ours) != sorted(reference):
            raise RuntimeError(f"{engine.name}: state keys {sorted(ours)} differ from numpy's")
        worst[engine.name] = 0.0
        for key, expected in reference.items():
            value = np.asarray(ours[key], dtype=np.float64)
            difference = float(np.max(np.abs(value - expected)))
            if not np.allclose(value, expected, rtol=rtol, atol=atol):
                raise RuntimeError(f"{engine.name} disagrees with numpy on {key!r} after one "
                                   f"step: max |Δ| = {difference:.3g}")
            worst[engine.name] = max(worst[engine.name], difference)
    return worst


# --- timing -----------------------------------------------------------------------------------

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


@dataclass
class Timing:
    """Seconds per step and minor page faults per step, one number per block."""

    seconds: list
    faults: list

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def spread(self) -> tuple:
        """(25th, 75th) percentile of the per-block times."""
        if len(self.seconds) < 2:
            return self.median, self.median
        quartiles = statistics.quantiles(self.seconds, n=4, method="inclusive")
        return quartiles[0], quartiles[2]


def _page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def _time_block(step: Callable[[], Any], steps: int, clock: Callable[[], float]) -> tuple:
    """(seconds per step, page faults per step) over ``steps`` consecutive steps."""
    faults, start = _page_faults(), clock()
    for _ in range(steps):
        step()
    return (clock() - start) / steps, (_page_faults() - faults) / steps


def time_interleaved(engines: Sequence[Any], plan: Plan, clock: Callable[[], float],
                     warmup: int = 3) -> dict:
    """Time every engine in rounds: one block of steps each, the order rotating every round.

    All blocks have the same number of steps, chosen so that the slowest engine's block lasts
    at least ``plan.block_seconds``. Returns {engine name: Timing}.
    """
    for engine in engines:
        for _ in range(warmup):
            engine.step()
    slowest = max(_time_block(engine.step, 1, clock)[0] for engine in engines)
    steps = max(1, int(np.ceil(plan.block_seconds / max(slowest, 1e-9))))
    timings = {engine.name: Timing([], []) for engine in engines}
    for round_ in range(plan.repeats):
        shift = round_ % len(engines)
        for engine in list(engines[shift:]) + list(engines[:shift]):
            seconds, faults = _time_block(engine.step, steps, clock)
            timings[engine.name].seconds.append(seconds)
            timings[engine.name].faults.append(faults)
    return timings


# --- memory -----------------------------------------------------------------------------------

def resident_memory() -> int | None:
    """This process's resident set size in bytes (Linux /proc; None where unavailable)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_step_memory(engine: Any) -> int:
    """Peak bytes allocated during one step, above what was allocated before it (tracemalloc).

    numpy reports its array buffers to tracemalloc, so this counts the graph, the gradients
    and the temporaries a step creates. (PyTorch's allocator is invisible to it.)
    """
    engine.step()                      # any lazily created state exists already
    gc.collect()
    tracemalloc.start()
    try:
        engine.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def _flatness_worker(counts: Sequence[int]) -> dict:
    """Resident memory after each count of compiled placement steps (a fresh interpreter)."""
    config = CONFIGS[0]
    engine = CompiledMLP(config, initial_state(config), *make_batch(config))
    readings, done = [], 0
    for count in counts:
        for _ in range(count - done):
            engine.step()
        done = count
        readings.append(resident_memory())
    return {"steps": list(counts), "rss": readings}


# --- the scalar engines: micrograd's moons demo -----------------------------------------------

def moons(n: int = 100, noise: float = 0.1, seed: int = 0) -> tuple:
    """Two interleaving half circles with labels ±1 (what sklearn's make_moons draws)."""
    rng = np.random.default_rng(seed)
    outer, inner = n // 2, n - n // 2
    t_outer, t_inner = np.linspace(0, np.pi, outer), np.linspace(0, np.pi, inner)
    points = np.vstack([np.column_stack([np.cos(t_outer), np.sin(t_outer)]),
                        np.column_stack([1 - np.cos(t_inner), 0.5 - np.sin(t_inner)])])
    points += rng.normal(scale=noise, size=points.shape)
    labels = np.concatenate([-np.ones(outer), np.ones(inner)])
    return points.tolist(), labels.tolist()


def scalar_step(model: Any, value: type, points: list, labels: list, lr: float = 0.1) -> float:
    """One step of micrograd's demo: max-margin loss + L2 over all points, backward, update.

    The same code drives both engines; ``value`` is the engine's Value class.
    """
    scores = [model([value(x) for x in point]) for point in points]
    losses = [(1 + -label * score).relu() for label, score in zip(labels, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    total = data_loss + reg_loss
    model.zero_grad()
    total.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return total.data


def _scalar_worker(engine: str, steps: int, clock_name: str) -> dict:
    """Build the demo's MLP(2, [16, 16, 1]) in ``engine``, step once, then time ``steps`` steps.

    Both engines start from the weights tinygrad_bn's seeded generator draws (micrograd's
    parameters are overwritten with them), so their parameters after the first step can be
    compared. The garbage collector stays on, as in any program.
    """
    manual_seed(0)
    model, value = MLP(2, [16, 16, 1]), Value
    if engine == "micrograd":
        import micrograd.engine
        import micrograd.nn

        ours = model
        model, value = micrograd.nn.MLP(2, [16, 16, 1]), micrograd.engine.Value
        for theirs, mine in zip(model.parameters(), ours.parameters()):
            theirs.data = mine.data
    points, labels = moons()
    scalar_step(model, value, points, labels)
    after_one_step = [p.data for p in model.parameters()]
    clock = CLOCKS[clock_name]
    times = [_time_block(lambda: scalar_step(model, value, points, labels), 1, clock)[0]
             for _ in range(steps)]
    return {"times": times, "parameters": after_one_step}


def _gc_worker(mode: str, nodes: int, clock_name: str) -> dict:
    """Build a ``nodes``-node Value graph and backpropagate through it, with the collector on
    (the library's documented strategy: build inside `collector_paused`; backward pauses it
    itself) or off for the whole process. Seconds per node, build and backward together."""
    if mode == "off":
        gc.disable()
    leaves = [Value(float(i % 7)) for i in range(1000)]
    clock = CLOCKS[clock_name]
    start = clock()
    with collector_paused():
        total = Value(0.0)
        for i in range(nodes // 2):        # two nodes per turn: a product and a sum
            total = total + leaves[i % 1000] * 0.5
    total.backward()
    del total                              # freed by reference counting, graph and all
    return {"seconds_per_node": (clock() - start) / nodes}


def _measure_gc(plan: Plan, clock_name: str) -> dict:
    """Alternate fresh interpreters with the collector on and off; median seconds per node."""
    times: dict = {"on": [], "off": []}
    for _ in range(max(plan.scalar_rounds, 1)):
        for mode in times:
            result = _run_worker("gc", mode, str(plan.gc_nodes), clock_name)
            times[mode].append(result["seconds_per_node"])
    return {mode: statistics.median(values) for mode, values in times.items()}


def _run_worker(kind: str, *arguments: str) -> dict:
    """Run ``python -m tinygrad_bn.benchmark --worker kind arguments`` and read its JSON."""
    command = [sys.executable, "-m", "tinygrad_bn.benchmark", "--worker", kind, *arguments]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {kind} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure_scalar(plan: Plan, clock_name: str) -> dict | None:
    """Alternate fresh interpreters for micrograd and tinygrad_bn; None without micrograd.

    Fresh interpreters are the fair set-up for a benchmark bound by the garbage collector:
    micrograd leaves cyclic garbage that would otherwise be collected on the next engine's
    clock, and each full collection costs in proportion to every object alive (importing
    torch alone adds ~150 000 of them).
    """
    try:
        import micrograd  # noqa: F401
    except ImportError:
        return None
    times: dict = {"micrograd": [], "tinygrad_bn": []}
    parameters = {}
    for _ in range(plan.scalar_rounds):
        for engine in times:
            result = _run_worker(f"scalar-{engine}", str(plan.scalar_steps), clock_name)
            times[engine] += result["times"]
            parameters[engine] = np.array(result["parameters"])
    difference = float(np.max(np.abs(parameters["micrograd"] - parameters["tinygrad_bn"])))
    if difference > 1e-9:
        raise RuntimeError(f"tinygrad_bn.Value and micrograd disagree after one step of the "
                           f"moons demo: max |Δ| = {difference:.3g}")
    return {"timings": {name: Timing(t, []) for name, t in times.items()},
            "difference": difference}


# --- the report -------------------------------------------------------------------------------

@dataclass
class Report:
    """The printed sections, and every target with its measurement."""

    lines: list
    results: list       # (Target, measured)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def verdicts(self) -> list:
        return [(target, measured, target.passed(measured)) for target, measured in self.results]

    def text(self) -> str:
        rows = []
        for target, measured, passed in self.verdicts():
            goal = f"{'≤' if target.at_most else '≥'} {target.goal:g}"
            rows.append([target.text, f"{measured:.2f}", goal, "pass" if passed else "MISS"])
        return "\n".join(self.lines + ["", "Targets:",
                                       _table(rows, ["target", "measured", "goal", "result"])])


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def _timing_cell(timing: Timing | None) -> str:
    if timing is None:
        return "—"
    low, high = timing.spread()
    return f"{_duration(timing.median)} [{_duration(low)}–{_duration(high)}]"


def _table(rows: list, header: Sequence[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [list(header)] + rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def machine_description() -> str:
    """Date, operating system, CPU, and Python, numpy, torch and micrograd versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info
                     if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    parts = [datetime.date.today().isoformat(), f"{platform.system()} {platform.machine()}",
             f"{cpu} ({os.cpu_count()} logical CPUs)", f"Python {platform.python_version()}",
             f"numpy {np.__version__}"]
    for library in ("torch", "micrograd"):
        try:
            parts.append(f"{library} {metadata.version(library)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{library} not installed")
    return ", ".join(parts)


def _openblas_core(env: dict) -> str | None:
    """The kernel family numpy's OpenBLAS picks when it loads ("Haswell", "SkylakeX", …) in
    ``env``, read from OpenBLAS's own start-up line; None when numpy's BLAS is not OpenBLAS."""
    done = subprocess.run([sys.executable, "-c", "import numpy"], capture_output=True,
                          text=True, check=False, env=dict(env, OPENBLAS_VERBOSE="2"))
    for line in (done.stdout + done.stderr).splitlines():
        if line.startswith("Core: "):
            return line[len("Core: "):].strip()
    return None


def _cpu_flags() -> set:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def choose_blas_kernel(choice: str, env: dict) -> tuple:
    """(OPENBLAS_CORETYPE to set or None, the line the report prints about numpy's BLAS).

    OpenBLAS chooses its kernels by recognising the CPU model when it loads. A CPU newer than
    the OpenBLAS build, or one a hypervisor disguises (``AMD EPYC`` with no model number), can
    be taken for an older one: an AVX-512 CPU then runs AVX2 ("Haswell") kernels, and numpy's
    products take up to ~1.8× as long as they need to. ``auto`` gives every numpy-based engine
    (tinygrad_bn, compiled, hand-written numpy) the AVX-512 kernels when the CPU reports
    AVX-512 and OpenBLAS picked a family without it; ``default`` keeps OpenBLAS's choice. A
    ``OPENBLAS_CORETYPE`` already in the environment is always respected. PyTorch brings its
    own BLAS and is not affected.
    """
    picked = _openblas_core(env)
    if picked is None:
        return None, "numpy's BLAS: not OpenBLAS (left as it is)"
    if "OPENBLAS_CORETYPE" in env:
        return None, (f"numpy's BLAS: OpenBLAS, {picked} kernels (OPENBLAS_CORETYPE="
                      f"{env['OPENBLAS_CORETYPE']} set by the user)")
    if choice == "auto" and picked in AVX2_CORES and AVX512_FLAGS <= _cpu_flags():
        return AVX512_CORE, (f"numpy's BLAS: OpenBLAS, {AVX512_CORE} (AVX-512) kernels — "
                             f"OpenBLAS took this AVX-512 CPU for {picked} and would use AVX2 "
                             "kernels; `--blas-kernel default` keeps its choice")
    return None, f"numpy's BLAS: OpenBLAS, {picked} kernels (OpenBLAS's own choice)"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _step_section(report: Report, plan: Plan, clock: Callable[[], float],
                  with_torch: bool) -> None:
    """Time every configuration; measure the large step's peak memory on the way."""
    step_rows, fault_rows, agreement_rows = [], [], []
    names = ["tinygrad_bn", "compiled", "numpy"] + (["torch"] if with_torch else [])
    others = [name for name in names if name != "numpy"]
    peak = None
    for config in CONFIGS:
        _log(f"benchmark: {config.name} …")
        worst = check_agreement(build_engines(config, with_torch, np.float64), **AGREEMENT_64)
        engines = build_engines(config, with_torch)
        timings = time_interleaved(engines, plan, clock)
        ratios = {name: timings[name].median / timings["numpy"].median for name in others}
        if config.name in TARGETS:
            report.results.append((TARGETS[config.name], ratios["tinygrad_bn"]))
        if f"{config.name}-compiled" in TARGETS:
            if config.name == "paper":
                if with_torch:
                    report.results.append((TARGETS["paper-compiled"],
                                           timings["compiled"].median / timings["torch"].median))
            else:
                report.results.append((TARGETS[f"{config.name}-compiled"], ratios["compiled"]))
        step_rows.append([config.name] + [_timing_cell(timings[name]) for name in names]
                         + [f"{ratios[name]:.2f}×" for name in others])
        fault_rows.append([config.name] + [f"{statistics.median(timings[name].faults):.0f}"
                                           if resource else "n/a" for name in names])
        agreement_rows.append([config.name] + [f"{worst[name]:.1e}" for name in others])
        if config.name == "large":
            peak = [peak_step_memory(engine) for engine in engines
                    if engine.name in ("tinygrad_bn", "numpy")]
        del engines
        gc.collect()
    report.add(f"One training step (forward, loss, backward, SGD step, zero_grad), float32: "
               f"median over {plan.repeats} interleaved blocks [25th–75th percentile]; "
               "'compiled' is the same step through tinygrad_bn.jit",
               _table(step_rows, ["config", *names] + [f"{name} / numpy" for name in others]),
               "", "Minor page faults per step (median; each is a fresh page from the kernel):",
               _table(fault_rows, ["config", *names]), "",
               "Agreement after one float64 step from the same weights (max |Δ| from numpy "
               "over every parameter and running statistic):",
               _table(agreement_rows, ["config", *others]))
    if peak is not None:
        report.results.append((TARGETS["peak"], peak[0] / peak[1]))
        report.add("", f"Peak memory allocated during one large step (tracemalloc): "
                       f"tinygrad_bn {peak[0] / 2**20:.1f} MiB, numpy {peak[1] / 2**20:.1f} MiB")


def _convnet_section(report: Report, plan: Plan, clock: Callable[[], float]) -> None:
    """The CNN step (benchmark_convnet.py) against PyTorch eager; needs torch."""
    from .benchmark_convnet import build_convnet_engines, check_convnet_agreement

    _log("benchmark: convnet …")
    engines = build_convnet_engines(with_torch=True)
    worst = check_convnet_agreement(engines)
    timings = time_interleaved(engines, plan, clock)
    ratio = timings["tinygrad_bn"].median / timings["torch"].median
    report.results.append((TARGETS["convnet"], ratio))
    report.add("", "Convnet training step (Conv→BN2d→ReLU→MaxPool ×2, Linear; batch 64 of "
                   f"1×28×28; float32; parameters agree after one step to {worst:.1e}):",
               _table([["convnet", _timing_cell(timings["tinygrad_bn"]),
                        _timing_cell(timings["torch"]), f"{ratio:.2f}×"]],
                      ["config", "tinygrad_bn", "torch", "tinygrad_bn / torch"]))


def _hooks_section(report: Report, plan: Plan, clock: Callable[[], float]) -> None:
    """What the hook machinery costs a placement step when no hook is registered."""
    _log("benchmark: placement step with and without Module.__call__ …")
    config = CONFIGS[0]
    state, (x, target) = initial_state(config), make_batch(config)
    engines = [TinygradMLP(config, state, x, target), DirectForwardMLP(config, state, x, target),
               MonitoredMLP(config, state, x, target)]
    # The monitor only watches: after a step its model must equal numpy's like the others.
    check_agreement(engines + [NumpyMLP(config, state, x, target)])
    timings = time_interleaved(engines, plan, clock)
    base = timings["tinygrad_bn"].median
    ratio = base / timings["forward() directly"].median
    report.results.append((TARGETS["hooks"], ratio))
    report.add("", "Hooks cost nothing unregistered: the placement step through Module.__call__ "
                   "(which checks for hooks) against the same layers' forward() called directly, "
                   "and with a training monitor attached:",
               _table([[name, _timing_cell(timings[name]), f"{timings[name].median / base:.2f}×"]
                       for name in timings], ["placement step", "time", "/ tinygrad_bn"]))


def _scalar_section(report: Report, plan: Plan, clock_name: str) -> None:
    _log("benchmark: scalar engines (micrograd's moons demo) …")
    scalar = _measure_scalar(plan, clock_name)
    report.add("")
    if scalar is None:
        report.add("Scalar engines: micrograd is not installed (pip install micrograd); "
                   "that row is skipped.")
        return
    ours, theirs = scalar["timings"]["tinygrad_bn"], scalar["timings"]["micrograd"]
    report.results.append((TARGETS["scalar"], theirs.median / ours.median))
    report.add("Scalar engines on micrograd's moons demo (MLP(2, [16, 16, 1]), 100 points, "
               "hinge loss + L2, gc on, fresh interpreters; parameters after one step agree "
               f"to {scalar['difference']:.0e}):",
               _table([["tinygrad_bn.Value", _timing_cell(ours)],
                       ["micrograd", _timing_cell(theirs)]], ["engine", "one step"]))


def _gc_section(report: Report, plan: Plan, clock_name: str) -> None:
    _log("benchmark: a large scalar graph with the garbage collector on and off …")
    per_node = _measure_gc(plan, clock_name)
    report.results.append((TARGETS["gc"], per_node["on"] / per_node["off"]))
    report.add("", f"A {plan.gc_nodes:,}-node Value graph, built and backpropagated (fresh "
                   f"interpreters): {per_node['on'] * 1e6:.2f} µs per node with the collector "
                   f"on (building inside collector_paused), {per_node['off'] * 1e6:.2f} µs with "
                   "it off")


def _memory_section(report: Report, plan: Plan) -> None:
    _log("benchmark: resident memory over many steps …")
    flat = _run_worker("flatness", *map(str, plan.flat_steps))
    report.add("")
    if None in flat["rss"]:
        report.add("Resident memory: not readable here (no /proc/self/status); target skipped.")
        return
    (first, last), (early, late) = flat["rss"], flat["steps"]
    report.results.append((TARGETS["rss"], last / first))
    report.add(f"Resident memory of a fresh interpreter running compiled placement steps: "
               f"{first / 2**20:.1f} MiB after {early}, {last / 2**20:.1f} MiB after {late}")


def run(plan: Plan, threads: int, clock_name: str, malloc: str) -> Report:
    """Measure everything in this interpreter (whose environment `main` has pinned)."""
    try:
        import torch
        torch.set_num_threads(threads)
        with_torch = True
    except ImportError:
        with_torch = False
    clock = CLOCKS[clock_name]
    started = time.perf_counter()
    clock_text = "process CPU time" if clock_name == "cpu" else "wall time"
    allocator = "glibc keeps freed memory" if malloc == "kept" else "glibc's default"
    settings = (f"{threads} thread(s) for every engine ({', '.join(THREAD_VARIABLES)}, "
                f"torch.set_num_threads); clock: {clock_text}; allocator: {allocator}")
    lines = [f"tinygrad_bn benchmark — {machine_description()}", settings]
    if os.environ.get(BLAS_NOTE):
        lines.append(os.environ[BLAS_NOTE])
    report = Report(lines + [""], [])
    if not with_torch:
        report.add("PyTorch is not installed: its column is empty.", "")
    _step_section(report, plan, clock, with_torch)
    _hooks_section(report, plan, clock)
    if with_torch:
        _convnet_section(report, plan, clock)
    _scalar_section(report, plan, clock_name)
    _gc_section(report, plan, clock_name)
    _memory_section(report, plan)
    report.add("", f"({'quick' if plan is QUICK else 'full'} run, "
                   f"{time.perf_counter() - started:.0f} s)")
    return report


# --- command line -----------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Time one training step in tinygrad_bn, hand-written numpy, PyTorch and "
                    "micrograd, check that they agree, and compare with the performance targets.")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run (about 15 s): fewer repeats, rougher numbers")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS / OpenMP / torch threads for every engine (default 1)")
    parser.add_argument("--clock", choices=sorted(CLOCKS),
                        help="cpu: the process's CPU time (a busy neighbour delays a process "
                             "without adding to it, but it adds up all threads); wall: elapsed "
                             "time. Default: cpu with one thread, wall with more")
    parser.add_argument("--malloc", choices=("kept", "default"), default="kept",
                        help="kept (default): glibc keeps freed memory for reuse, for every "
                             "engine; default: glibc's own policy")
    parser.add_argument("--blas-kernel", choices=("auto", "default"), default="auto",
                        help="auto (default): numpy's OpenBLAS uses its AVX-512 kernels when "
                             "the CPU has AVX-512 but OpenBLAS did not recognise it; default: "
                             "OpenBLAS's own choice. An OPENBLAS_CORETYPE in the environment "
                             "always wins")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    return parser


def _worker(kind: str, arguments: Sequence[str]) -> dict:
    if kind == "flatness":
        return _flatness_worker([int(a) for a in arguments])
    if kind == "gc":
        return _gc_worker(arguments[0], int(arguments[1]), arguments[2])
    if kind.startswith("scalar-"):
        return _scalar_worker(kind[len("scalar-"):], int(arguments[0]), arguments[1])
    raise ValueError(f"unknown benchmark worker {kind!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``benchmarks/run.py`` and ``tinygrad-bn bench``; returns the exit code.

    0 after a complete run, whether or not every target is met (the report says which);
    1 when the engines disagree, because a wrong engine's speed means nothing.
    """
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.worker:
        print(json.dumps(_worker(args.worker[0], args.worker[1:])))
        return 0
    pinned = f"{args.threads} {args.malloc} {args.blas_kernel}"
    if os.environ.get(PINNED_MARK) != pinned:
        # Thread pools, the allocator and BLAS kernels are chosen when they load, so the run
        # happens in a fresh interpreter started with them.
        env = dict(os.environ, **{name: str(args.threads) for name in THREAD_VARIABLES})
        for name in KEEP_FREED_MEMORY:
            env.pop(name, None)
        if args.malloc == "kept":
            env.update(KEEP_FREED_MEMORY)
        env[PINNED_MARK] = pinned
        core, env[BLAS_NOTE] = choose_blas_kernel(args.blas_kernel, env)
        if core is not None:
            env["OPENBLAS_CORETYPE"] = core
        # The same tinygrad_bn as this one, even from a source checkout that is not installed.
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent,
                                                           env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "tinygrad_bn.benchmark", *argv]
        return subprocess.run(command, env=env, check=False).returncode
    clock = args.clock or ("cpu" if args.threads == 1 else "wall")
    try:
        report = run(QUICK if args.quick else FULL, args.threads, clock, args.malloc)
    except RuntimeError as error:
        print(f"benchmark: {error}", file=sys.stderr)
        return 1
    print(report.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
