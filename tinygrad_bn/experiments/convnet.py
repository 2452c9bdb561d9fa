"""``convnet``: BatchNorm2d in its home, a small convolutional network, with and without it.

    Conv(3×3, 16) → [BatchNorm2d] → ReLU → MaxPool(2) → Conv(3×3, 32) → [BatchNorm2d] → ReLU
    → MaxPool(2) → Flatten → Linear

trained from the same seeds (the same initial kernels) on real images: scikit-learn's 8×8
digits by default, or Fashion-MNIST's 28×28 (``--dataset fashion-mnist``; a 12 000-image
training subset). Two learning rates: a moderate one and a high one, where the paper says BN
lets a network train that otherwise would not. Measured: test accuracy during and at the end
of training, the final training loss and the steps to reach the highest final loss of any run.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any

import numpy as np

from .datasets import digits_task, fashion_mnist_task
from .family import convnet, steps_cell, steps_to_reach
from .report import ExperimentResult, Progress, Table, choose_setup, mean_pm, run_plan
from .training import train_network

__all__ = ["NAME", "SUMMARY", "run", "plot"]

NAME = "convnet"
SUMMARY = "a small CNN with and without BatchNorm2d on real images"
DEFAULT_SEEDS = 3
OPTIONS: tuple = ("dataset",)
DATASETS = ("digits", "fashion-mnist")
LOADERS = {"digits": digits_task, "fashion-mnist": fashion_mnist_task}

VARIANTS = {"BN2d": True, "no BN": False}
FULL = {"lrs": (0.05, 0.5), "steps": 1500, "eval_every": 100, "batch_size": 64,
        "rows": {"digits": None, "fashion-mnist": 12000}}
QUICK = {"lrs": (0.05, 0.5), "steps": 12, "eval_every": 6, "batch_size": 32,
         "rows": {"digits": 160, "fashion-mnist": 160}}


def run(quick: bool = False, seeds: int | None = None, progress: Progress | None = None,
        dataset: str = "digits") -> ExperimentResult:
    """Train the CNN with and without BatchNorm2d at both learning rates."""
    if dataset not in DATASETS:
        raise ValueError(f"convnet runs on {', '.join(DATASETS)}, not {dataset!r}")
    started = time.perf_counter()
    setup, seeds = choose_setup(quick, seeds, QUICK, FULL, DEFAULT_SEEDS)
    task = LOADERS[dataset]()
    if setup["rows"][dataset]:
        task = task.subset(setup["rows"][dataset])
        if quick:  # a quick run evaluates on a small test set too
            task = type(task)(task.name, task.X_train, task.y_train, task.X_test[:200],
                              task.y_test[:200], task.classes, task.description)
    plan = [(f"{name}, lr {lr:g}, seed {seed}",
             partial(train_network, task, None, lr=lr, steps=setup["steps"], seed=seed,
                     batch_size=setup["batch_size"], eval_every=setup["eval_every"],
                     network=convnet(batch_norm)))
            for lr in setup["lrs"] for name, batch_norm in VARIANTS.items()
            for seed in range(seeds)]
    results = iter(run_plan(plan, progress))
    runs = {(lr, name): [next(results) for _ in range(seeds)]
            for lr in setup["lrs"] for name in VARIANTS}

    def finals(lr: float, name: str, key: str) -> list:
        return [float("nan") if r.diverged else r.final[key] for r in runs[lr, name]]

    rows, findings = [], []
    for lr in setup["lrs"]:
        # Every run that did not diverge reaches the highest final loss of any run.
        worst = np.nanmax([finals(lr, n, "train_loss") for n in VARIANTS])
        for name in VARIANTS:
            group = runs[lr, name]
            early = [r.history[1]["test_accuracy"] if len(r.history) > 1 else float("nan")
                     for r in group]
            rows.append([f"{lr:g}", name, mean_pm(early),
                         mean_pm(finals(lr, name, "test_accuracy")),
                         mean_pm(finals(lr, name, "train_loss")),
                         steps_cell([steps_to_reach(r, worst) for r in group])])
        accuracies = {n: np.nanmean(finals(lr, n, "test_accuracy")) for n in VARIANTS}
        findings.append(f"lr {lr:g}: final test accuracy " + ", ".join(
            f"{n} {a:.3f}" for n, a in accuracies.items()))
    table = Table("A small convnet with and without BatchNorm2d", [
        "lr", "variant", f"test accuracy at step {setup['eval_every']}",
        "final test accuracy", "final train loss", "steps to the highest final loss"], rows,
        f"{task.description}; {setup['steps']} SGD steps of {setup['batch_size']}; mean ± sd "
        f"over {seeds} seeds. Last column: first evaluation (every {setup['eval_every']} "
        "steps) at which the training loss is at most the highest final loss of any run at that "
        "learning rate.")
    data = {"lrs": list(setup["lrs"]),
            "variants": {name: {f"{lr:g}": {
                "steps": [h["step"] for h in runs[lr, name][0].history],
                "test_accuracy": [[h["test_accuracy"] for h in r.history]
                                  for r in runs[lr, name]]}
                for lr in setup["lrs"]} for name in VARIANTS}}
    settings = {"data": task.description,
                "network": "Conv(1→16, 3×3, pad 1) → [BN2d] → ReLU → MaxPool(2) → "
                           "Conv(16→32) → [BN2d] → ReLU → MaxPool(2) → Flatten → Linear; "
                           "PyTorch's default initialisation; no conv bias before BN",
                "training": f"plain SGD at lr {', '.join(f'{lr:g}' for lr in setup['lrs'])}, "
                            f"{setup['steps']} steps of {setup['batch_size']}, cross-entropy",
                "seeds": f"0 to {seeds - 1}"}
    return ExperimentResult(NAME, "BatchNorm2d in a small convnet",
                            "Does BatchNorm2d speed up a CNN and let it take a high learning "
                            "rate, as the paper reports for Inception?", settings, [table],
                            findings, data, time.perf_counter() - started)


def plot(result: ExperimentResult, path: Any) -> None:
    """One panel per learning rate: test accuracy over training (mean over seeds)."""
    from .plotting import new_figure, same_length, save_figure

    colours = {"BN2d": "#1f77b4", "no BN": "#d62728"}
    lrs = result.data["lrs"]
    figure, axes = new_figure(1, len(lrs), (5.5 * len(lrs), 4.2))
    for axis, lr in zip(axes[0], lrs):
        for name, per_lr in result.data["variants"].items():
            curves = per_lr[f"{lr:g}"]
            accuracy = np.asarray(same_length(curves["test_accuracy"]), dtype=float)
            axis.plot(curves["steps"][:accuracy.shape[1]], accuracy.mean(axis=0),
                      color=colours.get(name), label=name)
        axis.set_ylim(0.0, 1.0)
        axis.set_xlabel("SGD step")
        axis.set_ylabel("test accuracy (mean over seeds)")
        axis.set_title(f"lr {lr:g}")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle("A small convnet with and without BatchNorm2d")
    save_figure(figure, path)
