"""What the two sweeps share (lr_sweep.py, init_sweep.py): one setting varied over a log
range, each variant trained from the same seeds at every value, then summarised per value.

Read next: lr_sweep.py.
"""
from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any, Sequence

import numpy as np

from .datasets import Task
from .report import Table, mean_pm
from .training import Run, train_network

__all__ = ["sweep_plan", "final_values", "sweep_table", "sweep_data", "sweep_findings",
           "best_accuracy", "good_values", "plot_sweep", "format_value"]


def format_value(value: float) -> str:
    """0.001, 0.03, 1, 30: short and exact for the values the sweeps use."""
    return f"{value:g}"


def sweep_plan(task: Task, variants: dict, values: Sequence[float], seeds: int, *, vary: str,
               lr: float, steps: int, batch_size: int, eval_every: int) -> list:
    """(label, job) for every value × variant × seed; ``vary`` is "lr" or "init_scale"."""
    if vary not in ("lr", "init_scale"):
        raise ValueError(f"vary must be 'lr' or 'init_scale', got {vary!r}")
    plan = []
    for value in values:
        for name, spec in variants.items():
            run_lr = value if vary == "lr" else lr
            if vary == "init_scale":
                spec = dataclasses.replace(spec, init_scale=value)
            for seed in range(seeds):
                label = f"{task.name}: {name}, {vary} {format_value(value)}, seed {seed}"
                plan.append((label, partial(train_network, task, spec, lr=run_lr, steps=steps,
                                            seed=seed, batch_size=batch_size,
                                            eval_every=eval_every)))
    return plan


def final_values(runs: Sequence[Run], key: str) -> list:
    """The final ``key`` of each run; NaN for a diverged run, which has no usable network."""
    return [math.nan if run.diverged else run.final[key] for run in runs]


def sweep_table(title: str, value_name: str, values: Sequence[float], variants: Sequence[str],
                runs: dict, note: str, initial_loss: bool = False) -> Table:
    """One row per value: for each variant the final training loss and test accuracy
    (and, if asked, the untrained network's loss on its first mini-batch) as mean ± sd."""
    columns = [value_name]
    for name in variants:
        if initial_loss:
            columns.append(f"{name}: first-batch loss")
        columns += [f"{name}: final train loss", f"{name}: test accuracy"]
    rows = []
    for value in values:
        row = [format_value(value)]
        for name in variants:
            group = runs[name, value]
            if initial_loss:
                row.append(mean_pm([r.first_batch_loss for r in group], 3))
            row.append(mean_pm(final_values(group, "train_loss"), 3))
            row.append(mean_pm(final_values(group, "test_accuracy"), 3))
        rows.append(row)
    return Table(title, columns, rows, note)


def best_accuracy(runs: dict) -> float:
    """The highest mean test accuracy of any variant at any value where no seed diverged."""
    return max(float(np.mean([r.final["test_accuracy"] for r in group]))
               for group in runs.values() if not any(r.diverged for r in group))


def good_values(values: Sequence[float], runs: dict, variant: str, best: float,
                tolerance: float) -> list:
    """The values at which no seed of ``variant`` diverged and its mean test accuracy is
    within ``tolerance`` of ``best``."""
    good = []
    for value in values:
        group = runs[variant, value]
        accuracy = np.mean([r.final["test_accuracy"] for r in group])
        if not any(r.diverged for r in group) and accuracy >= best - tolerance:
            good.append(value)
    return good


def sweep_findings(task: str, value_name: str, values: Sequence[float], runs: dict,
                   variants: Sequence[str]) -> list:
    """One line per variant: where it is near the best accuracy, and where it diverges."""
    best = best_accuracy(runs)

    def listed(chosen: list) -> str:
        return f"{value_name} {', '.join(format_value(v) for v in chosen)}" if chosen else "none"

    lines = []
    for name in variants:
        near = good_values(values, runs, name, best, 0.02)
        usable = good_values(values, runs, name, best, 0.10)
        diverging = [v for v in values if any(r.diverged for r in runs[name, v])]
        lines.append(f"{task}, {name}: mean test accuracy within 0.02 of the best ({best:.3f}): "
                     f"{listed(near)}; within 0.10: {listed(usable)}; diverged (one seed or "
                     f"more): {listed(diverging)}")
    return lines


def plot_sweep(axes_row: Any, data: dict, value_name: str, title: str) -> None:
    """Two panels: final training loss and test accuracy against the swept value (log x).

    Points are the mean over the seeds that did not diverge, bars span their minimum to
    maximum; a × near the top edge marks a value where a seed diverged.
    """
    from .plotting import style  # no matplotlib import at module level

    values = np.asarray(data["values"], dtype=float)
    loss_axis, accuracy_axis = axes_row
    for name, per_value in data["variants"].items():
        options = style(name)
        for axis, key in ((loss_axis, "final_train_loss"), (accuracy_axis, "test_accuracy")):
            mean, low, high = _mean_and_range([cell[key] for cell in per_value])
            axis.errorbar(values, mean, yerr=[mean - low, high - mean], marker="o", capsize=3,
                          **options)
        diverged = np.array([cell["diverged"] > 0 for cell in per_value])
        if diverged.any():
            height = 0.97 - 0.05 * list(data["variants"]).index(name)  # variants side by side
            loss_axis.plot(values[diverged], np.full(diverged.sum(), height), marker="x",
                           linestyle="none", markersize=9, color=options["color"],
                           transform=loss_axis.get_xaxis_transform(),
                           label=f"{name}: a seed diverged", clip_on=False)
    for axis in axes_row:
        axis.set_xscale("log")
        axis.set_xlabel(value_name)
        axis.grid(True, alpha=0.3)
    loss_axis.set_yscale("log")
    loss_axis.set_ylabel("final training loss (cross-entropy)")
    loss_axis.set_title(f"{title}: final training loss")
    accuracy_axis.set_ylabel("test accuracy")
    accuracy_axis.set_ylim(0.0, 1.02)
    accuracy_axis.set_title(f"{title}: test accuracy")
    loss_axis.legend(fontsize="small")
    accuracy_axis.legend(fontsize="small", loc="lower left")


def _mean_and_range(cells: Sequence) -> tuple:
    """Per cell (one value of the sweep): mean, min and max of its finite entries (NaN if
    none is finite: every seed diverged)."""
    mean, low, high = [], [], []
    for cell in cells:
        finite = [v for v in cell if v is not None and np.isfinite(v)]
        mean.append(np.mean(finite) if finite else np.nan)
        low.append(np.min(finite) if finite else np.nan)
        high.append(np.max(finite) if finite else np.nan)
    return np.array(mean), np.array(low), np.array(high)


def sweep_data(values: Sequence[float], variants: Sequence[str], runs: dict) -> dict:
    """The numbers behind a sweep's table and plot, per variant and value, per seed."""
    return {"values": list(values), "variants": {
        name: [{"final_train_loss": final_values(runs[name, v], "train_loss"),
                "first_batch_loss": [r.first_batch_loss for r in runs[name, v]],
                "test_accuracy": final_values(runs[name, v], "test_accuracy"),
                "train_accuracy": final_values(runs[name, v], "train_accuracy"),
                "diverged": sum(r.diverged for r in runs[name, v]),
                "diverged_at": [r.diverged_at for r in runs[name, v]]}
               for v in values]
        for name in variants}}
