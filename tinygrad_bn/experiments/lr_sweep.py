"""``lr-sweep``: final loss and accuracy against the learning rate, with and without BatchNorm.

Claims tested: (1) BN keeps training stable over a wider range of hyperparameters, and (2) it
allows higher learning rates. Both networks get the same budget of SGD steps at each learning
rate, from the same seeds; the table shows where each one trains well, where it is too slow to
get anywhere in the budget, and where it diverges.

Why BN tolerates large rates, in one line: a hidden weight vector w feeding a BN is
scale-invariant (BN(a·w·x) = BN(w·x) for a > 0), so a large step mostly makes ‖w‖ grow, which
in turn shrinks the next steps' effect — the effective learning rate is about η/‖w‖².
"""
from __future__ import annotations

import time
from typing import Any

from .datasets import TASKS, load_task, placement_task, spirals_task
from .report import ExperimentResult, Progress, choose_setup, run_plan
from .sweep import format_value, plot_sweep, sweep_data, sweep_findings, sweep_plan, sweep_table
from .training import NetSpec

__all__ = ["NAME", "SUMMARY", "run", "plot"]

NAME = "lr-sweep"
SUMMARY = "final loss and accuracy against the learning rate"
DEFAULT_SEEDS = 3
OPTIONS = ("dataset",)
DATASETS = tuple(TASKS)
VARIANTS = {"plain": NetSpec(), "BN": NetSpec(batch_norm=True)}

FULL = {"lrs": (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0),
        "steps": {"spirals": 2000, "placement": 1000, "digits": 2000, "fashion-mnist": 2000,
                  "mnist": 2000}, "batch_size": 64, "eval_every": 200}
QUICK = {"lrs": (0.01, 1.0, 100.0), "steps": {"spirals": 40, "placement": 20, "digits": 40,
                                              "fashion-mnist": 40, "mnist": 40},
         "batch_size": 64, "eval_every": 20}


def run(quick: bool = False, seeds: int | None = None, progress: Progress | None = None, *,
        dataset: str | None = None) -> ExperimentResult:
    """Train both networks at every learning rate of the sweep, on spirals and placement, or
    only on ``dataset`` (any of `DATASETS`, e.g. "digits")."""
    started = time.perf_counter()
    setup, seeds = choose_setup(quick, seeds, QUICK, FULL, DEFAULT_SEEDS)
    lrs = setup["lrs"]
    tasks = [spirals_task(), placement_task()] if dataset is None else [load_task(dataset)]
    plans = {task.name: sweep_plan(task, VARIANTS, lrs, seeds, vary="lr", lr=0.0,
                                   steps=setup["steps"][task.name],
                                   batch_size=setup["batch_size"],
                                   eval_every=setup["eval_every"]) for task in tasks}
    flat = [job for task in tasks for job in plans[task.name]]
    results = iter(run_plan(flat, progress))

    tables, findings, data = [], [], {}
    for task in tasks:
        runs: dict = {}
        for lr in lrs:
            for name in VARIANTS:
                runs[name, lr] = [next(results) for _ in range(seeds)]
        steps = setup["steps"][task.name]
        note = (f"{steps} SGD steps of {setup['batch_size']} examples at every rate; "
                f"mean ± sd over {seeds} seeds. Losses are on the whole training set, accuracy "
                "on the held-out test set, both in evaluation mode. A run that diverged has "
                "neither: the cells count such runs.")
        tables.append(sweep_table(f"{task.name}: learning-rate sweep", "learning rate", lrs,
                                  list(VARIANTS), runs, note))
        data[task.name] = sweep_data(lrs, list(VARIANTS), runs)
        findings += sweep_findings(task.name, "lr", lrs, runs, list(VARIANTS))

    settings = {
        "data": "; ".join(t.description for t in tasks),
        "network": VARIANTS["BN"].describe() + " (plain: Linear with bias → ReLU)",
        "training": f"plain SGD, batch {setup['batch_size']}, cross-entropy, steps "
                    + ", ".join(f"{t.name} {setup['steps'][t.name]}" for t in tasks),
        "learning rates": ", ".join(format_value(v) for v in lrs),
        "seeds": f"0 to {seeds - 1}",
    }
    return ExperimentResult(NAME, "Learning-rate sweep, with and without BatchNorm",
                            "Claims (1) stability and (2) higher learning rates: where does "
                            "each network train well, and where does it diverge?",
                            settings, tables, findings, data, time.perf_counter() - started)


def plot(result: ExperimentResult, path: Any) -> None:
    """One row per dataset: final training loss and test accuracy against the learning rate."""
    from .plotting import new_figure, save_figure

    tasks = list(result.data)
    figure, axes = new_figure(len(tasks), 2, (11, 4.2 * len(tasks)))
    for row, task in zip(axes, tasks):
        plot_sweep(row, result.data[task], "learning rate η (log scale)", task)
    figure.suptitle("Learning-rate sweep: the same network with and without BatchNorm "
                    "(points: mean over seeds; bars: min to max)")
    save_figure(figure, path)
