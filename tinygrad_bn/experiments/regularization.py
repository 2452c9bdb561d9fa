"""``regularization``: the train/test gap with BN, with dropout, with both, with neither.

Claim tested: (3) BN acts as a regulariser. In training mode each example is normalised with
the statistics of the mini-batch it happens to be in, so its hidden values carry a little
noise that changes from step to step — like dropout's noise, but milder. If that helps
generalisation, the gap between training and test accuracy should shrink, and the test loss
should rise less in the late, over-fitting part of training.

Two over-fitting set-ups: the spirals with only a small training set (the test set is kept
whole), and the noisy placement labels, where a 4 × 64 network can memorise noise.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any

import numpy as np

from .datasets import placement_task, spirals_task
from .report import ExperimentResult, Progress, Table, choose_setup, mean_pm, run_plan
from .training import NetSpec, train_network

__all__ = ["NAME", "SUMMARY", "run", "plot"]

NAME = "regularization"
SUMMARY = "train/test gap with BN, dropout, both, neither"
DEFAULT_SEEDS = 5
OPTIONS: tuple = ()
DROPOUT = 0.2
VARIANTS = {"plain": NetSpec(), "BN": NetSpec(batch_norm=True),
            "dropout": NetSpec(dropout=DROPOUT),
            "BN + dropout": NetSpec(batch_norm=True, dropout=DROPOUT)}

FULL = {"spirals_rows": 150, "lr": 0.1, "steps": 3000, "eval_every": 100,
        "batch_size": {"spirals": 32, "placement": 64}}
QUICK = {"spirals_rows": 150, "lr": 0.1, "steps": 40, "eval_every": 20,
         "batch_size": {"spirals": 32, "placement": 64}}


def run(quick: bool = False, seeds: int | None = None,
        progress: Progress | None = None) -> ExperimentResult:
    """Train the four variants on both over-fitting set-ups."""
    started = time.perf_counter()
    setup, seeds = choose_setup(quick, seeds, QUICK, FULL, DEFAULT_SEEDS)
    tasks = [spirals_task().subset(setup["spirals_rows"]), placement_task()]
    plan = []
    for task in tasks:
        for name, spec in VARIANTS.items():
            for seed in range(seeds):
                plan.append((f"{task.name}: {name}, seed {seed}",
                             partial(train_network, task, spec, lr=setup["lr"],
                                     steps=setup["steps"], seed=seed,
                                     batch_size=setup["batch_size"][task.name],
                                     eval_every=setup["eval_every"])))
    results = iter(run_plan(plan, progress))
    runs = {(task.name, name): [next(results) for _ in range(seeds)]
            for task in tasks for name in VARIANTS}

    tables, findings, data = [], [], {}
    for task in tasks:
        rows = []
        for name in VARIANTS:
            group = runs[task.name, name]
            final = {key: [r.final[key] for r in group]
                     for key in ("train_accuracy", "test_accuracy", "train_loss", "test_loss")}
            gap = np.subtract(final["train_accuracy"], final["test_accuracy"])
            best_test = [min(h["test_loss"] for h in r.history) for r in group]
            rows.append([name, mean_pm(final["train_accuracy"]), mean_pm(final["test_accuracy"]),
                         mean_pm(gap), mean_pm(final["train_loss"]), mean_pm(final["test_loss"]),
                         mean_pm(best_test)])
        note = (f"{len(task.X_train)} training and {len(task.X_test)} test rows; lr "
                f"{setup['lr']:g}, {setup['steps']} SGD steps of "
                f"{setup['batch_size'][task.name]}; dropout p = {DROPOUT:g} after each hidden "
                f"activation; mean ± sd over {seeds} seeds. Gap = train − test accuracy. "
                "\"Lowest test loss\" is the minimum over the run's evaluations (every "
                f"{setup['eval_every']} steps), what early stopping would have kept.")
        tables.append(Table(f"{task.name}: generalisation", ["variant", "train accuracy",
                                                              "test accuracy", "gap",
                                                              "final train loss",
                                                              "final test loss",
                                                              "lowest test loss"], rows, note))
        data[task.name] = {name: _curves(runs[task.name, name]) for name in VARIANTS}
        findings += _findings(task.name, runs)

    settings = {
        "data": "; ".join(t.description for t in tasks),
        "network": "4 hidden layers of 64: Linear → [BN] → ReLU → [Dropout], then Linear",
        "training": f"plain SGD, lr {setup['lr']:g}, {setup['steps']} steps, cross-entropy, "
                    "no weight decay, no early stopping",
        "seeds": f"0 to {seeds - 1}",
    }
    return ExperimentResult(NAME, "Regularisation: BatchNorm, dropout, both, neither",
                            "Claim (3): does BN act as a regulariser (a smaller train/test "
                            "gap), and does it make dropout unnecessary?", settings, tables,
                            findings, data, time.perf_counter() - started)


def _curves(group: list) -> dict:
    keys = ("train_accuracy", "test_accuracy", "train_loss", "test_loss")
    return {"steps": [h["step"] for h in group[0].history],
            **{key: [[h[key] for h in r.history] for r in group] for key in keys}}


def _findings(task: str, runs: dict) -> list:
    def gap(name: str) -> float:
        group = runs[task, name]
        return float(np.mean([r.final["train_accuracy"] - r.final["test_accuracy"]
                              for r in group]))

    def test(name: str) -> float:
        return float(np.mean([r.final["test_accuracy"] for r in runs[task, name]]))

    order = sorted(VARIANTS, key=test, reverse=True)
    ranking = ", ".join(f"{name} {test(name):.3f}" for name in order)
    gaps = ", ".join(f"{name} {gap(name):+.3f}" for name in VARIANTS)
    return [f"{task}: mean test accuracy, best first: {ranking}",
            f"{task}: mean train − test accuracy gap: {gaps}"]


def plot(result: ExperimentResult, path: Any) -> None:
    """Per dataset: train and test accuracy per variant (bars), and test loss over training."""
    from .plotting import new_figure, save_figure, style

    tasks = list(result.data)
    figure, axes = new_figure(len(tasks), 2, (11, 4.2 * len(tasks)))
    for (bars, curves), task in zip(axes, tasks):
        variants = result.data[task]
        positions = np.arange(len(variants))
        for offset, key, hatch in ((-0.2, "train_accuracy", ""), (0.2, "test_accuracy", "//")):
            means = [np.mean([c[-1] for c in v[key]]) for v in variants.values()]
            sds = [np.std([c[-1] for c in v[key]]) for v in variants.values()]
            colours = [style(name)["color"] for name in variants]
            bars.bar(positions + offset, means, width=0.38, yerr=sds, capsize=3, color=colours,
                     hatch=hatch, edgecolor="white", alpha=1.0 if not hatch else 0.6)
        bars.set_xticks(positions, list(variants))
        low = min(np.mean([c[-1] for c in v["test_accuracy"]]) for v in variants.values())
        bars.set_ylim(max(0.0, low - 0.15), 1.0)
        bars.set_ylabel("accuracy (solid: train, hatched: test)")
        bars.set_title(f"{task}: final train and test accuracy")
        bars.grid(True, axis="y", alpha=0.3)
        for name, v in variants.items():
            curve = np.mean(np.asarray(v["test_loss"], dtype=float), axis=0)
            curves.plot(v["steps"][1:], curve[1:], **style(name))  # from the first evaluation
        curves.set_xlabel("SGD step")
        curves.set_ylabel("test loss (mean over seeds)")
        curves.set_yscale("log")
        curves.set_title(f"{task}: test loss during training")
        curves.grid(True, alpha=0.3)
        curves.legend(fontsize="small")
    figure.suptitle("Regularisation: the train/test gap with and without BatchNorm and dropout")
    save_figure(figure, path)
