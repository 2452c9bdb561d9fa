"""Figures of one recording, or of several side by side (one column per run).

Each function takes a list of `Recording`s and returns a matplotlib Figure (nothing is imported
from matplotlib until a figure is asked for; see experiments/plotting.py):

* `histograms`  — the distribution of each layer's output (or of ∂L/∂output) at chosen steps;
* `ratios`      — std(grad)/std(data) and ‖Δp‖/‖p‖ of each weight matrix over time, with the
  1e-3 guide line (updates far below it learn slowly, far above it thrash);
* `percentiles` — the 15th/50th/85th percentiles of each activation's *input* over time, the
  BatchNorm paper's Figure 1 (b, c);
* `saturation`  — the saturated (tanh, sigmoid) or dead (ReLU) fraction and the spread (std)
  of each activation layer over time;
* `batchnorm`   — μ_B and σ²_B of a few features against the running estimates, γ and β.

Read next: report.py, which writes these figures and the page around them.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..experiments.plotting import new_figure
from .recorder import Recording

__all__ = ["FIGURES", "histograms", "ratios", "percentiles", "saturation", "batchnorm",
           "activation_layers", "weight_names"]

GUIDE = 1e-3
BN_FEATURES = 3     # features of each BatchNorm layer drawn in `batchnorm`


def activation_layers(recording: Recording) -> list:
    """Names of the tanh / sigmoid / ReLU layers, in order."""
    return [name for name in recording.layers if recording.kinds[name]]


def weight_names(recording: Recording) -> list:
    """The Linear weight matrices: parameters named ``*.weight`` outside BatchNorm layers."""
    batchnorm = {f"{name}.weight" for name in recording.batchnorm}
    return [name for name in recording.params
            if name.endswith("weight") and name not in batchnorm]


def _title(recording: Recording, index: int) -> str:
    return recording.title or f"run {index + 1}"


def _chosen_steps(recording: Recording, count: int = 3) -> list:
    """Record indices of the first, middle and last records (fewer when there are fewer)."""
    n = len(recording)
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(count, n))}) if n else []


def histograms(runs: Sequence[Recording], gradient: bool = False, count: int = 3) -> Any:
    """Per layer, the histogram of its outputs (``gradient``: of ∂L/∂output) at ``count``
    steps spread over training: one row per step, one column per run."""
    figure, axes = new_figure(count, len(runs), (5.2 * len(runs), 2.6 * count))
    key = "grad_sample" if gradient else "sample"
    for column, run in enumerate(runs):
        layers = activation_layers(run) or list(run.layers)
        for row, record in enumerate(_chosen_steps(run, count)):
            ax = axes[row, column]
            for name in layers:
                values = np.asarray(run.layers[name][key])[record]
                values = values[np.isfinite(values)]
                if values.size == 0:
                    continue
                counts, edges = np.histogram(values, bins=40, density=True)
                stats = run.layers[name]
                prefix = "grad_" if gradient else ""
                label = (f"{run.layer_label(name)}: mean {stats[prefix + 'mean'][record]:+.2g}, "
                         f"std {stats[prefix + 'std'][record]:.2g}")
                if not gradient and run.kinds[name] in ("tanh", "sigmoid"):
                    label += f", saturated {100 * stats['saturated'][record]:.0f}%"
                ax.plot((edges[:-1] + edges[1:]) / 2, counts, label=label)
            ax.set_title(f"{_title(run, column)} — step {int(run.steps[record])}", fontsize=9)
            ax.legend(fontsize=7)
        axes[-1, column].set_xlabel("∂L/∂output" if gradient else "layer output")
    return figure


def ratios(runs: Sequence[Recording]) -> Any:
    """grad:data (top) and update:data (bottom) of each weight matrix over the steps."""
    figure, axes = new_figure(2, len(runs), (5.2 * len(runs), 6.0))
    for column, run in enumerate(runs):
        for row, (stat, label) in enumerate((("grad_data", "std(∂L/∂W) / std(W)"),
                                             ("update_data", "‖ΔW‖ / ‖W‖ per step"))):
            ax = axes[row, column]
            for name in weight_names(run):
                ax.plot(run.steps, run.params[name][stat], label=name)
            if stat == "update_data":
                ax.axhline(GUIDE, color="black", linestyle="--", linewidth=1, label="1e-3")
            ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.legend(fontsize=7)
        axes[0, column].set_title(_title(run, column), fontsize=9)
        axes[1, column].set_xlabel("step")
    return figure


def _per_activation_rows(runs: Sequence[Recording]) -> int:
    return max([len(activation_layers(run)) for run in runs] + [1])


def percentiles(runs: Sequence[Recording]) -> Any:
    """The 15th–85th percentile band and the median of each activation layer's input."""
    rows = _per_activation_rows(runs)
    figure, axes = new_figure(rows, len(runs), (5.2 * len(runs), 2.6 * rows))
    for column, run in enumerate(runs):
        for row, name in enumerate(activation_layers(run)):
            ax, stats = axes[row, column], run.layers[name]
            ax.fill_between(run.steps, stats["input_p15"], stats["input_p85"], alpha=0.3,
                            label="15th–85th percentile")
            ax.plot(run.steps, stats["input_p50"], label="median")
            ax.set_title(f"{_title(run, column)} — input of {run.layer_label(name)}", fontsize=9)
            ax.legend(fontsize=7)
        axes[-1, column].set_xlabel("step")
    return figure


def saturation(runs: Sequence[Recording]) -> Any:
    """Saturated / dead fraction (top) and output std (bottom) of each activation layer."""
    figure, axes = new_figure(2, len(runs), (5.2 * len(runs), 5.6))
    for column, run in enumerate(runs):
        for name in activation_layers(run):
            stats = run.layers[name]
            kind = run.kinds[name]
            fraction = stats["dead"] if kind == "relu" else stats["saturated"]
            what = "dead" if kind == "relu" else "saturated"
            axes[0, column].plot(run.steps, 100 * np.asarray(fraction),
                                 label=f"{run.layer_label(name)} ({what})")
            axes[1, column].plot(run.steps, stats["std"], label=run.layer_label(name))
        axes[0, column].set_title(_title(run, column), fontsize=9)
        axes[0, column].set_ylabel("% saturated or dead")
        axes[1, column].set_ylabel("std of the layer's output")
        axes[1, column].set_xlabel("step")
        for ax in axes[:, column]:
            ax.legend(fontsize=7)
    return figure


def batchnorm(runs: Sequence[Recording]) -> Any:
    """Per BatchNorm layer: μ_B against running_mean, σ²_B against running_var (a few features),
    and the mean of γ and β, over the steps. Runs without BatchNorm get no columns."""
    titled = [(_title(run, i), run) for i, run in enumerate(runs) if run.batchnorm]
    if not titled:
        figure, axes = new_figure(1, 1, (5.2, 2.0))
        axes[0, 0].text(0.5, 0.5, "no BatchNorm layers", ha="center", va="center")
        axes[0, 0].set_axis_off()
        return figure
    rows = max(len(run.batchnorm) for _, run in titled)
    figure, axes = new_figure(rows, 3 * len(titled), (4.2 * 3 * len(titled), 2.8 * rows))
    for column, (title, run) in enumerate(titled):
        for row in range(len(run.batchnorm), rows):
            for ax in axes[row, 3 * column:3 * column + 3]:
                ax.set_axis_off()
        for row, (name, stats) in enumerate(run.batchnorm.items()):
            panels = axes[row, 3 * column:3 * column + 3]
            for offset, (batch, running, label) in enumerate(
                    (("batch_mean", "running_mean", "μ_B"), ("batch_var", "running_var", "σ²_B"))):
                ax = panels[offset]
                for feature in range(min(BN_FEATURES, np.shape(stats[batch])[1])):
                    line, = ax.plot(run.steps, np.asarray(stats[batch])[:, feature],
                                    linewidth=0.8, label=f"{label} feature {feature}")
                    ax.plot(run.steps, np.asarray(stats[running])[:, feature], linestyle="--",
                            color=line.get_color(), label=f"running, feature {feature}")
                ax.set_title(f"{title} — layer {name}: {label} vs running", fontsize=9)
                ax.legend(fontsize=6)
            panels[2].plot(run.steps, np.mean(stats["gamma"], axis=1), label="mean γ")
            panels[2].plot(run.steps, np.mean(stats["beta"], axis=1), label="mean β")
            panels[2].set_title(f"layer {name}: γ and β", fontsize=9)
            panels[2].legend(fontsize=7)
    return figure


# file stem → (function, keyword arguments, caption: what to look for)
FIGURES = {
    "activations": (histograms, {}, "The distribution of each activation layer's output at the "
                    "start, middle and end of training. Look for mass piling up at ±1 (tanh) or "
                    "0/1 (sigmoid): those units are saturated and pass almost no gradient. With "
                    "BatchNorm the histograms stay spread over the useful middle range."),
    "gradients": (histograms, {"gradient": True}, "The distribution of ∂L/∂output per layer. "
                  "Healthy layers have similar spreads; a layer whose gradients are much "
                  "narrower than the others' is barely learning (vanishing gradients)."),
    "ratios": (ratios, {}, "Top: std(∂L/∂W) / std(W) per weight matrix. Bottom: how far each "
               "step moves the weights relative to their size, ‖ΔW‖/‖W‖. Around the dashed "
               "1e-3 line is the usual healthy range; far below, the layer learns too slowly "
               "(raise the learning rate), far above, it is overwritten every step."),
    "percentiles": (percentiles, {}, "The 15th, 50th and 85th percentiles of each activation's "
                    "input over training (the BatchNorm paper's Figure 1). Without BatchNorm "
                    "the band drifts and widens as the layers below change — the next layer "
                    "chases a moving input; with BatchNorm it stays put."),
    "saturation": (saturation, {}, "Top: the share of saturated (tanh/sigmoid) or dead (ReLU) "
                   "units over training. Bottom: the spread (std) of each activation layer's "
                   "output. Compare the two runs: BatchNorm keeps both steady."),
    "batchnorm": (batchnorm, {}, "For each BatchNorm layer: the batch statistics μ_B and σ²_B "
                  "(thin lines) and the running estimates used at evaluation time (dashed). The "
                  "running estimates should track a smoothed version of the batch statistics; "
                  "γ and β show how much of the normalisation the network chose to undo."),
}
