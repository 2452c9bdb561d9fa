"""``bn-lite``: which of BatchNorm's parts do the work?

BN does three things: it subtracts the batch mean, divides by the batch spread, and then
applies a learned scale γ and shift β. Each variant keeps some of them:

    full BN           y = γ·(x − μ_B)/√(σ²_B + ε) + β
    mean only         y = γ·(x − μ_B) + β
    variance only     y = γ·x/√(σ²_B + ε) + β
    fixed γ=1, β=0    y = (x − μ_B)/√(σ²_B + ε)          (BatchNorm1d(affine=False))
    no BN

trained from the same seeds on the spirals (a deep 4 × 64 ReLU network, where BN's effect is
large) at a moderate and a high learning rate. Measured: final training loss, test accuracy
and how many runs diverged.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any

import numpy as np

from .. import nn
from .datasets import spirals_task
from .family import PartialBatchNorm, mlp
from .report import ExperimentResult, Progress, Table, choose_setup, mean_pm, run_plan
from .training import train_network

__all__ = ["NAME", "SUMMARY", "run", "plot"]

NAME = "bn-lite"
SUMMARY = "full BN against mean-only, variance-only and fixed γ = 1, β = 0"
DEFAULT_SEEDS = 3
OPTIONS: tuple = ()

VARIANTS = {
    "full BN": lambda width: nn.BatchNorm1d(width),
    "mean only": lambda width: PartialBatchNorm(width, center=True, scale=False),
    "variance only": lambda width: PartialBatchNorm(width, center=False, scale=True),
    "fixed γ=1, β=0": lambda width: nn.BatchNorm1d(width, affine=False),
    "no BN": None,
}
HIDDEN = (64, 64, 64, 64)

FULL = {"lrs": (0.1, 1.0), "steps": 2000, "eval_every": 100, "batch_size": 32, "points": 400}
QUICK = {"lrs": (0.1, 1.0), "steps": 20, "eval_every": 10, "batch_size": 32, "points": 60}


def run(quick: bool = False, seeds: int | None = None,
        progress: Progress | None = None) -> ExperimentResult:
    """Train the five variants at both learning rates."""
    started = time.perf_counter()
    setup, seeds = choose_setup(quick, seeds, QUICK, FULL, DEFAULT_SEEDS)
    task = spirals_task(points_per_class=setup["points"])
    plan = [(f"{name}, lr {lr:g}, seed {seed}",
             partial(train_network, task, None, lr=lr, steps=setup["steps"], seed=seed,
                     batch_size=setup["batch_size"], eval_every=setup["eval_every"],
                     network=mlp(norm, hidden=HIDDEN)))
            for lr in setup["lrs"] for name, norm in VARIANTS.items() for seed in range(seeds)]
    results = iter(run_plan(plan, progress))
    runs = {(lr, name): [next(results) for _ in range(seeds)]
            for lr in setup["lrs"] for name in VARIANTS}

    def finals(lr: float, name: str, key: str) -> list:
        return [float("nan") if r.diverged else r.final[key] for r in runs[lr, name]]

    rows = []
    for name in VARIANTS:
        row = [name]
        for lr in setup["lrs"]:
            row += [mean_pm(finals(lr, name, "train_loss")),
                    mean_pm(finals(lr, name, "test_accuracy"))]
        rows.append(row)
    columns = ["variant"]
    for lr in setup["lrs"]:
        columns += [f"lr {lr:g}: final train loss", f"lr {lr:g}: test accuracy"]
    table = Table("Which parts of BatchNorm matter", columns, rows,
                  f"{task.description}; {len(HIDDEN)} hidden layers of 64, Linear → variant → "
                  f"ReLU; {setup['steps']} SGD steps of {setup['batch_size']}; mean ± sd over "
                  f"{seeds} seeds (diverged runs counted, not averaged).")
    data = {"lrs": list(setup["lrs"]),
            "variants": {name: {f"{lr:g}": {"steps": [h["step"] for h in runs[lr, name][0].history],
                                            "train_loss": [[h["train_loss"] for h in r.history]
                                                           for r in runs[lr, name]],
                                            "test_accuracy": finals(lr, name, "test_accuracy")}
                                for lr in setup["lrs"]} for name in VARIANTS}}
    findings = []
    for lr in setup["lrs"]:
        ranked = sorted(VARIANTS, key=lambda n: _finite_mean(finals(lr, n, "train_loss")))
        findings.append(f"lr {lr:g}: final training loss, lowest first: " + ", ".join(
            f"{n} {_mean_or_diverged(finals(lr, n, 'train_loss'))}" for n in ranked))
    settings = {"data": task.description,
                "network": f"{len(HIDDEN)} hidden layers of 64: Linear → [variant] → ReLU, "
                           "then Linear; He-initialised",
                "training": f"plain SGD at lr {', '.join(f'{lr:g}' for lr in setup['lrs'])}, "
                            f"{setup['steps']} steps of {setup['batch_size']}, cross-entropy",
                "seeds": f"0 to {seeds - 1}"}
    return ExperimentResult(NAME, "BN-lite: which of BatchNorm's parts do the work",
                            "Centring, scaling, or the learned γ and β?", settings, [table],
                            findings, data, time.perf_counter() - started)


def _finite_mean(values: list) -> float:
    """The mean of the runs that did not diverge; infinity when all did (sorts last)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("inf")


def _mean_or_diverged(values: list) -> str:
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return "diverged"
    text = f"{np.mean(finite):.3f}"
    return text if len(finite) == len(values) else f"{text} ({len(values) - len(finite)} div.)"


def plot(result: ExperimentResult, path: Any) -> None:
    """One panel per learning rate: the training loss of each variant (mean over seeds)."""
    from .plotting import new_figure, same_length, save_figure

    colours = {"full BN": "#1f77b4", "mean only": "#ff7f0e", "variance only": "#2ca02c",
               "fixed γ=1, β=0": "#9467bd", "no BN": "#d62728"}
    lrs = result.data["lrs"]
    figure, axes = new_figure(1, len(lrs), (5.5 * len(lrs), 4.2))
    for axis, lr in zip(axes[0], lrs):
        for name, per_lr in result.data["variants"].items():
            curves = per_lr[f"{lr:g}"]
            losses = np.asarray(same_length(curves["train_loss"]), dtype=float)
            if not np.isfinite(losses).any(axis=0).all():
                losses = losses[:, :np.argmin(np.isfinite(losses).any(axis=0))]  # all diverged
            if losses.size:
                axis.plot(curves["steps"][:losses.shape[1]], np.nanmean(losses, axis=0),
                          color=colours.get(name), label=name)
        axis.set_yscale("log")
        axis.set_xlabel("SGD step")
        axis.set_ylabel("training loss (mean over seeds)")
        axis.set_title(f"lr {lr:g}")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle("Which parts of BatchNorm do the work")
    save_figure(figure, path)
