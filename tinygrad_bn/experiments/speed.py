"""``speed``: how many SGD steps each network needs to reach a target training loss.

Claim tested: (2) BN makes training faster. Two readings are possible and the table gives
both: at the *same* learning rate, which network gets there first; and with each network at
*its own* fastest rate — the claim in the original paper is that BN's speed comes largely from
the higher rates it tolerates.

The loss is measured on the whole training set, in evaluation mode, every ``eval_every``
steps, so "steps to target" is a multiple of that interval.
"""
from __future__ import annotations

import time
import warnings
from functools import partial
from typing import Any

import numpy as np

from .datasets import spirals_task
from .report import ExperimentResult, Progress, Table, choose_setup, mean_pm, run_plan
from .sweep import format_value
from .training import NetSpec, train_network

__all__ = ["NAME", "SUMMARY", "run", "plot"]

NAME = "speed"
SUMMARY = "SGD steps to reach a target training loss"
DEFAULT_SEEDS = 3
OPTIONS: tuple = ()
VARIANTS = {"plain": NetSpec(), "BN": NetSpec(batch_norm=True)}

FULL = {"lrs": (0.01, 0.03, 0.1, 0.3, 1.0), "targets": (0.1, 0.01), "steps": 3000,
        "batch_size": 64, "eval_every": 20}
QUICK = {"lrs": (0.1, 1.0), "targets": (0.9, 0.5), "steps": 60, "batch_size": 64,
         "eval_every": 10}


def run(quick: bool = False, seeds: int | None = None,
        progress: Progress | None = None) -> ExperimentResult:
    """Train both networks at each learning rate and find when each first reaches the targets."""
    started = time.perf_counter()
    setup, seeds = choose_setup(quick, seeds, QUICK, FULL, DEFAULT_SEEDS)
    lrs, targets, budget = setup["lrs"], setup["targets"], setup["steps"]
    task = spirals_task()
    plan = [(f"{task.name}: {name}, lr {format_value(lr)}, seed {seed}",
             partial(train_network, task, spec, lr=lr, steps=budget, seed=seed,
                     batch_size=setup["batch_size"], eval_every=setup["eval_every"]))
            for lr in lrs for name, spec in VARIANTS.items() for seed in range(seeds)]
    results = iter(run_plan(plan, progress))
    runs = {(name, lr): [next(results) for _ in range(seeds)] for lr in lrs for name in VARIANTS}
    # reached[target][name, lr]: each seed's first step at or below the target (None: never)
    reached = {target: {key: [r.first_step_below(target) for r in group]
                        for key, group in runs.items()} for target in targets}

    rows = []
    for lr in lrs:
        row = [format_value(lr)]
        for name in VARIANTS:
            row += [_steps_cell(reached[target][name, lr], budget) for target in targets]
            row.append(mean_pm([r.final["test_accuracy"] for r in runs[name, lr]]))
        rows.append(row)
    columns = ["learning rate"]
    for name in VARIANTS:
        columns += [f"{name}: steps to loss ≤ {target:g}" for target in targets]
        columns.append(f"{name}: final test accuracy")
    note = (f"Training-set loss measured every {setup['eval_every']} steps; budget {budget} "
            f"steps; mean ± sd over the seeds that reached the target ({seeds} seeds). A "
            "diverged run never reaches it.")
    table = Table(f"{task.name}: steps to reach a training loss of "
                  f"{' and of '.join(format_value(t) for t in targets)}", columns, rows, note)
    findings = [line for target in targets for line in _findings(reached[target], lrs, target,
                                                                 budget)]

    data = {"lrs": list(lrs), "targets": list(targets), "budget": budget,
            "steps_to_target": {format_value(target): {f"{name} {format_value(lr)}": steps
                                                       for (name, lr), steps in per.items()}
                                for target, per in reached.items()},
            "curves": {name: {format_value(lr): _curves(runs[name, lr]) for lr in lrs}
                       for name in VARIANTS}}
    settings = {
        "data": task.description,
        "network": VARIANTS["BN"].describe() + " (plain: Linear with bias → ReLU)",
        "training": f"plain SGD, batch {setup['batch_size']}, cross-entropy, at most {budget} "
                    "steps",
        "targets": "training-set loss ≤ " + " and ≤ ".join(format_value(t) for t in targets),
        "seeds": f"0 to {seeds - 1}",
    }
    return ExperimentResult(NAME, "Speed: steps to reach a target training loss",
                            "Claim (2): does BN train faster — at the same learning rate, and "
                            "at the best rate for each network?", settings, [table], findings,
                            data, time.perf_counter() - started)


def _findings(reached: dict, lrs: tuple, target: float, budget: int) -> list:
    """Fastest rate per variant, and the ratio at each rate where both got there."""
    lines, fastest = [], {}
    for name in VARIANTS:
        candidates = [(np.mean(reached[name, lr]), lr) for lr in lrs
                      if all(s is not None for s in reached[name, lr])]
        if candidates:
            steps, lr = min(candidates)
            fastest[name] = steps
            lines.append(f"loss ≤ {target:g}, {name}: fastest with every seed there: lr "
                         f"{format_value(lr)}, {steps:.0f} steps on average")
        else:
            lines.append(f"loss ≤ {target:g}, {name}: at no learning rate did every seed get "
                         f"there within {budget} steps")
    for lr in lrs:
        plain, bn = reached["plain", lr], reached["BN", lr]
        if all(s is not None for s in plain + bn):
            lines.append(f"loss ≤ {target:g} at lr {format_value(lr)}: BN needed "
                         f"{np.mean(bn):.0f} steps, plain {np.mean(plain):.0f} "
                         f"(plain / BN = {np.mean(plain) / np.mean(bn):.1f})")
    if len(fastest) == 2:
        lines.append(f"loss ≤ {target:g}, each at its fastest rate: plain / BN = "
                     f"{fastest['plain'] / fastest['BN']:.1f}")
    return lines


def _steps_cell(steps: list, budget: int) -> str:
    done = [s for s in steps if s is not None]
    if not done:
        return f"not within {budget}"
    text = mean_pm(done, 0)
    return text if len(done) == len(steps) else f"{text} ({len(done)}/{len(steps)} reached)"


def plot(result: ExperimentResult, path: Any) -> None:
    """Training-loss curves at each learning rate, with the targets as black lines."""
    from .plotting import new_figure, save_figure, style

    data = result.data
    lrs = [format_value(lr) for lr in data["lrs"]]
    columns = min(3, len(lrs))
    rows = -(-len(lrs) // columns)
    figure, axes = new_figure(rows, columns, (4.2 * columns, 3.4 * rows))
    flat = list(axes.flat)
    for axis, lr in zip(flat, lrs):
        for name, per_lr in data["curves"].items():
            curve = per_lr[lr]
            losses = np.array([[np.nan if v is None else v for v in seed]
                               for seed in curve["train_loss"]], dtype=float)
            steps = curve["steps"]
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps after divergence
                mean = np.nanmean(losses, axis=0)
                low, high = np.nanmin(losses, axis=0), np.nanmax(losses, axis=0)
            axis.plot(steps, mean, **style(name))
            axis.fill_between(steps, low, high, color=style(name)["color"], alpha=0.15,
                              linewidth=0)
        for target, dashes in zip(data["targets"], ("--", ":")):
            axis.axhline(target, color="black", linestyle=dashes, linewidth=1,
                         label=f"target {target:g}")
        axis.set_yscale("log")
        axis.set_title(f"learning rate {lr}")
        axis.set_xlabel("SGD step")
        axis.set_ylabel("training loss")
        axis.grid(True, alpha=0.3)
    flat[0].legend(fontsize="small")
    for axis in flat[len(lrs):]:
        axis.set_visible(False)
    figure.suptitle("Speed: training loss (mean over seeds; band: min to max) with and without "
                    "BatchNorm")
    save_figure(figure, path)


def _curves(group: list) -> dict:
    """Every seed's training loss on one grid of steps (None after a run diverged)."""
    grid = [h["step"] for h in max((r.history for r in group), key=len)]
    losses = []
    for run in group:
        by_step = {h["step"]: h["train_loss"] for h in run.history}
        losses.append([by_step.get(step) for step in grid])
    return {"steps": grid, "train_loss": losses}
