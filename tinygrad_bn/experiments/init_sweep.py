"""``init-sweep``: how much the scale of the initial weights matters, with and without BN.

Claim tested: (4) BN reduces the impact of weight initialisation. Every weight starts from
N(0, (s·gain)²/fan_in) — s = 1 is He initialisation — and s sweeps a log range; the learning
rate stays fixed.

What to expect from the algebra. Without BN, each ReLU layer multiplies the signal's scale by
about s, so the logits scale like s⁵ through five layers: tiny (nothing to learn from) or
huge (exploding loss and gradients). With BN, a hidden layer's output does not depend on the
scale of its weights at all — BN(s·Wx) = BN(Wx) — so only the output layer's scale and the
effective learning rate η/s² (see lr_sweep.py) remain.
"""
from __future__ import annotations

import math
import time
from typing import Any

from .datasets import TASKS, load_task
from .report import ExperimentResult, Progress, choose_setup, run_plan
from .sweep import format_value, plot_sweep, sweep_data, sweep_findings, sweep_plan, sweep_table
from .training import NetSpec

__all__ = ["NAME", "SUMMARY", "run", "plot"]

NAME = "init-sweep"
SUMMARY = "sensitivity to the scale of the initial weights"
DEFAULT_SEEDS = 3
OPTIONS = ("dataset",)
DATASETS = tuple(TASKS)
VARIANTS = {"plain": NetSpec(), "BN": NetSpec(batch_norm=True)}

FULL = {"scales": (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0), "lr": 0.1,
        "steps": 2000, "batch_size": 64, "eval_every": 200}
QUICK = {"scales": (0.1, 1.0, 10.0), "lr": 0.1, "steps": 40, "batch_size": 64,
         "eval_every": 20}


def run(quick: bool = False, seeds: int | None = None, progress: Progress | None = None, *,
        dataset: str = "spirals") -> ExperimentResult:
    """Train both networks from every initial scale on the spirals, or on ``dataset`` (any of
    `DATASETS`, e.g. "digits")."""
    started = time.perf_counter()
    setup, seeds = choose_setup(quick, seeds, QUICK, FULL, DEFAULT_SEEDS)
    scales = setup["scales"]
    task = load_task(dataset)
    plan = sweep_plan(task, VARIANTS, scales, seeds, vary="init_scale", lr=setup["lr"],
                      steps=setup["steps"], batch_size=setup["batch_size"],
                      eval_every=setup["eval_every"])
    results = iter(run_plan(plan, progress))
    runs = {(name, scale): [next(results) for _ in range(seeds)]
            for scale in scales for name in VARIANTS}

    note = (f"Weights start from N(0, (s·gain)²/fan_in); lr {setup['lr']:g}, {setup['steps']} "
            f"SGD steps; mean ± sd over {seeds} seeds. The first-batch loss is the untrained "
            f"network's, in training mode (ln {task.classes} ≈ {math.log(task.classes):.3f} is "
            "a uniform guess). A run that diverged has no final loss or accuracy: the cells "
            "count such runs.")
    table = sweep_table(f"{task.name}: initial-weight-scale sweep", "init scale s", scales,
                        list(VARIANTS), runs, note, initial_loss=True)
    findings = sweep_findings(task.name, "s", scales, runs, list(VARIANTS))

    settings = {
        "data": task.description,
        "network": VARIANTS["BN"].describe() + " (plain: Linear with bias → ReLU)",
        "training": f"plain SGD, lr {setup['lr']:g}, batch {setup['batch_size']}, "
                    f"{setup['steps']} steps, cross-entropy",
        "init scales": ", ".join(format_value(s) for s in scales),
        "seeds": f"0 to {seeds - 1}",
    }
    return ExperimentResult(NAME, "Initial-weight-scale sweep, with and without BatchNorm",
                            "Claim (4): does BN make training less sensitive to the scale of "
                            "the initial weights?", settings, [table], findings,
                            {task.name: sweep_data(scales, list(VARIANTS), runs)},
                            time.perf_counter() - started)


def plot(result: ExperimentResult, path: Any) -> None:
    """Final training loss and test accuracy against the initial scale s."""
    from .plotting import new_figure, save_figure

    figure, axes = new_figure(1, 2, (11, 4.4))
    task = next(iter(result.data))
    plot_sweep(axes[0], result.data[task], "initial weight scale s (log scale; 1 = He init)",
               task)
    figure.suptitle("Initial-weight-scale sweep: the same network with and without BatchNorm "
                    "(points: mean over seeds; bars: min to max)")
    save_figure(figure, path)
