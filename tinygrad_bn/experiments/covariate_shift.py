"""``covariate-shift``: does BN keep a layer's input distribution steady, and is that why it
helps?

*Internal covariate shift* (Ioffe & Szegedy 2015) is the change of a layer's input
distribution while the layers before it learn. Their Figure 1 followed one unit of the last
hidden layer: the 15th, 50th and 85th percentiles of its input (the value entering the
nonlinearity) over training — drifting without BN, steady with it. This experiment measures
the same thing on a fixed set of 256 training examples at every step.

Santurkar et al. (2018) tested the explanation by *adding* covariate shift on purpose: noise
after every BN whose distribution changes at every step. Here that noise rescales and shifts
each feature anew at every step (`ShiftNoise`, a simpler variant of theirs). If steadiness
were what mattered, such a network should train no better than the plain one.
They also measured what they argued matters instead, the smoothness of the loss along the
gradient; this experiment records both of their measures:

* loss variation — take the step the optimizer is about to take, and evaluate the loss on
  the same mini-batch at 0.5, 1, 2 and 4 times that step: max − min of those losses (and the
  current one). Small: the gradient is a reliable guide for a step of that size.
* gradient change — ‖∇L(θ − η·g) − g‖ / ‖g‖: how much the gradient turns after one step.

Read next: ../../docs/batchnorm.md, which shows the full results.
"""
from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

import numpy as np

from ..function import no_grad
from ..nn import functional as F
from ..tensor import Tensor, increment_version
from .datasets import spirals_task
from .report import (ExperimentResult, Progress, Table, choose_setup, mean_pm, run_plan,
                     unit_trace)
from .training import NetSpec, Run, Tap, train_network, untouched

__all__ = ["NAME", "SUMMARY", "run", "plot", "Recorder"]

NAME = "covariate-shift"
SUMMARY = "a hidden layer's input distribution over training"
DEFAULT_SEEDS = 3
OPTIONS: tuple = ()
PERCENTILES = (15, 50, 85)
STEP_MULTIPLES = (0.5, 1.0, 2.0, 4.0)
VARIANTS = {"plain": NetSpec(probe=-1), "BN": NetSpec(batch_norm=True, probe=-1),
            "BN + noise 0.25": NetSpec(batch_norm=True, noise=0.25, probe=-1),
            "BN + noise 1": NetSpec(batch_norm=True, noise=1.0, probe=-1)}

FULL = {"lr": 0.1, "steps": 3000, "batch_size": 64, "eval_every": 100, "probe_rows": 256,
        "landscape_every": 50, "early": 300, "table_steps": (0, 10, 100, 300, 1000, 2000, 3000)}
QUICK = {"lr": 0.1, "steps": 60, "batch_size": 64, "eval_every": 10, "probe_rows": 128,
         "landscape_every": 20, "early": 20, "table_steps": (0, 10, 30, 60)}


class Recorder:
    """A training hook (see `train_network`) that measures the probed layer and the landscape.

    ``percentiles[i]`` is a (3, units) array: the 15th/50th/85th percentile of each unit's
    pre-activation input over the probe rows, with the parameters after ``steps[i]`` updates.
    """

    def __init__(self, probe_X: np.ndarray, lr: float, landscape_every: int):
        self.probe_X, self.lr, self.landscape_every = probe_X, lr, landscape_every
        self.steps: list = []
        self.percentiles: list = []
        self.landscape: list = []   # (step, loss variation, gradient change)

    def __call__(self, step: int, model: Any, X: np.ndarray, y: np.ndarray, loss: Tensor) -> None:
        self.measure(model, step - 1)  # the hook runs before update `step` is applied
        if step == 1 or step % self.landscape_every == 0:
            self.landscape.append((step - 1, *self._landscape(model, X, y, loss)))

    def measure(self, model: Any, step: int) -> None:
        """Record the probed layer's percentiles, in training mode, disturbing nothing."""
        tap = next(m for m in model.modules() if isinstance(m, Tap))
        with untouched(model), no_grad():
            model(Tensor(self.probe_X))
        self.steps.append(step)
        self.percentiles.append(np.percentile(tap.last, PERCENTILES, axis=0))

    def _landscape(self, model: Any, X: np.ndarray, y: np.ndarray, loss: Tensor) -> tuple:
        params = list(model.parameters())
        weights = [p.data.copy() for p in params]
        grads = [p.grad.copy() for p in params]
        losses = [loss.item()]
        moved_grad = None
        with untouched(model):
            for multiple in STEP_MULTIPLES:
                for p, w, g in zip(params, weights, grads):
                    p.data[...] = w - multiple * self.lr * g
                    increment_version(p)
                if multiple == 1.0:
                    moved = F.cross_entropy(model(Tensor(X)), y)
                    model.zero_grad()
                    moved.backward()
                    moved_grad = np.concatenate([p.grad.ravel() for p in params])
                else:
                    with no_grad():
                        moved = F.cross_entropy(model(Tensor(X)), y)
                losses.append(moved.item())
            for p, w, g in zip(params, weights, grads):
                p.data[...] = w
                increment_version(p)
                p.grad = g
        flat = np.concatenate([g.ravel() for g in grads])
        change = float(np.linalg.norm(moved_grad - flat) / max(np.linalg.norm(flat), 1e-30))
        return max(losses) - min(losses), change


def _run_one(task: Any, spec: NetSpec, seed: int, setup: dict, probe_X: np.ndarray) -> tuple:
    recorder = Recorder(probe_X, setup["lr"], setup["landscape_every"])
    run = train_network(task, spec, lr=setup["lr"], steps=setup["steps"], seed=seed,
                        batch_size=setup["batch_size"], eval_every=setup["eval_every"],
                        on_step=recorder)
    if not run.diverged:
        recorder.measure(run.model, run.steps)  # and after the last update
    return run, recorder


def _summary(run: Run, recorder: Recorder, early: int) -> dict:
    """Per-run measures over all units of the probed layer (see the table's note)."""
    P = np.asarray(recorder.percentiles)                  # (records, 3, units)
    spread = np.maximum(P[:, 2] - P[:, 0], 1e-12)          # p85 − p15, per record and unit
    median = P[:, 1]
    drift = np.abs(median[-1] - median[0]) / ((spread[0] + spread[-1]) / 2)
    jitter = np.abs(np.diff(median, axis=0)) / spread[1:]
    landscape = np.asarray([(v, c) for _, v, c in recorder.landscape], dtype=float)
    accuracy = {h["step"]: h["test_accuracy"] for h in run.history}
    return {"test_accuracy_early": accuracy.get(early, math.nan),
            "test_accuracy": math.nan if run.diverged else run.final["test_accuracy"],
            "drift": float(drift.mean()),
            "spread_ratio": float(np.median(spread[-1] / spread[0])),
            "jitter": float(jitter.mean()) if jitter.size else math.nan,
            "loss_variation": float(np.nanmean(landscape[:, 0])),
            "gradient_change": float(np.nanmean(landscape[:, 1]))}


def run(quick: bool = False, seeds: int | None = None,
        progress: Progress | None = None) -> ExperimentResult:
    """Train the four variants on the spirals, measuring the last hidden layer's input."""
    started = time.perf_counter()
    setup, seeds = choose_setup(quick, seeds, QUICK, FULL, DEFAULT_SEEDS)
    task = spirals_task()
    probe_X = task.X_train[np.random.default_rng(0).permutation(len(task.X_train))
                           [:setup["probe_rows"]]]
    plan = [(f"{task.name}: {name}, seed {seed}", partial(_run_one, task, spec, seed, setup,
                                                           probe_X))
            for name, spec in VARIANTS.items() for seed in range(seeds)]
    results = iter(run_plan(plan, progress))
    outcome = {name: [next(results) for _ in range(seeds)] for name in VARIANTS}
    summaries = {name: [_summary(r, rec, setup["early"]) for r, rec in pairs]
                 for name, pairs in outcome.items()}

    unit_rows = []
    for step in setup["table_steps"]:
        row = [str(step)]
        for name in VARIANTS:
            recorder = outcome[name][0][1]
            if step in recorder.steps:
                p = recorder.percentiles[recorder.steps.index(step)][:, 0]
                row.append(" / ".join(f"{v:+.2f}" for v in p))
            else:
                row.append("—")
        unit_rows.append(row)
    unit_table = Table("unit 0 of the last hidden layer (seed 0): 15th / 50th / 85th percentile "
                       "of its input", ["step", *VARIANTS], unit_rows,
                       f"Measured in training mode on {setup['probe_rows']} fixed training "
                       "examples; for BN variants the input is BN's output γ·x̂ + β (plus the "
                       "noise), which is what enters the ReLU.")

    keys = ("test_accuracy_early", "test_accuracy", "drift", "spread_ratio", "jitter",
            "loss_variation", "gradient_change")
    summary_rows = [[name] + [mean_pm([s[k] for s in summaries[name]], 3) for k in keys]
                    for name in VARIANTS]
    summary_table = Table(
        "every unit of the last hidden layer, and the loss landscape", [
            "variant", f"test acc. @ {setup['early']}", f"test acc. @ {setup['steps']}",
            "drift of median", "spread end/start", "step-to-step shift", "loss variation",
            "gradient change"], summary_rows,
        "Drift: |median at the end − median at the start| in units of the spread (p85 − p15), "
        "averaged over units. Spread end/start: median over units. Step-to-step shift: "
        "|change of the median from one step to the next| / spread, averaged over steps and "
        f"units. Loss variation and gradient change: every {setup['landscape_every']} steps, "
        f"see the module docstring; averaged over the run. Mean ± sd over {seeds} seeds.")

    findings = _findings(summaries)
    recorders = {name: outcome[name][0][1] for name in VARIANTS}
    data = {"table_steps": list(setup["table_steps"]),
            "unit0": {name: unit_trace(rec.steps, rec.percentiles, 0, PERCENTILES)
                      for name, rec in recorders.items()},
            "test_accuracy": {name: {"steps": [h["step"] for h in outcome[name][0][0].history],
                                     "per_seed": [[h["test_accuracy"] for h in r.history]
                                                  for r, _ in outcome[name]]}
                              for name in VARIANTS},
            "landscape": {name: {"steps": [s for s, _, _ in outcome[name][0][1].landscape],
                                 "loss_variation": [[v for _, v, _ in rec.landscape]
                                                    for _, rec in outcome[name]]}
                          for name in VARIANTS},
            "summaries": summaries}
    settings = {
        "data": task.description,
        "network": "4 hidden layers of 64, each Linear → [BN → noise] → ReLU; the last "
                   "layer's input to its ReLU is measured",
        "noise": "per feature and step, ·U(1/(1+a), 1+a) and +U(−a, a), a = 0.25 or 1",
        "training": f"plain SGD, lr {setup['lr']:g}, batch {setup['batch_size']}, "
                    f"{setup['steps']} steps, cross-entropy",
        "seeds": f"0 to {seeds - 1}",
    }
    return ExperimentResult(NAME, "Internal covariate shift, with and without BatchNorm",
                            "Does BN keep a hidden layer's input distribution steady (the "
                            "paper's motivation), and is that steadiness what helps training?",
                            settings, [unit_table, summary_table], findings, data,
                            time.perf_counter() - started)


def _findings(summaries: dict) -> list:
    def mean(name: str, key: str) -> float:
        return float(np.nanmean([s[key] for s in summaries[name]]))

    lines = []
    for name in summaries:
        lines.append(f"{name}: final test accuracy {mean(name, 'test_accuracy'):.3f}, drift "
                     f"{mean(name, 'drift'):.2f}, step-to-step shift "
                     f"{mean(name, 'jitter'):.3f}, loss variation "
                     f"{mean(name, 'loss_variation'):.3f}")
    plain_shift = mean("plain", "jitter")
    for name in summaries:
        if name.startswith("BN + noise"):
            more = mean(name, "jitter") / plain_shift
            lines.append(f"{name}: {more:.1f}× the plain network's step-to-step shift; test "
                         f"accuracy {mean(name, 'test_accuracy'):.3f} against plain "
                         f"{mean('plain', 'test_accuracy'):.3f} and BN "
                         f"{mean('BN', 'test_accuracy'):.3f}")
    return lines


def plot(result: ExperimentResult, path: Any) -> None:
    """Test accuracy, unit 0's percentiles for each variant, and the loss variation."""
    from .plotting import new_figure, same_length, save_figure, style

    data = result.data
    variants = list(data["unit0"])
    figure, axes = new_figure(2, 3, (14, 7.5))
    accuracy_axis, landscape_axis = axes[0, 0], axes[1, 2]
    unit_axes = [axes[0, 1], axes[0, 2], axes[1, 0], axes[1, 1]]
    for name in variants:
        curves = data["test_accuracy"][name]
        per_seed = np.array([[np.nan if v is None else v for v in seed]
                             for seed in same_length(curves["per_seed"])], dtype=float)
        accuracy_axis.plot(curves["steps"][:per_seed.shape[1]], np.nanmean(per_seed, axis=0),
                           **style(name))
        land = data["landscape"][name]
        values = np.array([[np.nan if v is None else v for v in seed]
                           for seed in same_length(land["loss_variation"])], dtype=float)
        landscape_axis.plot(land["steps"][:values.shape[1]], np.nanmean(values, axis=0),
                            **style(name))
    accuracy_axis.set(title="(a) test accuracy (mean over seeds)", xlabel="SGD step",
                      ylabel="test accuracy", ylim=(0.0, 1.02))
    accuracy_axis.legend(fontsize="small", loc="lower right")
    landscape_axis.set(title="(f) loss variation along the gradient (mean)",
                       xlabel="SGD step",
                       ylabel="loss range, 0.5 to 4 steps ahead",
                       yscale="log")
    low = min(min(data["unit0"][n]["p15"]) for n in variants)
    high = max(max(data["unit0"][n]["p85"]) for n in variants)
    for letter, axis, name in zip("bcde", unit_axes, variants):
        trace = data["unit0"][name]
        colour = style(name)["color"]
        axis.fill_between(trace["steps"], trace["p15"], trace["p85"], color=colour, alpha=0.2,
                          linewidth=0, label="15th to 85th percentile")
        axis.plot(trace["steps"], trace["p50"], color=colour, label="median")
        axis.set(title=f"({letter}) {name}: input to unit 0's ReLU (seed 0)", xlabel="SGD step",
                 ylabel="pre-activation value", ylim=(low - 0.1 * (high - low),
                                                      high + 0.1 * (high - low)))
        axis.legend(fontsize="small", loc="upper right")
    for axis in axes.flat:
        axis.grid(True, alpha=0.3)
    figure.suptitle("Internal covariate shift: the last hidden layer's input over training "
                    "(after Ioffe & Szegedy 2015, Fig. 1, and Santurkar et al. 2018)")
    save_figure(figure, path)
