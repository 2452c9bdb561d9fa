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
from .data import DEFAULT_TARGET, Dataset, Standardizer, dropped_rows, train_test_split
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
           "INITS", "inference_pipeline", "Resume", "load_resume"]

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
    # What `save_model` needs so that `train(..., resume=...)` can continue this run exactly.
    optimizer_state: dict | None = None   # optimizer.state_dict() after the last step
    epochs_trained: int = 0               # counting the epochs of the run resumed, if any
    shuffle_state: dict | None = None     # the shuffling generator's bit_generator.state

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


@dataclass
class Resume:
    """A saved run to continue (`load_resume` reads it): the model's and the optimizer's
    state, the standardiser (to check the data are the same), the epochs already trained and
    the shuffling generator's state, so that E₁ epochs, saved, then E₂ resumed give the same
    numbers as E₁ + E₂ epochs in one run."""

    model_state: dict
    optimizer_state: dict
    standardizer: Standardizer
    epochs_trained: int
    shuffle_state: dict


def train(dataset: Dataset, config: TrainConfig,
          on_epoch: Callable[[dict], None] | None = None, monitor: Any = None,
          compile: bool = False, resume: Resume | None = None) -> TrainResult:
    """Train the placement network on ``dataset``; the same seed gives the same numbers.

    Steps: stratified split → standardise (statistics from the training split) → for each
    epoch, shuffled mini-batches of forward, BCE-with-logits loss, backward, SGD step →
    evaluate. ``on_epoch`` receives each epoch's record (for progress display). A
    `monitor.Monitor` given as ``monitor`` is attached to the model and stepped after every
    SGD step (it only watches: the numbers are the same with or without it).

    With ``resume`` the run continues a saved one for ``config.epochs`` more epochs (numbered
    on from the saved count): the same split, then the saved weights, optimizer state and
    shuffling state replace the fresh ones. ``dataset`` must be the one it was trained on:
    its training split must standardise exactly as the saved standardiser does.

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
    if resume is not None and not (np.array_equal(scaler.mean, resume.standardizer.mean)
                                   and np.array_equal(scaler.std, resume.standardizer.std)):
        raise ValueError(f"{dataset.source} is not the data the saved run was trained on (its "
                         "training split's mean and std differ from the saved ones)")
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    manual_seed(config.seed)
    model = build_model(X_train.shape[1], config.hidden, config.batch_norm,
                        activation=config.activation, init=config.init)
    if monitor is not None:
        monitor.attach(model)
    optimizer = optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    first = 0
    if resume is not None:
        model.load_state_dict(resume.model_state)
        optimizer.load_state_dict(resume.optimizer_state)
        rng.bit_generator.state = resume.shuffle_state  # the shuffling goes on where it stopped
        first = resume.epochs_trained
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
    for epoch in range(first + 1, first + config.epochs + 1):
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
                       dropped_rows_per_epoch=dropped_rows(len(X_train), config.batch_size),
                       optimizer_state=optimizer.state_dict(),
                       epochs_trained=first + config.epochs,
                       shuffle_state=rng.bit_generator.state)


# --- saving and loading a trained model -----------------------------------------------------------

def save_model(path: str | os.PathLike, result: TrainResult, *,
               data_path: str | os.PathLike | None = None, target: str = DEFAULT_TARGET) -> None:
    """One self-contained .npz: weights and BN running statistics (under ``model.``), the
    standardisation statistics, and the architecture and feature names as JSON.

    A result of `train` also carries what resuming needs (`load_resume`): the optimizer's
    buffers (under ``optimizer.``), and in the metadata's ``"resume"`` object its param_groups,
    the epochs trained, the shuffling generator's state, and where the data came from
    (``data_path``, an absolute path, or None for the bundled file; ``target``).
    """
    options = {**asdict(result.config), "hidden": list(result.config.hidden)}
    if result.epochs_trained:
        options["epochs"] = result.epochs_trained  # of the whole run, resumed parts included
    metadata = {
        "format": FORMAT,
        "features": list(result.feature_names),
        "hidden": list(result.config.hidden),
        "batch_norm": result.config.batch_norm,
        "activation": result.config.activation,
        "test_accuracy": result.test_accuracy,
        "options": options,
    }
    state = {f"model.{k}": v for k, v in result.model.state_dict().items()}
    state["standardizer.mean"] = result.standardizer.mean
    state["standardizer.std"] = result.standardizer.std
    if result.optimizer_state is not None and result.shuffle_state is not None:
        arrays, groups = checkpoint.optimizer_arrays(result.optimizer_state)
        state.update(arrays)
        shuffle = result.shuffle_state
        metadata["resume"] = {
            "epochs_trained": result.epochs_trained,
            "data": None if data_path is None else os.path.abspath(data_path),
            "target": target,
            "optimizer": groups,
            # 128-bit integers as decimal text: JSON readers elsewhere lose precision on them.
            "shuffle": {"bit_generator": shuffle["bit_generator"],
                        "state": {k: str(v) for k, v in shuffle["state"].items()},
                        "has_uint32": int(shuffle["has_uint32"]),
                        "uinteger": int(shuffle["uinteger"])},
        }
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


# The SGD options a saved param_group holds (PyTorch's names), with the check each must pass.
_SGD_OPTIONS = {
    "lr": lambda v: _is_number(v) and v > 0,
    "momentum": lambda v: _is_number(v) and v >= 0,
    "dampening": lambda v: _is_number(v) and 0 <= v <= 1,
    "weight_decay": lambda v: _is_number(v) and v >= 0,
    "nesterov": lambda v: isinstance(v, bool),
    "maximize": lambda v: isinstance(v, bool),
}
MAX_EPOCHS = 10 ** 9
MAX_PATH_CHARS = 4096


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _check_resume(resume: Any, n_parameters: int, fail: Callable[[str], ValueError]) -> None:
    """Refuse a ``"resume"`` metadata object that is not what `save_model` writes for a model
    with ``n_parameters`` parameters (types, ranges, finite numbers), before it is used."""
    if not isinstance(resume, dict):
        raise fail("'resume' must be an object")
    epochs = resume.get("epochs_trained")
    if type(epochs) is not int or not 1 <= epochs <= MAX_EPOCHS:
        raise fail(f"'resume.epochs_trained' must be an integer from 1 to {MAX_EPOCHS}")
    data = resume.get("data")
    if data is not None and not (isinstance(data, str) and 0 < len(data) <= MAX_PATH_CHARS):
        raise fail("'resume.data' must be a file name or null")
    target = resume.get("target")
    if not (isinstance(target, str) and 0 < len(target) <= MAX_NAME_CHARS):
        raise fail(f"'resume.target' must be a text of 1 to {MAX_NAME_CHARS} characters")
    groups = resume.get("optimizer")
    if not (isinstance(groups, list) and len(groups) == 1 and isinstance(groups[0], dict)):
        raise fail("'resume.optimizer' must hold the one parameter group of SGD")
    group = groups[0]
    if set(group) != set(_SGD_OPTIONS) | {"params"}:
        raise fail(f"the optimizer's parameter group must have exactly the options "
                   f"{', '.join(_SGD_OPTIONS)} and params")
    for name, valid in _SGD_OPTIONS.items():
        if not valid(group[name]):
            raise fail(f"the optimizer's {name} is out of range or not a finite number")
    if group["params"] != list(range(n_parameters)):
        raise fail(f"the optimizer's params must number the model's {n_parameters} parameters")
    shuffle = resume.get("shuffle")
    state = shuffle.get("state") if isinstance(shuffle, dict) else None
    if not (isinstance(shuffle, dict) and set(shuffle) == {"bit_generator", "state",
                                                           "has_uint32", "uinteger"}
            and shuffle["bit_generator"] == "PCG64" and isinstance(state, dict)
            and set(state) == {"state", "inc"}
            and all(isinstance(v, str) and v.isdigit() and len(v) <= 39 and int(v) < 1 << 128
                    for v in state.values())
            and shuffle["has_uint32"] in (0, 1) and type(shuffle["has_uint32"]) is int
            and type(shuffle["uinteger"]) is int and 0 <= shuffle["uinteger"] < 1 << 32):
        raise fail("'resume.shuffle' is not the state of a PCG64 generator")


def _read(path: str | os.PathLike) -> tuple:
    """The one bounded reading of a model file: (model, Standardizer, metadata, arrays)."""
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
        if "resume" in metadata:
            # Which optimizer buffers exist follows from the validated options; their shapes
            # come from the model's parameters, never from the file.
            parameters = list(model.parameters())
            _check_resume(metadata["resume"], len(parameters),
                          lambda reason: ValueError(f"{path}: the model file is damaged: "
                                                    f"{reason}"))
            if metadata["resume"]["optimizer"][0]["momentum"] > 0:
                for index, p in enumerate(parameters):
                    expected[f"optimizer.state.{index}.momentum_buffer"] = \
                        checkpoint.ArraySpec(p.shape, np.dtype(np.float32))
        state = archive.read(expected)
    _check_values(state, path)
    model.load_state_dict({k[len("model."):]: v for k, v in state.items()
                           if k.startswith("model.")})
    scaler = Standardizer(state["standardizer.mean"], state["standardizer.std"])
    return model.eval(), scaler, metadata, state


def load_model(path: str | os.PathLike) -> tuple:
    """Read a file written by `save_model`: returns (model in eval mode, Standardizer, metadata).

    The file is untrusted input, read once and in bounded memory: the metadata is checked
    first (`check_metadata`, and the ``"resume"`` object if there is one), then each array's
    declared shape and dtype against the architecture it describes (the optimizer's buffers
    against the parameters'), and only then are the arrays inflated and checked to be finite
    (a standard deviation must be > 0). Files saved before resuming existed load too.

    Raises FileNotFoundError, or ValueError with one line naming the file, when it is not
    such a model or does not fit its own architecture.
    """
    model, scaler, metadata, _ = _read(path)
    return model, scaler, metadata


def _saved_config(metadata: dict, path: str | os.PathLike) -> TrainConfig:
    """The TrainConfig a resumable file was trained with, its types checked first."""
    options = metadata.get("options", {})
    kinds = {"lr": _is_number, "momentum": _is_number, "weight_decay": _is_number,
             "test_size": _is_number, "epochs": lambda v: type(v) is int,
             "batch_size": lambda v: type(v) is int,
             "seed": lambda v: type(v) is int and 0 <= v < 1 << 63,
             "init": lambda v: isinstance(v, str)}
    for name, valid in kinds.items():
        if name not in options or not valid(options[name]):
            raise ValueError(f"{path}: the model file is damaged: the option {name!r} is "
                             "missing or of the wrong type")
    config = TrainConfig(hidden=tuple(metadata["hidden"]), batch_norm=metadata["batch_norm"],
                         activation=metadata.get("activation", "relu"),
                         **{name: options[name] for name in kinds})
    try:
        config.validate()
    except ValueError as error:
        raise ValueError(f"{path}: the model file is damaged: {error}") from None
    return config


def load_resume(path: str | os.PathLike) -> tuple:
    """Read a file written by `save_model` to continue its training: returns (`Resume`,
    the run's TrainConfig, metadata). Checked as `load_model` checks; raises ValueError
    (one line naming the file) also when it was saved without its optimizer state.

    The config's ``epochs`` is the saved run's total; set it to the number of further epochs
    before ``train(dataset, config, resume=resume)``."""
    model, scaler, metadata, arrays = _read(path)
    if "resume" not in metadata:
        raise ValueError(f"{path} was saved without its optimizer state, so its training "
                         "cannot be resumed (save it again with this version's train --save)")
    config = _saved_config(metadata, path)
    saved = metadata["resume"]
    optimizer_state = checkpoint.optimizer_state(arrays, saved["optimizer"])
    shuffle = saved["shuffle"]
    shuffle_state = {"bit_generator": shuffle["bit_generator"],
                     "state": {k: int(v) for k, v in shuffle["state"].items()},
                     "has_uint32": shuffle["has_uint32"], "uinteger": shuffle["uinteger"]}
    resume = Resume(model.state_dict(), optimizer_state, scaler, saved["epochs_trained"],
                    shuffle_state)
    return resume, config, metadata


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
