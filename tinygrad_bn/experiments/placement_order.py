"""``placement-order``: BatchNorm before the nonlinearity or after it (or not at all)?

The notes leave it open ("right before (or right after) the nonlinear function"); the paper
puts BN before: it normalises x = Wu, whose distribution is "more likely to have a symmetric,
non-sparse distribution" than a ReLU's output. Here the same 3 × 64 network is trained as

    Linear → BN → ReLU      Linear → ReLU → BN      Linear → ReLU   (no BN)

from the same seeds, on the placement data and on a real data set (scikit-learn's digits;
the spirals when scikit-learn is missing). Measured: test accuracy, speed of training (the
step at which each reaches the highest final training loss of any run), and what the next layer
receives from the last hidden block (mean |mean| and mean spread of its features, and the
fraction of ReLU units dead on the whole test set), in evaluation mode.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any

import numpy as np

from .datasets import digits_task, placement_task, spirals_task
from .family import block_statistics, mlp, steps_cell, steps_to_reach, task_or_fallback
from .report import ExperimentResult, Progress, Table, choose_setup, mean_pm, run_plan
from .training import train_network

__all__ = ["NAME", "SUMMARY", "run", "plot"]

NAME = "placement-order"
SUMMARY = "Linear → BN → ReLU against Linear → ReLU → BN (and no BN)"
DEFAULT_SEEDS = 3
OPTIONS: tuple = ()

VARIANTS = {"BN before ReLU": "before", "BN after ReLU": "after", "no BN": None}

FULL = {"lr": 0.1, "steps": 2000, "eval_every": 100, "batch_size": 64, "digits_rows": None}
QUICK = {"lr": 0.1, "steps": 30, "eval_every": 10, "batch_size": 32, "digits_rows": 200}


def _network(order: str | None) -> Any:
    from .. import nn

    norm = None if order is None else (lambda width: nn.BatchNorm1d(width))
    return mlp(norm, order=order or "before", taps=True)


def run(quick: bool = False, seeds: int | None = None,
        progress: Progress | None = None) -> ExperimentResult:
    """Train the three orders on placement and on digits (or spirals)."""
    started = time.perf_counter()
    setup, seeds = choose_setup(quick, seeds, QUICK, FULL, DEFAULT_SEEDS)
    real, note = task_or_fallback(digits_task, spirals_task)
    if setup["digits_rows"] and real.name == "digits":
        real = real.subset(setup["digits_rows"])
    tasks = [placement_task(), real]
    plan = [(f"{task.name}: {name}, seed {seed}",
             partial(train_network, task, None, lr=setup["lr"], steps=setup["steps"],
                     seed=seed, batch_size=setup["batch_size"], eval_every=setup["eval_every"],
                     network=_network(order)))
            for task in tasks for name, order in VARIANTS.items() for seed in range(seeds)]
    results = iter(run_plan(plan, progress))
    runs = {(task.name, name): [next(results) for _ in range(seeds)]
            for task in tasks for name in VARIANTS}

    tables, findings, data = [], [], {}
    for task in tasks:
        # Every run that did not diverge reaches the highest final loss of any run.
        target = max(r.final["train_loss"] for name in VARIANTS for r in runs[task.name, name]
                     if not r.diverged)
        rows, stats = [], {}
        for name in VARIANTS:
            group = runs[task.name, name]
            block = [block_statistics(r.model, task.X_test) for r in group]
            stats[name] = block
            rows.append([name, mean_pm([r.final["test_accuracy"] for r in group]),
                         mean_pm([r.final["train_loss"] for r in group]),
                         steps_cell([steps_to_reach(r, target) for r in group]),
                         mean_pm([b["abs_mean"] for b in block]),
                         mean_pm([b["std"] for b in block]),
                         mean_pm([b["dead"] for b in block])])
        tables.append(Table(
            f"{task.name}: where BatchNorm goes",
            ["variant", "test accuracy", "final train loss",
             f"steps to train loss {target:.3f}", "next layer's input: avg abs(μ)",
             "avg σ", "dead ReLU units"], rows,
            f"{task.description}. 3 hidden layers of 64, lr {setup['lr']:g}, "
            f"{setup['steps']} SGD steps of {setup['batch_size']}; mean ± sd over {seeds} "
            f"seeds. The step column: first evaluation (every {setup['eval_every']} steps) at "
            "which the training loss is at most the highest final loss of any run. The last "
            "three columns: the last hidden block's output on the test set, evaluation mode."))
        data[task.name] = {name: {"steps": [h["step"] for h in runs[task.name, name][0].history],
                                  "train_loss": [[h["train_loss"] for h in r.history]
                                                 for r in runs[task.name, name]],
                                  "test_accuracy": [r.final["test_accuracy"]
                                                    for r in runs[task.name, name]],
                                  "block": stats[name]}
                           for name in VARIANTS}
        ranking = sorted(VARIANTS, key=lambda n: -np.mean(data[task.name][n]["test_accuracy"]))
        findings.append(f"{task.name}: mean test accuracy, best first: " + ", ".join(
            f"{n} {np.mean(data[task.name][n]['test_accuracy']):.3f}" for n in ranking))
        findings.append(f"{task.name}: mean steps to train loss {target:.3f}: " + ", ".join(
            f"{n} {np.nanmean([steps_to_reach(r, target) for r in runs[task.name, n]]):.0f}"
            for n in VARIANTS))
    if note:
        findings.append(note)
    settings = {"data": "; ".join(t.description for t in tasks),
                "network": "3 hidden layers of 64: Linear → BN → ReLU, Linear → ReLU → BN or "
                           "Linear → ReLU; He-initialised; Linear → Linear",
                "training": f"plain SGD, lr {setup['lr']:g}, {setup['steps']} steps of "
                            f"{setup['batch_size']}, cross-entropy",
                "seeds": f"0 to {seeds - 1}"}
    return ExperimentResult(NAME, "BatchNorm before or after the nonlinearity", "The notes: "
                            "\"right before (or right after) the nonlinear function\" — which is "
                            "better, and how do the activations differ?", settings, tables,
                            findings, data, time.perf_counter() - started)


def plot(result: ExperimentResult, path: Any) -> None:
    """Per data set: the training loss over steps for each order (mean over seeds)."""
    from .plotting import new_figure, same_length, save_figure

    colours = {"BN before ReLU": "#1f77b4", "BN after ReLU": "#2ca02c", "no BN": "#d62728"}
    tasks = list(result.data)
    figure, axes = new_figure(1, len(tasks), (5.5 * len(tasks), 4.2))
    for axis, task in zip(axes[0], tasks):
        for name, curves in result.data[task].items():
            losses = np.asarray(same_length(curves["train_loss"]), dtype=float)
            steps = curves["steps"][:losses.shape[1]]
            axis.plot(steps, losses.mean(axis=0), color=colours.get(name), label=name)
        axis.set_yscale("log")
        axis.set_xlabel("SGD step")
        axis.set_ylabel("training loss (mean over seeds)")
        axis.set_title(task)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle("BatchNorm before or after ReLU")
    save_figure(figure, path)
