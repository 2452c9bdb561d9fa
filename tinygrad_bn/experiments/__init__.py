"""Experiments that show what BatchNorm does — and what it does not — with numbers.

Each experiment trains the same network with and without BatchNorm from the same seeds, over
several seeds, and returns an `ExperimentResult`: tables of mean ± spread, one-line findings
computed from them, and the data behind an optional plot. The command line runs them as
``tinygrad-bn experiment NAME``; docs/batchnorm.md shows the full results.

=================  ==========================================================================
lr-sweep           final loss and accuracy against the learning rate (claims 1 and 2)
init-sweep         sensitivity to the scale of the initial weights (claim 4)
regularization     train/test gap with BN, dropout, both, neither (claim 3)
covariate-shift    a hidden layer's input distribution over training (the motivation)
speed              steps to reach a target training loss (claim 2)
paper-fig1         the BN paper's own Figure 1 on real images (test accuracy, a sigmoid's input)
placement-order    Linear → BN → ReLU against Linear → ReLU → BN, and no BN
batch-size         BN, LayerNorm, GroupNorm, none at batch sizes 2 … 128 (BN's weakness)
bn-lite            full BN against mean-only, variance-only and fixed γ = 1, β = 0
convnet            a small CNN with and without BatchNorm2d on real images
=================  ==========================================================================

The synthetic tasks are the default; lr-sweep and init-sweep also run on real images
(``dataset="digits"``, "fashion-mnist" or "mnist"; see datasets.py and tinygrad_bn.datasets).

Reading order: datasets.py (the tasks) → training.py (networks, one training loop) →
report.py (tables) → sweep.py → one module per experiment (family.py holds what the last
four share: other norms, partial BN, the convnet) → plotting.py.

Example:
    >>> from tinygrad_bn.experiments import run_experiment
    >>> result = run_experiment("lr-sweep", quick=True)   # seconds; the full run takes minutes
    >>> print(result.text())
"""
from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

from . import (batch_size, bn_lite, convnet, covariate_shift, init_sweep, lr_sweep, paper_fig1,
               placement_order, regularization, speed)
from .datasets import TASKS, Task, load_task, placement_task, spirals_task
from .plotting import INSTALL_HINT, PLOT_FORMATS, PlotUnavailable
from .report import ExperimentResult, Progress, Table
from .training import NetSpec, Run, ShiftNoise, Tap, build_network, evaluate, train_network

__all__ = [
    "EXPERIMENTS", "run_experiment", "plot_experiment", "ExperimentResult", "Table", "Progress",
    "PlotUnavailable", "INSTALL_HINT", "PLOT_FORMATS", "Task", "TASKS", "load_task",
    "spirals_task", "placement_task", "NetSpec", "Run", "ShiftNoise", "Tap", "build_network",
    "evaluate", "train_network",
]

# Name → module; each module has NAME, SUMMARY, DEFAULT_SEEDS, OPTIONS (the keyword arguments
# its run() takes beyond quick, seeds and progress), run() and plot().
EXPERIMENTS: dict = {module.NAME: module for module in
                     (lr_sweep, init_sweep, regularization, covariate_shift, speed, paper_fig1,
                      placement_order, batch_size, bn_lite, convnet)}


def _experiment(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def run_experiment(name: str, *, quick: bool = False, seeds: int | None = None,
                   progress: Progress | None = None, **options: Any) -> ExperimentResult:
    """Run the experiment ``name`` and return its result.

    Args:
        name: one of `EXPERIMENTS` (``"lr-sweep"``, ``"init-sweep"``, ``"regularization"``,
            ``"covariate-shift"``, ``"speed"``).
        quick: a seconds-long version with fewer steps, values and seeds (for tests and a first
            look; its numbers show the mechanics, not the effects).
        seeds: how many seeds (0 … seeds − 1); default: the experiment's own (3 or 5; 2 quick).
        progress: called as ``progress(done, total, label)`` as the training runs go.
        options: the experiment's own settings, those named in its ``OPTIONS``: ``dataset``
            for lr-sweep and init-sweep; ``dataset``, ``steps``, ``lr`` and ``init_std`` for
            paper-fig1. Raises ValueError for any other.
    """
    module = _experiment(name)
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int)
                              or seeds < 1):
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    unknown = sorted(set(options) - set(module.OPTIONS))
    if unknown:
        takes = ", ".join(module.OPTIONS) or "no options"
        raise ValueError(f"{name} does not take {', '.join(unknown)} (it takes {takes})")
    return module.run(quick=quick, seeds=seeds, progress=progress, **options)


def plot_experiment(result: ExperimentResult, path: str | os.PathLike) -> None:
    """Draw ``result``'s figure into ``path`` (.png, .svg or .pdf).

    Raises `PlotUnavailable` (an ImportError) when matplotlib is not installed.
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise ValueError(f"{path}: a plot file must end in "
                         f"{', '.join('.' + f for f in PLOT_FORMATS)}")
    _experiment(result.name).plot(result, path)
