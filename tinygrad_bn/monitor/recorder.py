"""`Monitor`: record what every layer does while a network trains, through hooks only.

Attach a monitor and call ``monitor.step()`` after each optimizer step:

    monitor = Monitor(model, every=10)
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        monitor.step()
    monitor.recording.save("run/")

Every ``every`` steps (from step 0) the first training forward pass is recorded; evaluation
passes (``eval()`` or ``no_grad``) are ignored. What is recorded, per record:

* each leaf layer's output ("activation"): mean, standard deviation, the 15th, 50th and 85th
  percentiles, and a sample of its values (for histograms);
  for Tanh: the fraction *saturated*, |y| > 0.97, where tanh′ = 1 − y² < 0.06 blocks the
  gradient; for Sigmoid: y < 0.03 or y > 0.97 (σ′ = y(1 − y) < 0.03); for ReLU: the fraction
  *dead*, units that are 0 for every example of the batch (they pass no gradient at all);
  for the activation layers also the percentiles of their input — the pre-activation whose
  drift the BatchNorm paper plots (its Figure 1);
* the gradient arriving at each layer's output, ∂L/∂y: mean, standard deviation and a sample;
* each parameter: std(∂L/∂p) / std(p), the grad:data ratio, and ‖Δp‖ / ‖p‖, the update:data
  ratio of the step (Δp = the optimizer's change; around 1e-3 is the usual healthy size);
* each BatchNorm layer, per feature: the batch statistics μ_B and σ²_B (biased, as the layer
  normalises with) beside the running estimates (updated with this batch), and γ and β as the
  forward pass used them.

Standard deviations are the population ones (divide by n); percentiles interpolate linearly
(numpy's default). Recording only reads: the hooks return nothing and copy what they keep, so
training with a monitor gives exactly the same parameters as without. Between recorded steps
only one hook stays on the model (the one that opens a record), so they run at full speed.

Read next: plots.py (the figures) and report.py (the page the CLI writes).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import checkpoint
from ..function import is_grad_enabled
from ..nn import BatchNorm1d, Module, ReLU, Sigmoid, Tanh
from ..tensor import Tensor

__all__ = ["Monitor", "Recording", "activation_kind", "SATURATION"]

SATURATION = 0.97                # |tanh| above, or sigmoid outside [0.03, 0.97]: saturated
PERCENTILES = (15, 50, 85)
LAYER_STATS = ("mean", "std", "p15", "p50", "p85", "saturated", "dead", "input_p15",
               "input_p50", "input_p85", "grad_mean", "grad_std")
PARAM_STATS = ("data_std", "grad_std", "grad_data", "update_data")
BN_STATS = ("batch_mean", "batch_var", "running_mean", "running_var", "gamma", "beta")
FORMAT = "tinygrad-bn monitor recording v1"


def activation_kind(module: Module) -> str:
    """"tanh", "sigmoid", "relu" for those layers, "" for any other."""
    for kind, layer in (("tanh", Tanh), ("sigmoid", Sigmoid), ("relu", ReLU)):
        if isinstance(module, layer):
            return kind
    return ""


def _saturated(values: np.ndarray, kind: str) -> float:
    if kind == "tanh":
        return float(np.mean(np.abs(values) > SATURATION))
    if kind == "sigmoid":
        return float(np.mean((values < 1 - SATURATION) | (values > SATURATION)))
    return float("nan")


def _dead(values: np.ndarray, kind: str) -> float:
    if kind != "relu" or values.ndim < 2:
        return float("nan")
    # A unit is a position after the batch axis; dead when it is 0 for every example.
    return float(np.mean(np.all(values.reshape(len(values), -1) <= 0, axis=0)))


class Recording:
    """The recorded statistics: plain numpy arrays (one row per record), savable without pickle.

    Attributes:
        steps: (R,) the training step of each record.
        layers: {layer name: {statistic: (R,) array, "sample": (R, k), "grad_sample": (R, k)}}
        params: {parameter name: {statistic: (R,) array}}
        batchnorm: {layer name: {statistic: (R, C) array}}
        kinds: {layer name: "tanh" | "sigmoid" | "relu" | ""}; types: {layer name: class name}
        every, title: the recording interval and a label for plots.
    """

    def __init__(self, every: int = 1, title: str = "") -> None:
        self.every, self.title = every, title
        self.steps: Any = []
        self.layers: dict = {}
        self.params: dict = {}
        self.batchnorm: dict = {}
        self.kinds: dict = {}
        self.types: dict = {}

    def __len__(self) -> int:
        return len(self.steps)

    def layer_label(self, name: str) -> str:
        return f"{name} ({self.types[name]})"

    def arrays(self) -> dict:
        """Every statistic as one numpy array under ``group/name/statistic``."""
        arrays = {"steps": np.asarray(self.steps, dtype=np.int64)}
        for group in ("layers", "params", "batchnorm"):
            for name, stats in getattr(self, group).items():
                for stat, values in stats.items():
                    # Samples are only drawn as histograms: float32 halves the file.
                    dtype = np.float32 if stat.endswith("sample") else np.float64
                    arrays[f"{group}/{name}/{stat}"] = np.asarray(values, dtype=dtype)
        return arrays

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``stats.npz`` (the arrays, no pickle) and ``stats.json`` (what they are)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "every": self.every, "title": self.title,
                "layers": [{"name": n, "type": self.types[n], "kind": self.kinds[n]}
                           for n in self.layers],
                "params": list(self.params), "batchnorm": list(self.batchnorm),
                "steps": [int(s) for s in self.steps]}
        checkpoint.save(self.arrays(), directory / "stats.npz", metadata=meta)
        (directory / "stats.json").write_text(json.dumps(meta, indent=2) + "\n")
        return directory / "stats.npz"

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Recording:
        """Read a directory written by `save`; ValueError naming the file if it is not one."""
        path = Path(directory) / "stats.npz"
        if not path.is_file():
            raise ValueError(f"{directory}: no stats.npz (not a directory written by "
                             "`tinygrad-bn train --monitor`)")
        arrays, meta = checkpoint.load_with_metadata(path)
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a tinygrad-bn monitor recording")
        recording = cls(meta["every"], meta.get("title", ""))
        recording.steps = arrays["steps"]
        for layer in meta["layers"]:
            recording.types[layer["name"]] = layer["type"]
            recording.kinds[layer["name"]] = layer["kind"]
        for key, values in arrays.items():
            if key == "steps":
                continue
            group, name, stat = key.split("/")
            getattr(recording, group).setdefault(name, {})[stat] = values
        return recording


def _new_row(stats: dict, names: tuple, width: int | None = None) -> None:
    for stat in names:
        stats.setdefault(stat, []).append(np.nan if width is None else np.full(width, np.nan))


class Monitor:
    """Records per-layer statistics every ``every`` steps (see the module docstring).

    Args:
        model: the network to watch (it can also be given later, to `attach`).
        every: record one step out of ``every`` (steps 0, every, 2·every, …).
        sample: how many values of each output and output gradient to keep per record, for
            histograms (the first ones of the flattened array: no random draw, so recording
            never disturbs the library's generator).
        title: a label for the plots.
    """

    def __init__(self, model: Module | None = None, every: int = 10, sample: int = 512,
                 title: str = "") -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every, self.sample = every, sample
        self.recording = Recording(every, title)
        self.model: Module | None = None
        self._handles: list = []            # the model's pre-hook, while attached
        self._forward_handles: list = []    # the layers' hooks, during a recorded forward
        self._backward_handles: list = []   # the parameters' hooks, until step()
        self._layers: list = []             # (name, leaf module) pairs
        self._step = 0
        self._open = False          # a record is being filled during this step
        self._before: dict = {}     # parameter values at the recorded forward pass
        if model is not None:
            self.attach(model)

    # --- attaching ------------------------------------------------------------------------

    def attach(self, model: Module) -> Monitor:
        """Watch ``model`` (its leaf layers and its parameters); returns self.

        Only a forward pre-hook on the model stays registered. On a step to be recorded it
        registers the other hooks for the forward pass (layers), the backward pass (parameters)
        and takes them out again, so the steps in between run with a single hook call.
        """
        if self.model is not None:
            raise RuntimeError("this Monitor is already attached; detach() it first")
        self.model = model
        self._layers = []
        for name, module in model.named_modules():
            if any(True for _ in module.children()):
                continue  # containers: their leaves are watched
            name = name or type(module).__name__
            self._layers.append((name, module))
            self.recording.types[name] = type(module).__name__
            self.recording.kinds[name] = activation_kind(module)
            self.recording.layers[name] = {}
            if isinstance(module, BatchNorm1d):
                self.recording.batchnorm[name] = {}
        for name, _ in model.named_parameters():
            self.recording.params[name] = {}
        self._handles.append(model.register_forward_pre_hook(self._open_record))
        return self

    def detach(self) -> None:
        """Remove every hook; the recording stays."""
        for handle in self._handles + self._forward_handles + self._backward_handles:
            handle.remove()
        self._handles, self._forward_handles, self._backward_handles = [], [], []
        self.model = None

    # --- the step -------------------------------------------------------------------------

    def step(self) -> None:
        """Close the current step (after ``optimizer.step()``): record the update ratios."""
        if self._open:
            for name, param in self.model.named_parameters():
                before = self._before.get(name)
                norm = np.linalg.norm(before) if before is not None else 0.0
                ratio = np.linalg.norm(param.peek() - before) / norm if norm > 0 else np.nan
                self.recording.params[name]["update_data"][-1] = ratio
            for handle in self._backward_handles:
                handle.remove()
            self._backward_handles = []
            self._before = {}
            self._open = False
        self._step += 1

    def _open_record(self, model: Module, args: tuple) -> None:
        if self._open or self._step % self.every or not (model.training and is_grad_enabled()):
            return
        self._open = True
        self.recording.steps.append(self._step)
        for name, stats in self.recording.layers.items():
            _new_row(stats, LAYER_STATS)
            stats.setdefault("sample", []).append(np.full(self.sample, np.nan))
            stats.setdefault("grad_sample", []).append(np.full(self.sample, np.nan))
        for name, param in model.named_parameters():
            stats = self.recording.params[name]
            _new_row(stats, PARAM_STATS)
            stats["data_std"][-1] = float(np.std(param.peek(), dtype=np.float64))
            self._before[name] = param.peek().astype(np.float64)   # a copy, before the update
            if param.requires_grad:
                self._backward_handles.append(param.register_hook(self._param_hook(name)))
        # For this forward pass only: the layers' hooks, then the one that removes them (after
        # every layer's hook, also when the model is a single layer).
        self._forward_handles = [module.register_forward_hook(self._layer_hook(name))
                                 for name, module in self._layers]
        self._forward_handles.append(model.register_forward_hook(self._close_forward))

    def _close_forward(self, model: Module, args: tuple, output: Any) -> None:
        for handle in self._forward_handles:
            handle.remove()
        self._forward_handles = []

    # --- the hooks ------------------------------------------------------------------------

    def _keep(self, values: np.ndarray) -> np.ndarray:
        row = np.full(self.sample, np.nan)
        flat = values.reshape(-1)[:self.sample]
        row[:len(flat)] = flat
        return row

    def _layer_hook(self, name: str) -> Any:
        def record(module: Module, args: tuple, output: Any) -> None:
            if not isinstance(output, Tensor):
                return
            stats, kind = self.recording.layers[name], self.recording.kinds[name]
            values = output.peek().astype(np.float64)
            stats["mean"][-1], stats["std"][-1] = np.mean(values), np.std(values)
            for q, p in zip(PERCENTILES, np.percentile(values, PERCENTILES)):
                stats[f"p{q}"][-1] = p
            stats["saturated"][-1] = _saturated(values, kind)
            stats["dead"][-1] = _dead(values, kind)
            stats["sample"][-1] = self._keep(values)
            if kind and args and isinstance(args[0], Tensor):
                inputs = args[0].peek().astype(np.float64)
                for q, p in zip(PERCENTILES, np.percentile(inputs, PERCENTILES)):
                    stats[f"input_p{q}"][-1] = p
            if isinstance(module, BatchNorm1d):
                self._record_batchnorm(name, module, args[0])
            if output.requires_grad:
                output.register_hook(self._output_grad_hook(name, len(self.recording.steps)))
        return record

    def _record_batchnorm(self, name: str, module: BatchNorm1d, input: Tensor) -> None:
        x = input.peek().astype(np.float64)
        axes = tuple(a for a in range(x.ndim) if a != 1)   # every axis but the features
        values = {"batch_mean": x.mean(axis=axes), "batch_var": x.var(axis=axes)}
        for stat, tensor in (("running_mean", module.running_mean),
                             ("running_var", module.running_var),
                             ("gamma", module.weight), ("beta", module.bias)):
            values[stat] = (np.full(module.num_features, np.nan) if tensor is None
                            else tensor.peek().astype(np.float64))
        stats = self.recording.batchnorm[name]
        for stat in BN_STATS:
            stats.setdefault(stat, []).append(values[stat])

    def _output_grad_hook(self, name: str, record: int) -> Any:
        def record_grad(grad: np.ndarray) -> None:
            if len(self.recording.steps) != record:
                return  # a backward pass through an older step's graph
            stats = self.recording.layers[name]
            values = grad.astype(np.float64)
            stats["grad_mean"][-1], stats["grad_std"][-1] = np.mean(values), np.std(values)
            stats["grad_sample"][-1] = self._keep(values)
        return record_grad

    def _param_hook(self, name: str) -> Any:
        def record_grad(grad: np.ndarray) -> None:
            stats = self.recording.params[name]
            grad_std = float(np.std(grad.astype(np.float64)))
            stats["grad_std"][-1] = grad_std
            data_std = stats["data_std"][-1]
            stats["grad_data"][-1] = grad_std / data_std if data_std > 0 else np.nan
        return record_grad
