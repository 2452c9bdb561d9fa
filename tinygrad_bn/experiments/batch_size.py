"""``batch-size``: BatchNorm's small-batch weakness, against LayerNorm and GroupNorm.

BN normalises each example with the statistics of its mini-batch. With a batch of 2 those are
the mean and spread of two numbers: a noisy estimate in training, and a poor match for the
running averages used at evaluation. LayerNorm and GroupNorm normalise each example by its
own features, so the batch size cannot matter to them (except through SGD itself).

The same 3 × 64 network (Linear → norm → ReLU) is trained with BN, LN, GN (4 groups of 16)
and no normalisation, at batch sizes 2, 4, 8, 32 and 128, for the same number of epochs and
the same learning rate, on scikit-learn's digits (the spirals without scikit-learn).
Measured: test accuracy in evaluation mode, and the *train/eval gap*: test accuracy computed
in training mode (batches of the training batch size, BN using batch statistics) minus the
evaluation-mode accuracy. Without BN that gap is exactly 0 — a check of the measurement.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any

import numpy as np

from .datasets import digits_task, spirals_task
from .family import NORMS, mlp, task_or_fallback, train_mode_accuracy
from .report import ExperimentResult, Progress, Table, choose_setup, mean_pm, run_plan
from .training import train_network

__all__ = ["NAME", "SUMMARY", "run", "plot"]

NAME = "batch-size"
SUMMARY = "BN, LayerNorm, GroupNorm, none at batch sizes 2 … 128"
DEFAULT_SEEDS = 3
OPTIONS: tuple = ()

FULL = {"batch_sizes": (2, 4, 8, 32, 128), "epochs": 10, "lr": 0.05, "rows": None}
QUICK = {"batch_sizes": (4, 32), "epochs": 1, "lr": 0.05, "rows": 160}


def run(quick: bool = False, seeds: int | None = None,
        progress: Progress | None = None) -> ExperimentResult:
    """Train every normalisation at every batch size."""
    started = time.perf_counter()
    setup, seeds = choose_setup(quick, seeds, QUICK, FULL, DEFAULT_SEEDS)
    task, note = task_or_fallback(digits_task, spirals_task)
    if setup["rows"]:
        task = task.subset(setup["rows"])
    sizes = setup["batch_sizes"]
    plan = []
    for size in sizes:
        steps = max(1, setup["epochs"] * len(task.X_train) // size)
        for name, norm in NORMS.items():
            for seed in range(seeds):
                plan.append((f"{name}, batch {size}, seed {seed}",
                             partial(_train, task, norm, size, steps, setup["lr"], seed)))
    results = iter(run_plan(plan, progress))
    cells = {(size, name): [next(results) for _ in range(seeds)]
             for size in sizes for name in NORMS}

    accuracy_rows, gap_rows = [], []
    for size in sizes:
        accuracy_rows.append([str(size)] + [mean_pm([c["test"] for c in cells[size, name]])
                                            for name in NORMS])
        gap_rows.append([str(size)] + [mean_pm([c["train_mode"] - c["test"]
                                                for c in cells[size, name]])
                                       for name in NORMS])
    common = (f"{task.description}; lr {setup['lr']:g}, {setup['epochs']} epochs at every "
              f"batch size (so small batches take more, noisier steps); mean ± sd over {seeds} "
              "seeds")
    tables = [Table("Test accuracy (evaluation mode) by batch size", ["batch size",
                                                                    *NORMS], accuracy_rows,
                    common + "."),
              Table("Train/eval gap: test accuracy in training mode − in evaluation mode",
                    ["batch size", *NORMS], gap_rows,
                    common + ". Training mode: shuffled batches of the training batch size; BN "
                    "then uses each batch's statistics, the others are unaffected.")]
    data = {"batch_sizes": list(sizes),
            "norms": {name: {key: [[c[key] for c in cells[size, name]] for size in sizes]
                             for key in ("test", "train_mode")} for name in NORMS}}
    findings = []
    for name in NORMS:
        means = [float(np.mean([c["test"] for c in cells[size, name]])) for size in sizes]
        gaps = [float(np.mean([c["train_mode"] - c["test"] for c in cells[size, name]]))
                for size in sizes]
        findings.append(f"{name}: test accuracy from batch {sizes[0]} to {sizes[-1]}: "
                        + ", ".join(f"{m:.3f}" for m in means) + "; train/eval gap: "
                        + ", ".join(f"{g:+.3f}" for g in gaps))
    if note:
        findings.append(note)
    settings = {"data": task.description,
                "network": "3 hidden layers of 64: Linear → norm → ReLU (norm: BatchNorm1d, "
                           "LayerNorm(64), GroupNorm(4, 64) or none), then Linear",
                "training": f"plain SGD, lr {setup['lr']:g}, {setup['epochs']} epochs, "
                            "cross-entropy",
                "seeds": f"0 to {seeds - 1}"}
    return ExperimentResult(NAME, "Batch size: BatchNorm against LayerNorm and GroupNorm",
                            "Does BN's regularising noise — and its weakness — depend on the "
                            "batch size, and do LN and GN escape it?", settings, tables,
                            findings, data, time.perf_counter() - started)


def _train(task: Any, norm: Any, batch_size: int, steps: int, lr: float, seed: int) -> dict:
    run = train_network(task, None, lr=lr, steps=steps, seed=seed, batch_size=batch_size,
                        eval_every=steps, network=mlp(norm))
    if run.diverged:
        return {"test": float("nan"), "train_mode": float("nan")}
    return {"test": run.final["test_accuracy"],
            "train_mode": train_mode_accuracy(run.model, task.X_test, task.y_test, batch_size,
                                              seed)}


def plot(result: ExperimentResult, path: Any) -> None:
    """Test accuracy and the train/eval gap against the batch size, one line per norm."""
    from .plotting import new_figure, save_figure

    colours = {"none": "#d62728", "BN": "#1f77b4", "LN": "#2ca02c", "GN": "#9467bd"}
    sizes = result.data["batch_sizes"]
    figure, axes = new_figure(1, 2, (11, 4.2))
    accuracy_axis, gap_axis = axes[0]
    for name, values in result.data["norms"].items():
        test = np.asarray(values["test"], dtype=float)
        gap = np.asarray(values["train_mode"], dtype=float) - test
        accuracy_axis.plot(sizes, np.nanmean(test, axis=1), marker="o", color=colours.get(name),
                           label=name)
        gap_axis.plot(sizes, np.nanmean(gap, axis=1), marker="o", color=colours.get(name),
                      label=name)
    for axis in (accuracy_axis, gap_axis):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("batch size")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    accuracy_axis.set_ylabel("test accuracy (evaluation mode)")
    gap_axis.set_ylabel("training-mode − evaluation-mode test accuracy")
    gap_axis.axhline(0.0, color="black", linewidth=0.8)
    figure.suptitle("BatchNorm's small-batch weakness")
    save_figure(figure, path)
