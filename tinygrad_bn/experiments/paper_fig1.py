"""``paper-fig1``: the BatchNorm paper's Figure 1, redone on real images.

Ioffe & Szegedy (2015), §4.1: MNIST; three fully connected hidden layers of 100 sigmoid units;
weights from a small Gaussian; SGD on mini-batches of 60 for 50 000 steps; the same network
with BN before each sigmoid (its Linear then has no bias: BN's β replaces it). Figure 1 shows
(a) the test accuracy against the number of steps, and (b, c) the 15th, 50th and 85th
percentiles of the input to one sigmoid of the last hidden layer over training, without BN
(b) and with BN (c). The paper reports that with BN the network trains faster and ends more
accurate, and that the input distribution "is much more stable", while without BN "the
distribution changes significantly over time, both in its mean and the variance".

Here, on Fashion-MNIST (MNIST's format and sizes), scikit-learn's 8×8 digits, or MNIST itself
when its files are present:

* Both arms start from **identical weights** (`build_network` draws them layer by layer from
  one seeded generator; BN's γ = 1, β = 0 are not drawn) and see **the same mini-batches in the
  same order** (the seed fixes the shuffling).
* The sigmoid's input is read by a **forward hook** on the last hidden `Sigmoid` (what enters
  it is its argument), so the measured network is exactly the trained one. Every
  ``probe_every`` steps the network runs once on a fixed probe set of training images, in
  training mode as during a step (BN normalises with the probe's own batch statistics), with
  BN's running statistics restored afterwards; the hook keeps that Sigmoid's input.
* The paper gives no learning rate; 0.5 on the mean loss is what known reproductions used.

Read next: ../../docs/batchnorm.md, "The paper's experiment, redone".
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .. import nn
from ..function import no_grad
from ..tensor import Tensor
from .datasets import Task, load_task
from .report import ExperimentResult, Progress, Table, choose_setup, mean_pm, unit_trace
from .training import NetSpec, Run, train_network, untouched

__all__ = ["NAME", "SUMMARY", "OPTIONS", "DATASETS", "run", "plot", "SigmoidInput"]

NAME = "paper-fig1"
SUMMARY = "the BN paper's Figure 1: test accuracy and a sigmoid's input over training"
DEFAULT_SEEDS = 1   # the paper's figure is one run; --seeds N repeats it
OPTIONS = ("dataset", "steps", "lr", "init_std")
DATASETS = ("fashion-mnist", "digits", "mnist")
DEFAULT_DATASET = "fashion-mnist"   # MNIST's format and sizes, and installable offline
PERCENTILES = (15, 50, 85)
UNIT = 0   # "a typical sigmoid": unit 0, fixed before training rather than picked afterwards
ARMS = {"plain": "without BN", "BN": "with BN"}
# "Steps to reach" a test accuracy: the paper's MNIST network ends near 0.98; Fashion-MNIST is
# harder (a multilayer perceptron ends near 0.88), so its bar is lower.
TARGETS = {"digits": 0.95, "mnist": 0.95, "fashion-mnist": 0.85}

FULL = {"steps": 50000, "lr": 0.5, "init_std": 0.01, "batch_size": 60, "probe_rows": 1000,
        "probe_every": 100, "eval_every": {"digits": 100, "fashion-mnist": 500, "mnist": 500},
        "table_steps": (0, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 30000, 40000, 50000)}
# Quick: a few hundred steps, and at most 6 000 training images, because every evaluation
# runs the network over the whole training set (the test set is kept whole).
QUICK = {"steps": 300, "lr": 0.5, "init_std": 0.01, "batch_size": 60, "probe_rows": 300,
         "train_rows": 6000,
         "probe_every": 10, "eval_every": {"digits": 50, "fashion-mnist": 50, "mnist": 50},
         "table_steps": (0, 100, 200, 300)}
PROGRESS_CHUNKS = 20   # progress reports per training run


class SigmoidInput:
    """A forward hook that keeps what enters one module while ``recording`` is on.

    Register it with ``module.register_forward_hook(recorder)``; the hook receives
    (module, args, output), and args[0] is the module's input, a (batch, units) tensor.
    ``steps[i]`` is the step of record i and ``percentiles[i]`` a (3, units) array: the
    15th/50th/85th percentile of each unit's input over the probe rows.
    """

    def __init__(self, probe_X: np.ndarray) -> None:
        self.probe_X = probe_X
        self.recording = False
        self.steps: list = []
        self.percentiles: list = []

    def __call__(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        if self.recording:
            self.percentiles.append(np.percentile(args[0].data, PERCENTILES, axis=0))

    def measure(self, model: nn.Module, step: int) -> None:
        """One forward pass over the probe rows in training mode, recorded as ``step``; BN's
        running statistics are left as they were."""
        self.recording = True
        try:
            with untouched(model), no_grad():
                model(Tensor(self.probe_X))
        finally:
            self.recording = False
        self.steps.append(step)


def last_sigmoid(model: nn.Module) -> nn.Module:
    """The Sigmoid of the last hidden layer."""
    return [m for m in model.modules() if isinstance(m, nn.Sigmoid)][-1]


def _train_arm(task: Task, spec: NetSpec, seed: int, setup: dict, probe_X: np.ndarray,
               progress: Any) -> tuple:
    """One training run with the hook in place: (Run, SigmoidInput)."""
    recorder = SigmoidInput(probe_X)
    # The hook goes on when the first step calls back (train_network builds the network).
    handle = None

    def on_step(step: int, model: nn.Module, *_: Any) -> None:
        nonlocal handle
        if handle is None:   # the first step: nothing is updated yet
            handle = last_sigmoid(model).register_forward_hook(recorder)
        if (step - 1) % setup["probe_every"] == 0:
            recorder.measure(model, step - 1)   # runs before update `step` is applied
        if progress is not None:
            progress(step - 1)

    run = train_network(task, spec, lr=setup["lr"], steps=setup["steps"], seed=seed,
                        batch_size=setup["batch_size"],
                        eval_every=setup["eval_every"][task.name], on_step=on_step)
    if not run.diverged:
        recorder.measure(run.model, run.steps)   # and after the last update
    if handle is not None:
        handle.remove()
    return run, recorder


def _late_start(recorder: SigmoidInput, steps: int) -> int:
    """The index of the first record at or after a tenth of the run (the last record if a
    diverged run stopped before)."""
    later = [i for i, s in enumerate(recorder.steps) if s >= steps // 10]
    return later[0] if later else len(recorder.steps) - 1


def _spread_summary(run: Run, recorder: SigmoidInput, target: float) -> dict:
    """One run's numbers: when it reached ``target``, its accuracy, and how the last hidden
    layer's input spread (p85 − p15) and median moved between the first and last record.

    From a small initialisation the plain network's sigmoid inputs all start near 0, so its
    growth from step 0 is mostly the weights growing from their tiny start; the growth from a
    tenth of the run to the end ("late") is the drift once the network has started to learn.
    """
    P = np.asarray(recorder.percentiles)            # (records, 3, units)
    spread = P[:, 2] - P[:, 0]
    start, end = np.maximum(spread[0], 1e-12), spread[-1]
    late = np.maximum(spread[_late_start(recorder, run.steps)], 1e-12)
    drift = np.abs(P[-1, 1] - P[0, 1]) / ((start + end) / 2)
    reached = next((h["step"] for h in run.history if h["test_accuracy"] >= target), None)
    accuracies = [h["test_accuracy"] for h in run.history]
    return {"steps_to_target": reached,
            "final_accuracy": math.nan if run.diverged else run.final["test_accuracy"],
            "best_accuracy": float(np.nanmax(accuracies)),
            "unit_spread_start": float(spread[0, UNIT]), "unit_spread_end": float(end[UNIT]),
            "unit_growth": float(end[UNIT] / start[UNIT]),
            "growth_median": float(np.median(end / start)),
            "growth_late_median": float(np.median(end / late)),
            "drift_median": float(np.median(drift))}


def _settings(base: dict, dataset: str | None, steps: int | None, lr: float | None,
              init_std: float | None) -> dict:
    """The quick or full settings ``base`` with the caller's values put in, checked."""
    setup = dict(base)
    dataset = DEFAULT_DATASET if dataset is None else dataset
    if dataset not in DATASETS:
        raise ValueError(f"paper-fig1: dataset must be one of {', '.join(DATASETS)}, got "
                         f"{dataset!r}")
    for name, value in (("steps", steps), ("lr", lr), ("init_std", init_std)):
        if value is None:
            continue
        if isinstance(value, bool) or not value > 0 or (name == "steps" and value != int(value)):
            raise ValueError(f"paper-fig1: {name} must be a positive "
                             f"{'integer' if name == 'steps' else 'number'}, got {value!r}")
        setup[name] = int(value) if name == "steps" else float(value)
    setup["dataset"] = dataset
    setup["table_steps"] = tuple(s for s in setup["table_steps"] if s < setup["steps"]) + \
        (setup["steps"],)
    return setup


def run(quick: bool = False, seeds: int | None = None, progress: Progress | None = None, *,
        dataset: str | None = None, steps: int | None = None, lr: float | None = None,
        init_std: float | None = None) -> ExperimentResult:
    """Train the paper's network with and without BN from the same weights and batches.

    Args:
        dataset: "fashion-mnist" (default), "digits" or "mnist".
        steps, lr, init_std: override the paper's 50 000 steps, rate 0.5 and N(0, 0.01²).
    """
    started = time.perf_counter()
    base, seeds = choose_setup(quick, seeds, QUICK, FULL, DEFAULT_SEEDS)
    setup = _settings(base, dataset, steps, lr, init_std)
    task = load_task(setup["dataset"])
    if len(task.X_train) > setup.get("train_rows", len(task.X_train)):
        task = task.subset(setup["train_rows"])
    target = TARGETS[task.name]
    rows = min(setup["probe_rows"], len(task.X_train))
    probe_X = task.X_train[np.random.default_rng(0).permutation(len(task.X_train))[:rows]]
    specs = {arm: NetSpec(hidden=(100, 100, 100), activation="sigmoid",
                          batch_norm=arm == "BN", init_std=setup["init_std"]) for arm in ARMS}

    outcome: dict = {arm: [] for arm in ARMS}
    for seed in range(seeds):
        for arm, spec in specs.items():
            report = _chunk_reporter(progress, seed * len(ARMS) + list(ARMS).index(arm),
                                     seeds * len(ARMS), setup["steps"],
                                     f"{task.name}: {ARMS[arm]}, seed {seed}")
            outcome[arm].append(_train_arm(task, spec, seed, setup, probe_X, report))
    if progress is not None:
        total = seeds * len(ARMS) * PROGRESS_CHUNKS
        progress(total, total, "")
    summaries = {arm: [_spread_summary(r, rec, target) for r, rec in pairs]
                 for arm, pairs in outcome.items()}

    tables = [_accuracy_table(outcome, setup, seeds), _unit_table(outcome, setup),
              _input_table(outcome, summaries, setup, seeds, target)]
    data = {"dataset": task.name, "target": target, "unit": UNIT,
            "arms": {arm: {"steps": [h["step"] for h in outcome[arm][0][0].history],
                           "test_accuracy": [[h["test_accuracy"] for h in r.history]
                                             for r, _ in outcome[arm]],
                           "unit_trace": unit_trace(outcome[arm][0][1].steps,
                                                     outcome[arm][0][1].percentiles, UNIT,
                                                     PERCENTILES),
                           "summaries": summaries[arm]} for arm in ARMS}}
    settings = {
        "data": task.description,
        "network": "3 hidden layers of 100 sigmoid units, Linear (no bias with BN) → [BN] → "
                   f"Sigmoid, then Linear to 10 logits; every weight from N(0, "
                   f"{setup['init_std']:g}²), biases 0",
        "training": f"plain SGD, lr {setup['lr']:g} on the mean cross-entropy, batch "
                    f"{setup['batch_size']}, {setup['steps']} steps; both arms from the same "
                    "initial weights and the same batch order",
        "measured": f"test accuracy every {setup['eval_every'][task.name]} steps; the input "
                    f"to the last hidden layer's sigmoids every {setup['probe_every']} steps, "
                    f"on {rows} fixed training images, through a forward hook",
        "seeds": f"0 to {seeds - 1}",
    }
    return ExperimentResult(NAME, "The BatchNorm paper's Figure 1, redone",
                            "Does BN make the paper's sigmoid network train faster and end "
                            "more accurate, and does it keep a sigmoid's input distribution "
                            "steady?", settings, tables, _findings(summaries, target), data,
                            time.perf_counter() - started)


def _chunk_reporter(progress: Progress | None, run_index: int, runs: int, steps: int,
                    label: str) -> Any:
    """A callback, called with each step, that reports progress(done, total, label) once per
    1/PROGRESS_CHUNKS of a run (one line per chunk in a log)."""
    if progress is None:
        return None
    chunk = max(1, steps // PROGRESS_CHUNKS)

    def report(step: int) -> None:
        if step % chunk:
            return
        done = min(step // chunk, PROGRESS_CHUNKS - 1)
        progress(run_index * PROGRESS_CHUNKS + done, runs * PROGRESS_CHUNKS,
                 f"{label}, step {step}/{steps}")
    return report


def _accuracy_table(outcome: dict, setup: dict, seeds: int) -> Table:
    rows = []
    for step in setup["table_steps"]:
        row = [str(step)]
        for arm in ARMS:
            values = [next((h["test_accuracy"] for h in run.history if h["step"] == step),
                           math.nan) for run, _ in outcome[arm]]
            row.append(mean_pm(values, 3) if any(map(math.isfinite, values)) else "—")
        if row[1:] != ["—"] * len(ARMS):   # a step between evaluations: no row
            rows.append(row)
    return Table("test accuracy against SGD steps", ["step", *ARMS.values()], rows,
                 f"Mean ± sd over {seeds} seed(s) (one seed: the value alone); both arms from "
                 "the same initial weights and mini-batches.")


def _unit_table(outcome: dict, setup: dict) -> Table:
    """Panels (b) and (c) in numbers: unit `UNIT`'s percentiles at the table's steps."""
    rows = []
    for step in setup["table_steps"]:
        row = [str(step)]
        for arm in ARMS:
            recorder = outcome[arm][0][1]
            if step in recorder.steps:
                p = recorder.percentiles[recorder.steps.index(step)][:, UNIT]
                row.append(" / ".join(f"{v:+.2f}" for v in p))
            else:
                row.append("—")
        rows.append(row)
    return Table(f"input to unit {UNIT}'s sigmoid in the last hidden layer (seed 0): 15th / "
                 "50th / 85th percentile", ["step", *ARMS.values()], rows,
                 f"Over {len(outcome['plain'][0][1].probe_X)} fixed training images, in "
                 "training mode; with BN the input is BN's output γ·x̂ + β.")


def _input_table(outcome: dict, summaries: dict, setup: dict, seeds: int,
                 target: float) -> Table:
    rows = []
    for arm in ARMS:
        s = summaries[arm]
        reached = [x["steps_to_target"] for x in s]
        rows.append([
            ARMS[arm],
            mean_pm([x["unit_growth"] for x in s], 2),
            mean_pm([x["growth_median"] for x in s], 2),
            mean_pm([x["growth_late_median"] for x in s], 2),
            mean_pm([x["drift_median"] for x in s], 2),
            ", ".join("never" if r is None else str(r) for r in reached),
            mean_pm([x["final_accuracy"] for x in s], 3)])
    return Table(
        f"the last hidden layer's sigmoid inputs, and reaching {target:g} test accuracy",
        ["arm", f"unit {UNIT}: spread end/start",
         "all units: spread end/start", f"all units: spread end/step {setup['steps'] // 10}",
         "all units: drift of median", f"first step ≥ {target:g}",
         "final test accuracy"], rows,
        "Spread = p85 − p15 of a unit's input over the probe images; end/start is its growth "
        "over the run (the median over the 100 units in the 'all units' columns); from a tenth "
        "of the run on, it leaves out the growth from a small initialisation. Drift: "
        "|median at the end − median at the start| in units of the mean spread, median over "
        "units. First step: the first evaluation at or above the target, per seed.")


def _findings(summaries: dict, target: float) -> list:
    def mean(arm: str, key: str) -> float:
        values = [s[key] for s in summaries[arm]]
        if any(v is None for v in values):
            return math.nan
        return float(np.mean(values))

    plain_steps, bn_steps = mean("plain", "steps_to_target"), mean("BN", "steps_to_target")
    if math.isnan(bn_steps):
        speed = f"with BN the test accuracy did not reach {target:g} in every seed"
    elif math.isnan(plain_steps):
        speed = (f"with BN the test accuracy first reached {target:g} at step {bn_steps:.0f}; "
                 "without BN it did not reach it in every seed")
    else:
        speed = (f"test accuracy {target:g} first reached at step {bn_steps:.0f} with BN and "
                 f"{plain_steps:.0f} without: {plain_steps / max(bn_steps, 1):.1f}× fewer "
                 "steps with BN")
    growth = {arm: mean(arm, "growth_median") for arm in ARMS}
    late = {arm: mean(arm, "growth_late_median") for arm in ARMS}
    lines = [
        speed + " (mean over seeds; step 0 counts as 1)",
        f"final test accuracy: {mean('BN', 'final_accuracy'):.3f} with BN, "
        f"{mean('plain', 'final_accuracy'):.3f} without",
        f"spread (p85 − p15) of a last-layer sigmoid's input, end/start, median over units: "
        f"×{growth['plain']:.3g} without BN, ×{growth['BN']:.3g} with BN "
        f"(ratio {growth['plain'] / growth['BN']:.3g}); from a tenth of the run to the end: "
        f"×{late['plain']:.3g} without BN, ×{late['BN']:.3g} with BN "
        f"(ratio {late['plain'] / late['BN']:.3g})",
        f"the median drifted by {mean('plain', 'drift_median'):.2f} spreads without BN and "
        f"{mean('BN', 'drift_median'):.2f} with BN",
    ]
    return lines


def plot(result: ExperimentResult, path: Any) -> None:
    """Three panels as in the paper's Figure 1: (a) test accuracy of both arms against steps,
    (b) without BN and (c) with BN: unit 0's 15th/50th/85th percentile input over training."""
    from .plotting import new_figure, same_length, save_figure, style

    data = result.data
    figure, axes = new_figure(1, 3, (14, 4.2))
    accuracy_axis, *unit_axes = axes[0]
    for arm, label in ARMS.items():
        curves = data["arms"][arm]
        per_seed = np.array([[np.nan if v is None else v for v in seed]
                             for seed in same_length(curves["test_accuracy"])], dtype=float)
        options = {**style(arm), "label": label}
        accuracy_axis.plot(curves["steps"][:per_seed.shape[1]], np.nanmean(per_seed, axis=0),
                           **options)
    accuracy_axis.axhline(data["target"], color="#999999", linewidth=0.8, linestyle=":")
    accuracy_axis.set(title="(a) test accuracy", xlabel="SGD steps", ylabel="test accuracy")
    accuracy_axis.legend(loc="lower right")
    traces = [data["arms"][arm]["unit_trace"] for arm in ARMS]
    low = min(min(t["p15"]) for t in traces)
    high = max(max(t["p85"]) for t in traces)
    margin = 0.05 * (high - low) if high > low else 1.0
    for letter, axis, arm, trace in zip("bc", unit_axes, ARMS, traces):
        colour = style(arm)["color"]
        for q, dash in zip(PERCENTILES, (":", "-", "--")):
            axis.plot(trace["steps"], trace[f"p{q}"], color=colour, linestyle=dash,
                      label=f"{q}th percentile")
        axis.set(title=f"({letter}) {ARMS[arm]}: input to a last-layer sigmoid",
                 xlabel="SGD steps", ylabel="sigmoid input", ylim=(low - margin, high + margin))
        axis.legend(fontsize="small", loc="best")
    for axis in axes.flat:
        axis.grid(True, alpha=0.3)
    figure.suptitle(f"{data['dataset']}: the BatchNorm paper's Figure 1 redone "
                    "(3 × 100 sigmoid units, SGD, batch 60; seed 0's unit "
                    f"{data['unit']} in (b, c))")
    save_figure(figure, path)
