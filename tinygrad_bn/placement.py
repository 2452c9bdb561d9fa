"""The placement example end to end: build the network, train it, evaluate it, save it.

The network follows the course notes — per hidden layer Linear → BatchNorm1d → ReLU (BN after
the Linear, before the activation), then a Linear output giving one logit, trained with
BCE-with-logits and SGD. The command line (``tinygrad-bn train``) is a thin front for `train`.
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import checkpoint, nn, optim
from .data import Dataset, Standardizer, dropped_rows, train_test_split
from .function import no_grad
from .jit import jit
from .loader import DataLoader, TensorDataset
from .metrics import accuracy
from .nn import functional as F
from .ops import stable_sigmoid
from .optim import check_loss
from .random import manual_seed
from .tensor import Tensor

__all__ = ["TrainConfig", "TrainResult", "build_model", "train", "evaluate", "predict_proba",
           "save_model", "load_model", "check_metadata", "batchnorm_parameters", "ACTIVATIONS",
           "INITS", "inference_pipeline"]

FORMAT = "tinygrad-bn placement model v1"


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
# --init choices: "default" keeps Linear's own U(±1/√fan_in); the others set every weight with
# the nn.init function (gain for the hidden layers' activation, 1 for the output layer) and
# zero the biases; "normal" is N(0, 1), the naive choice that saturates tanh and sigmoid.
INITS = ("default", "xavier-uniform", "xavier-normal", "kaiming-uniform", "kaiming-normal",
         "normal")


def _initialise(layer: nn.Linear, init: str, nonlinearity: str) -> None:
    if init == "default":
        return
    if init == "normal":
        nn.init.normal_(layer.weight)
    elif init.startswith("xavier"):
        gain = nn.init.calculate_gain(nonlinearity)
        getattr(nn.init, init.replace("-", "_") + "_")(layer.weight, gain=gain)
    else:  # kaiming: fan_in mode, the gain of the activation
        getattr(nn.init, init.replace("-", "_") + "_")(layer.weight, nonlinearity=nonlinearity)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def build_model(n_features: int, hidden: Sequence[int] = (16, 16), batch_norm: bool = True,
                *, fused: bool = True, activation: str = "relu",
                init: str = "default") -> nn.Sequential:
    """Linear → BatchNorm1d → activation for each hidden size, then Linear → 1 logit.

    Without batch norm the blocks are Linear → activation (ReLU, Tanh or Sigmoid). ``init``
    is one of INITS. (The Linear bias before a BatchNorm is kept, as PyTorch's defaults do,
    although BN makes it redundant: its gradient is zero.)
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    layers: list = []
    width = n_features
    for size in hidden:
        layers.append(nn.Linear(width, size))
        _initialise(layers[-1], init, activation)
        if batch_norm:
            layers.append(nn.BatchNorm1d(size, fused=fused))
        layers.append(ACTIVATIONS[activation]())
        width = size
    layers.append(nn.Linear(width, 1))
    _initialise(layers[-1], init, "linear")
    return nn.Sequential(*layers)


@dataclass
class TrainConfig:
    """Every option of a training run (the CLI's options, with the same defaults)."""

    hidden: tuple = (16, 16)
    batch_norm: bool = True
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 50
    batch_size: int = 32
    test_size: float = 0.2
    seed: int = 0
    activation: str = "relu"
    init: str = "default"

    def validate(self) -> None:
        """Raise ValueError naming the first option out of range."""
        for name in ("lr", "momentum", "weight_decay", "test_size"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name.replace('_', ' ')} must be a finite number, got "
                                 f"{getattr(self, name)}")
        checks = [
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.momentum >= 0, f"momentum must be >= 0, got {self.momentum}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 2, f"batch size must be >= 2 (BatchNorm needs two rows), "
                                   f"got {self.batch_size}"),
            (0 < self.test_size < 1, f"test size must be in (0, 1), got {self.test_size}"),
            (len(self.hidden) > 0 and all(h > 0 for h in self.hidden),
             f"hidden sizes must be positive integers, got {list(self.hidden)}"),
            (self.activation in ACTIVATIONS, f"activation must be one of "
                                             f"{', '.join(ACTIVATIONS)}, got {self.activation}"),
            (self.init in INITS, f"init must be one of {', '.join(INITS)}, got {self.init}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class TrainResult:
    """What a training run produced: the model, its data scaling and the measurements."""

    model: nn.Sequential
    standardizer: Standardizer
    feature_names: tuple
    config: TrainConfig
    train_accuracy: float
    test_accuracy: float
    test_loss: float
    confusion_matrix: list          # [[tn, fp], [fn, tp]] on the test split
    majority_accuracy: float        # predicting the most common training class
    history: list = field(default_factory=list)  # per epoch: loss and accuracies
    dropped_rows_per_epoch: int = 0

    def summary(self) -> dict:
        """A JSON-ready dict of the measurements, options and learned γ/β."""
        return {
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "majority_accuracy": self.majority_accuracy,
            "confusion_matrix": self.confusion_matrix,
            "history": self.history,
            "batchnorm": batchnorm_parameters(self.model),
            "features": list(self.feature_names),
            "dropped_rows_per_epoch": self.dropped_rows_per_epoch,
            "options": {**asdict(self.config), "hidden": list(self.config.hidden)},
        }


def batchnorm_parameters(model: nn.Module) -> list:
    """γ and β of every BatchNorm1d layer: [{"layer": "1", "gamma": [...], "beta": [...]}]."""
    return [{"layer": name, "gamma": module.gamma.data.tolist(), "beta": module.beta.data.tolist()}
            for name, module in model.named_modules()
            if isinstance(module, nn.BatchNorm1d) and module.affine]


def _eval_logits(model: nn.Module, X: np.ndarray) -> np.ndarray:
    """The model's logit for each row, in evaluation mode (BN uses its running statistics)."""
    was_training = model.training
    model.eval()
    with no_grad():
        logits = model(Tensor(X)).data.reshape(-1).astype(np.float64)
    model.train(was_training)
    return logits


def predict_proba(model: nn.Module, X: np.ndarray) -> np.ndarray:
    """P(placed = 1) = σ(logit) for each row of already-standardised features, in eval mode."""
    return stable_sigmoid(_eval_logits(model, X))


def evaluate(model: nn.Module, X: np.ndarray, y: np.ndarray) -> dict:
    """Loss, accuracy and confusion matrix [[tn, fp], [fn, tp]] in evaluation mode."""
    logits = _eval_logits(model, X)
    loss = F.binary_cross_entropy_with_logits(Tensor(logits), y.astype(np.float64)).item()
    predicted = (logits >= 0).astype(int)  # σ(z) ≥ 0.5 exactly when z ≥ 0
    actual = y.astype(int)
    confusion = [[int(np.sum((actual == a) & (predicted == p))) for p in (0, 1)] for a in (0, 1)]
    return {"loss": loss, "accuracy": accuracy(logits, actual), "confusion_matrix": confusion}


def train(dataset: Dataset, config: TrainConfig,
          on_epoch: Callable[[dict], None] | None = None, monitor: Any = None,
          compile: bool = False) -> TrainResult:
    """Train the placement network on ``dataset``; the same seed gives the same numbers.

    Steps: stratified split → standardise (statistics from the training split) → for each
    epoch, shuffled mini-batches of forward, BCE-with-logits loss, backward, SGD step →
    evaluate. ``on_epoch`` receives each epoch's record (for progress display). A
    `monitor.Monitor` given as ``monitor`` is attached to the model and stepped after every
    SGD step (it only watches: the numbers are the same with or without it).

    Raises `optim.DivergenceError` (naming the epoch and step) as soon as the loss stops
    being finite, so a diverged run never returns a model.

    ``compile=True`` runs the step through `tinygrad_bn.jit` (same numbers, faster; not with a
    monitor, whose hooks a compiled step cannot run).
    """
    if compile and monitor is not None:
        raise ValueError("a compiled step cannot run the monitor's hooks: train without "
                         "compile to use a monitor")
    config.validate()
    if dataset.y is None:
        raise ValueError(f"{dataset.source}: training needs a target column")
    rng = np.random.default_rng(config.seed)
    X_train, X_test, y_train, y_test = train_test_split(dataset.X, dataset.y, config.test_size,
                                                        rng)
    if len(X_train) < 2 or len(X_test) < 1:
        raise ValueError(f"{dataset.source}: {len(dataset)} rows are too few to split into "
                         "training and test sets")
    scaler = Standardizer.fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    manual_seed(config.seed)
    model = build_model(X_train.shape[1], config.hidden, config.batch_norm,
                        activation=config.activation, init=config.init)
    if monitor is not None:
        monitor.attach(model)
    optimizer = optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    # The shuffling continues the split's generator, so one seed fixes everything; a last
    # batch of a single row is dropped (BatchNorm cannot normalise it), any other is kept.
    loader = DataLoader(TensorDataset(X_train, y_train.reshape(-1, 1)), config.batch_size,
                        shuffle=True, seed=rng,
                        drop_last=dropped_rows(len(X_train), config.batch_size) > 0)

    def step(X_batch: Tensor, y_batch: Tensor) -> Tensor:
        loss = loss_fn(model(X_batch), y_batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    run_step = jit(step) if compile else step
    history = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, count, step = 0.0, 0, 0
        # Overflow is how divergence starts: check_loss reports it, numpy need not warn.
        with np.errstate(over="ignore", invalid="ignore"):
            for step, (X_batch, y_batch) in enumerate(loader, start=1):
                value = check_loss(run_step(X_batch, y_batch), step=step, epoch=epoch)
                if monitor is not None:
                    monitor.step()
                total += value * len(X_batch)
                count += len(X_batch)
            final_train = evaluate(model, X_train, y_train)
            final_test = evaluate(model, X_test, y_test)
        # The last step's update can overflow too: the training set's loss shows it.
        check_loss(final_train["loss"], step=step, epoch=epoch)
        record = {"epoch": epoch, "train_loss": total / count,
                  "train_accuracy": final_train["accuracy"],
                  "test_accuracy": final_test["accuracy"]}
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)

    # final_train and final_test now hold the last epoch's evaluation.
    share = float(np.mean(y_train, dtype=np.float64))
    majority = max(share, 1.0 - share)
    return TrainResult(model, scaler, dataset.feature_names, config,
                       train_accuracy=final_train["accuracy"],
                       test_accuracy=final_test["accuracy"], test_loss=final_test["loss"],
                       confusion_matrix=final_test["confusion_matrix"],
                       majority_accuracy=majority, history=history,
                       dropped_rows_per_epoch=dropped_rows(len(X_train), config.batch_size))


# --- saving and loading a trained model -----------------------------------------------------------

def save_model(path: str | os.PathLike, result: TrainResult) -> None:
    """One self-contained .npz: weights and BN running statistics (under ``model.``), the
    standardisation statistics, and the architecture and feature names as JSON."""
    metadata = {
        "format": FORMAT,
        "features": list(result.feature_names),
        "hidden": list(result.config.hidden),
        "batch_norm": result.config.batch_norm,
        "activation": result.config.activation,
        "test_accuracy": result.test_accuracy,
        "options": {**asdict(result.config), "hidden": list(result.config.hidden)},
    }
    state = {f"model.{k}": v for k, v in result.model.state_dict().items()}
    state["standardizer.mean"] = result.standardizer.mean
    state["standardizer.std"] = result.standardizer.std
    checkpoint.save(state, path, metadata=metadata)


# Bounds a model file must respect before anything is allocated for it (see `check_metadata`).
MAX_FEATURES = 1024
MAX_LAYERS = 64
MAX_WIDTH = 1 << 16
MAX_PARAMETERS = 1 << 24     # 64 MiB of float32 weights: far beyond any placement model
MAX_NAME_CHARS = 256


def _parameter_count(n_features: int, hidden: Sequence[int], batch_norm: bool) -> int:
    """Numbers in `build_model`'s state_dict, computed without building it."""
    count, width = 0, n_features
    for size in list(hidden) + [1]:
        count += width * size + size               # Linear weight and bias
        width = size
    if batch_norm:
        count += sum(4 * size + 1 for size in hidden)  # γ, β, running mean/var, batches seen
    return count


def check_metadata(metadata: dict, path: str | os.PathLike) -> None:
    """Raise ValueError (one line naming ``path``) unless ``metadata`` describes a placement
    model of sensible size: checked before any model is built, so a file cannot make the
    loader allocate more than its few bounds allow."""
    def fail(reason: str) -> ValueError:
        return ValueError(f"{path}: the model file is damaged: {reason}")

    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a tinygrad-bn placement model (no model metadata)")
    features, hidden = metadata.get("features"), metadata.get("hidden")
    if not isinstance(features, list) or not 1 <= len(features) <= MAX_FEATURES:
        raise fail(f"'features' must be a list of 1 to {MAX_FEATURES} names")
    if not all(isinstance(name, str) and 0 < len(name) <= MAX_NAME_CHARS for name in features):
        raise fail(f"every feature name must be a text of 1 to {MAX_NAME_CHARS} characters")
    if len(set(features)) != len(features):
        raise fail("a feature name appears twice")
    if not isinstance(hidden, list) or not 1 <= len(hidden) <= MAX_LAYERS:
        raise fail(f"'hidden' must be a list of 1 to {MAX_LAYERS} layer sizes")
    if not all(type(size) is int and 0 < size <= MAX_WIDTH for size in hidden):
        raise fail(f"every hidden size must be an integer from 1 to {MAX_WIDTH}")
    if not isinstance(metadata.get("batch_norm"), bool):
        raise fail("'batch_norm' must be true or false")
    if metadata.get("activation", "relu") not in ACTIVATIONS:
        raise fail(f"'activation' must be one of {', '.join(ACTIVATIONS)}")
    if not isinstance(metadata.get("options", {}), dict):
        raise fail("'options' must be an object")
    accuracy = metadata.get("test_accuracy", 0.0)
    if type(accuracy) not in (int, float) or not 0 <= accuracy <= 1:
        raise fail("'test_accuracy' must be a number from 0 to 1")
    count = _parameter_count(len(features), hidden, metadata["batch_norm"])
    if count > MAX_PARAMETERS:
        raise fail(f"its architecture has {count} parameters, more than the {MAX_PARAMETERS} "
                   "a placement model may have")


def _check_values(arrays: dict, path: str | os.PathLike) -> None:
    """Refuse weights, statistics or standardiser that would make every prediction nan."""
    for key, array in arrays.items():
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"{path}: the model file is damaged: {key} holds non-finite "
                             "values (nan or inf)")
        if key.endswith("running_var") and np.any(array < 0):
            raise ValueError(f"{path}: the model file is damaged: {key} holds a negative "
                             "variance")
    if np.any(arrays["standardizer.std"] <= 0):
        raise ValueError(f"{path}: the model file is damaged: standardizer.std must be > 0")


def load_model(path: str | os.PathLike) -> tuple:
    """Read a file written by `save_model`: returns (model in eval mode, Standardizer, metadata).

    The file is untrusted input, read once and in bounded memory: the metadata is checked
    first (`check_metadata`), then each array's declared shape and dtype against the
    architecture it describes, and only then are the arrays inflated and checked to be finite
    (a standard deviation must be > 0).

    Raises FileNotFoundError, or ValueError with one line naming the file, when it is not
    such a model or does not fit its own architecture.
    """
    with checkpoint.open_checkpoint(path) as archive:
        metadata = archive.metadata
        check_metadata(metadata, path)
        model = build_model(len(metadata["features"]), metadata["hidden"],
                            metadata["batch_norm"],
                            activation=metadata.get("activation", "relu"))
        expected = {f"model.{key}": checkpoint.ArraySpec(value.shape, value.dtype)
                    for key, value in model.state_dict().items()}
        width = checkpoint.ArraySpec((len(metadata["features"]),), np.dtype(np.float32))
        expected["standardizer.mean"] = expected["standardizer.std"] = width
        state = archive.read(expected)
    _check_values(state, path)
    model.load_state_dict({k[len("model."):]: v for k, v in state.items()
                           if k.startswith("model.")})
    scaler = Standardizer(state["standardizer.mean"], state["standardizer.std"])
    return model.eval(), scaler, metadata


def inference_pipeline(model: nn.Module, standardizer: Standardizer) -> nn.Sequential:
    """Raw features → P(placed): ``standardizer`` → ``model`` → Sigmoid, in evaluation mode.

    What the exporters write (`tinygrad_bn.onnx`, `tinygrad_bn.torch_bridge`). Its children
    are named ``standardizer`` and ``model``, so its state_dict keys are exactly those of a
    file written by `save_model`: such a file's arrays load straight into it, or its PyTorch
    twin.
    """
    scale = nn.Standardize(standardizer.mean, standardizer.std)
    return nn.Sequential(OrderedDict(standardizer=scale, model=model,
                                     sigmoid=nn.Sigmoid())).eval()
