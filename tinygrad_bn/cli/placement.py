"""``tinygrad-bn train | predict | info | data``: the placement example from the command line."""
from __future__ import annotations

import sys
from typing import Any

import click
import numpy as np
from click.core import ParameterSource

from ..data import (DEFAULT_FEATURES, DEFAULT_TARGET, DataError, bundled_placement_path,
                    generate_placement, load_csv, to_csv_text, write_csv)
from ..files import OutputError
from ..numbers import NumberError, parse_number
from ..optim import DivergenceError
from ..placement import (ACTIVATIONS, INITS, TrainConfig, TrainResult, load_model,
                         load_resume, predict_proba, save_model, train)
from .monitor import finish_monitor, start_monitor
from .options import (FileProblem, FiniteFloat, IntList, NameList, check_writable, echo_json,
                      printable)

__all__ = ["train_command", "predict_command", "info_command", "data_command"]

POSITIVE_FLOAT = FiniteFloat(min=0.0, min_open=True)
NON_NEGATIVE_FLOAT = FiniteFloat(min=0.0)


def _load_training_data(path: str | None, features: tuple, target: str) -> Any:
    try:
        dataset = load_csv(path or bundled_placement_path(), features, target)
    except DataError as error:
        raise FileProblem(str(error)) from None
    if path is None:
        dataset.source = "the bundled placement.csv"
    return dataset


def _architecture(result: TrainResult) -> str:
    parts = []
    for module in result.model:
        name = type(module).__name__
        if name == "Linear":
            name = f"Linear({module.in_features}→{module.out_features})"
        elif name == "BatchNorm1d":
            name = f"BatchNorm1d({module.num_features})"
        parts.append(name)
    return " → ".join(parts)


def _epoch_line(record: dict, epochs: int) -> str:
    width = len(str(epochs))
    return (f"epoch {record['epoch']:>{width}}/{epochs}  loss {record['train_loss']:.4f}  "
            f"train acc {record['train_accuracy']:.3f}  test acc {record['test_accuracy']:.3f}")


def _vector(values: np.ndarray) -> str:
    return " ".join(f"{v:5.2f}" for v in values)


def _print_report(result: TrainResult) -> None:
    matrix = result.confusion_matrix
    click.echo(f"\nTest accuracy {result.test_accuracy:.3f} (majority class "
               f"{result.majority_accuracy:.3f}), test loss {result.test_loss:.4f}, "
               f"train accuracy {result.train_accuracy:.3f}")
    click.echo("Confusion matrix on the test split (rows: actual, columns: predicted):")
    click.echo("              pred 0  pred 1")
    for label, row in zip((0, 1), matrix):
        click.echo(f"    actual {label}  {row[0]:>6}  {row[1]:>6}")
    layers = [m for m in result.model if type(m).__name__ == "BatchNorm1d"]
    if layers:
        click.echo("Learned BatchNorm parameters (γ scales, β shifts each normalised feature):")
        for name, module in result.model.named_children():
            if module in layers:
                click.echo(f"  layer {name}: γ = {_vector(module.gamma.data)}")
                click.echo(f"  {' ' * len(name)}       β = {_vector(module.beta.data)}")
    if result.dropped_rows_per_epoch:
        click.echo(f"Note: {result.dropped_rows_per_epoch} training row per epoch was skipped: "
                   "a last mini-batch of one row cannot be batch-normalised.")


@click.command("train")
@click.option("--data", "data_path", type=click.Path(dir_okay=False),
              help="CSV file with a header row. Default: the bundled placement data "
                   "(600 students).")
@click.option("--features", type=NameList(), default=",".join(DEFAULT_FEATURES),
              show_default=True, help="Feature columns, comma-separated.")
@click.option("--target", default=DEFAULT_TARGET, show_default=True,
              help="Target column (0/1 labels).")
@click.option("--hidden", type=IntList(), default="16,16", show_default=True,
              help="Hidden layer sizes; each is Linear → BatchNorm1d → the activation.")
@click.option("--batch-norm/--no-batch-norm", default=True, show_default=True,
              help="Put BatchNorm1d between each hidden Linear and its ReLU.")
@click.option("--lr", type=POSITIVE_FLOAT, default=0.1, show_default=True,
              help="SGD learning rate η (p ← p − η·∂L/∂p).")
@click.option("--momentum", type=NON_NEGATIVE_FLOAT, default=0.0, show_default=True,
              help="SGD momentum.")
@click.option("--weight-decay", type=NON_NEGATIVE_FLOAT, default=0.0, show_default=True,
              help="L2 weight decay.")
@click.option("--epochs", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True,
              help="Mini-batch size (BatchNorm needs at least 2).")
@click.option("--test-size", type=FiniteFloat(0, 1, min_open=True, max_open=True),
              default=0.2, show_default=True, help="Fraction held out for testing (stratified).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed for the split, initialisation and shuffling: same seed, same numbers.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False),
              help="Write the trained model to this .npz file (for `predict` and `info`).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one strict JSON object instead of text (a non-finite number is null).")
@click.option("--quiet", is_flag=True, help="No progress bar or per-epoch lines.")
@click.option("--activation", type=click.Choice(list(ACTIVATIONS)), default="relu",
              show_default=True, help="The hidden layers' nonlinearity (saturation shows only "
                                      "with tanh and sigmoid).")
@click.option("--init", "init", type=click.Choice(INITS), default="default", show_default=True,
              help="Weight initialisation: Linear's default U(±1/√fan_in), an nn.init scheme "
                   "with the activation's gain, or N(0, 1).")
@click.option("--monitor", "monitor_dir", type=click.Path(file_okay=False), default=None,
              help="Record per-layer statistics while training and write them, PNG figures "
                   "and an index.html to this folder (needs matplotlib).")
@click.option("--monitor-every", type=click.IntRange(min=1), default=5, show_default=True,
              help="With --monitor: record one training step out of this many.")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False),
              help="Continue training a model saved by train --save, with its saved optimizer "
                   "state, options and data, for --epochs more epochs. Only --epochs, --save, "
                   "--data (the same data, moved), --json, --quiet, --monitor and --compile "
                   "may be given with it.")
@click.option("--compile", "compile_step", is_flag=True,
              help="Run the training step through tinygrad_bn.jit: traced on its first calls, "
                   "then replayed as a flat numpy program (same numbers, faster; not with "
                   "--monitor).")
def train_command(data_path: str | None, features: tuple, target: str, hidden: tuple,
                  batch_norm: bool, lr: float, momentum: float, weight_decay: float, epochs: int,
                  batch_size: int, test_size: float, seed: int, save_path: str | None,
                  as_json: bool, quiet: bool, activation: str, init: str,
                  monitor_dir: str | None, monitor_every: int, resume_path: str | None,
                  compile_step: bool) -> None:
    """Train the placement classifier and report what it learned.

    The network is Linear → BatchNorm1d → ReLU for each hidden layer, then Linear → one logit,
    trained with BCE-with-logits and SGD. Features are standardised with statistics from the
    training split. Example:

        tinygrad-bn train --epochs 30 --save model.npz

    Watch it train (figures and a page in run/):

        tinygrad-bn train --activation tanh --monitor run/

    Train 20 more epochs, replacing the file (exactly as if it had trained 50 in one run):

        tinygrad-bn train --resume model.npz --epochs 20 --save model.npz
    """
    resume = None
    if resume_path is not None:
        resume, config, data_path, features, target = _resume_options(resume_path, data_path,
                                                                      epochs)
        activation, batch_norm = config.activation, config.batch_norm
    if target in features:
        raise click.BadParameter(f"{target!r} is the target; it cannot also be a feature (the "
                                 "model would be given the answer)", param_hint="--target")
    # Only the data are inputs here: --save may replace the --resume file, which is read whole
    # before training, and the save is atomic.
    check_writable(save_path, inputs=[data_path or bundled_placement_path()])
    if compile_step and monitor_dir:
        raise click.UsageError("--compile and --monitor cannot be combined: the monitor "
                               "records through hooks, which a compiled step does not run")
    dataset = _load_training_data(data_path, features, target)
    if resume is None:
        config = TrainConfig(hidden=hidden, batch_norm=batch_norm, lr=lr, momentum=momentum,
                             weight_decay=weight_decay, epochs=epochs, batch_size=batch_size,
                             test_size=test_size, seed=seed, activation=activation, init=init)
    first = 0 if resume is None else resume.epochs_trained
    monitor = start_monitor(monitor_dir, monitor_every,
                            f"{activation}, {'BatchNorm' if batch_norm else 'no BatchNorm'}")
    show_progress = not (quiet or as_json)
    if show_progress:
        click.echo(f"Training on {dataset.source} ({len(dataset)} rows; features "
                   f"{', '.join(features)}; target {target})")
        if resume is not None:
            click.echo(f"Resuming {resume_path} after epoch {first}")
    try:
        if show_progress:
            with click.progressbar(length=epochs, label="epochs", file=sys.stderr) as bar:
                def on_epoch(record: dict) -> None:
                    if sys.stderr.isatty():
                        click.echo("\r\033[K", nl=False, err=True)  # clear the bar's line
                    click.echo(_epoch_line(record, first + epochs))
                    bar.update(1)
                result = train(dataset, config, on_epoch, monitor=monitor,
                               compile=compile_step, resume=resume)
        else:
            result = train(dataset, config, monitor=monitor, compile=compile_step,
                           resume=resume)
    except DivergenceError as error:
        raise FileProblem(f"{error} than --lr {lr:g}; nothing was saved") from None
    except ValueError as error:  # e.g. too few rows to split
        raise FileProblem(str(error)) from None

    if save_path:
        try:
            save_model(save_path, result, data_path=data_path, target=target)
        except OutputError as error:
            raise FileProblem(str(error)) from None
    page = finish_monitor(monitor, monitor_dir)
    summary = result.summary()
    summary["data"] = dataset.source
    if page:
        summary["monitor"] = page
    if as_json:
        echo_json(summary)
        return
    if show_progress:
        click.echo(f"Model: {_architecture(result)}")
    _print_report(result)
    if save_path:
        click.echo(f"Saved the model to {save_path}")
    if page:
        click.echo(f"Wrote the training monitor's figures to {page}")


# Options that describe the run itself: on --resume they come from the file, and giving one
# with another value is refused (train afresh to change them).
_FIXED_ON_RESUME = ("features", "target", "hidden", "batch_norm", "lr", "momentum",
                    "weight_decay", "batch_size", "test_size", "seed", "activation", "init")


def _resume_options(path: str, data_path: str | None, epochs: int) -> tuple:
    """Read --resume's file; returns (Resume, TrainConfig for ``epochs`` more, data path,
    features, target). Exit 1 if the file cannot be resumed, 2 if an option conflicts."""
    try:
        resume, config, metadata = load_resume(path)
    except (FileNotFoundError, ValueError) as error:
        raise FileProblem(str(error)) from None
    saved = {**vars(config), "features": tuple(metadata["features"]),
             "target": metadata["resume"]["target"], "hidden": tuple(config.hidden)}
    context = click.get_current_context()
    for name in _FIXED_ON_RESUME:
        if context.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            continue
        given = context.params[name]
        if (tuple(given) if isinstance(given, (list, tuple)) else given) != saved[name]:
            flag = next(p.opts[0] for p in context.command.params if p.name == name)
            shown = ",".join(map(str, saved[name])) if isinstance(saved[name], tuple) \
                else saved[name]
            raise click.UsageError(f"{flag} cannot be changed when resuming: {path} was "
                                   f"trained with {shown} (train afresh to change it)")
    config.epochs = epochs
    data = data_path if data_path is not None else metadata["resume"]["data"]
    return resume, config, data, saved["features"], saved["target"]


def _parse_row(text: str, feature_names: tuple) -> list:
    values = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"{text!r}: write name=value pairs, e.g. "
                                     f"{','.join(f'{f}=1' for f in feature_names)}",
                                     param_hint="--row")
        if name in values:
            raise click.BadParameter(f"{text!r}: {name!r} is given twice", param_hint="--row")
        try:
            values[name] = parse_number(value, np.float32)
        except NumberError as error:
            raise click.BadParameter(f"{text!r}: {name!r}: {error}", param_hint="--row") \
                from None
    missing = [f for f in feature_names if f not in values]
    unknown = [n for n in values if n not in feature_names]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(printable(m) for m in missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(unknown)}")
        raise click.BadParameter(f"{text!r}: {'; '.join(problems)} (the model uses "
                                 f"{', '.join(map(printable, feature_names))})",
                                 param_hint="--row")
    return [values[f] for f in feature_names]


def _load_model_or_fail(path: str) -> tuple:
    try:
        return load_model(path)
    except (FileNotFoundError, ValueError) as error:
        raise FileProblem(str(error)) from None


@click.command("predict")
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="A model saved by `tinygrad-bn train --save`.")
@click.option("--row", "rows", multiple=True, metavar="NAME=VALUE,...",
              help="One example, e.g. --row cgpa=8.1,iq=120 (repeatable).")
@click.option("--data", "data_path", type=click.Path(dir_okay=False),
              help="A CSV with the model's feature columns (a target column, if present, is "
                   "used only to report accuracy).")
@click.option("--features", type=NameList(), default=None,
              help="With --data: the CSV's columns to use, in the model's feature order "
                   "(default: the model's own feature names).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one strict JSON object instead of text (a non-finite number is null).")
def predict_command(model_path: str, rows: tuple, data_path: str | None,
                    features: tuple | None, as_json: bool) -> None:
    """Predict P(placed) with a saved model, in evaluation mode (BatchNorm uses its running
    statistics, so one row at a time works). Example:

        tinygrad-bn predict --model model.npz --row cgpa=8.1,iq=120 --row cgpa=6,iq=95
    """
    if bool(rows) == bool(data_path):
        raise click.UsageError("give either --row (one or more) or --data, not both")
    model, scaler, metadata = _load_model_or_fail(model_path)
    names = tuple(metadata["features"])
    accuracy, targets = None, None
    if rows:
        X = np.array([_parse_row(r, names) for r in rows], dtype=np.float32)
        shown = [dict(zip(names, map(float, x))) for x in X]
    else:
        columns = features or names
        if len(columns) != len(names):
            raise click.BadParameter(f"the model takes {len(names)} features "
                                     f"({', '.join(names)}), got {len(columns)}",
                                     param_hint="--features")
        target = metadata.get("options", {}).get("target", DEFAULT_TARGET)
        try:
            dataset = load_csv(data_path, columns, target, require_target=False)
        except DataError as error:
            raise FileProblem(str(error)) from None
        X = dataset.X
        shown = [dict(zip(columns, map(float, x))) for x in X]
        targets = dataset.y
    probability = predict_proba(model, scaler.transform(X))
    predicted = (probability >= 0.5).astype(int)
    if targets is not None:
        accuracy = float(np.mean(predicted == targets.astype(int)))
    if as_json:
        echo_json({
            "model": model_path, "features": list(names),
            "predictions": [{"input": row, "probability": float(p), "prediction": int(c)}
                            for row, p, c in zip(shown, probability, predicted)],
            "accuracy": accuracy})
        return
    for row, p, c in zip(shown, probability, predicted):
        described = ", ".join(f"{printable(k)}={v:g}" for k, v in row.items())
        click.echo(f"{described}  →  P(placed) = {p:.3f}  prediction {c}")
    if accuracy is not None:
        click.echo(f"Accuracy against the file's target column: {accuracy:.3f} "
                   f"({len(predicted)} rows)")


@click.command("info")
@click.argument("model_path", metavar="MODEL.npz", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print one strict JSON object instead of text (a non-finite number is null).")
def info_command(model_path: str, as_json: bool) -> None:
    """Show what a saved model contains: features, architecture, options, arrays.

    Names read from the file are shown with control characters escaped."""
    model, scaler, metadata = _load_model_or_fail(model_path)  # checked and read once
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    # The optimizer's buffers are listed by shape and dtype only, which the loader checked to
    # be their parameters' (so the parameters stand in for them here).
    if "resume" in metadata:
        momentum = metadata["resume"]["optimizer"][0]["momentum"] > 0
        arrays.update({f"optimizer.state.{i}.momentum_buffer": p.data
                       for i, p in enumerate(model.parameters()) if momentum})
    arrays.update({"standardizer.mean": scaler.mean, "standardizer.std": scaler.std})
    parameters = sum(p.data.size for p in model.parameters())
    if as_json:
        echo_json({
            **metadata, "parameters": parameters,
            "resumable_after_epoch": metadata.get("resume", {}).get("epochs_trained"),
            "arrays": {k: list(v.shape) for k, v in arrays.items()},
            "standardizer": {"mean": scaler.mean.tolist(), "std": scaler.std.tolist()}})
        return
    click.echo(f"Model file: {model_path}")
    names = ", ".join(printable(name) for name in metadata["features"])
    click.echo(f"Features: {names} (standardised with mean "
               f"{np.array2string(scaler.mean, precision=3)}, std "
               f"{np.array2string(scaler.std, precision=3)})")
    click.echo(f"Architecture ({parameters} parameters):\n{model!r}")
    options = ", ".join(printable(f"{k}={v}") for k, v in metadata.get("options", {}).items())
    click.echo(f"Trained with: {options}")
    if "test_accuracy" in metadata:
        click.echo(f"Test accuracy when saved: {metadata['test_accuracy']:.3f}")
    click.echo(f"Resumable: {_resumable(metadata)}")
    click.echo("Arrays:")
    for key, value in arrays.items():
        click.echo(f"  {key:<32} {str(value.shape):<10} {value.dtype}")


def _resumable(metadata: dict) -> str:
    if "resume" not in metadata:
        return "no (saved without its optimizer state)"
    return (f"yes, after epoch {metadata['resume']['epochs_trained']} "
            "(train --resume continues it)")


@click.command("data")
@click.option("--rows", type=click.IntRange(min=2), default=600, show_default=True,
              help="How many students to generate.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the CSV (cgpa,iq,placed); '-' for standard output.")
def data_command(rows: int, seed: int, out_path: str) -> None:
    """Generate a placement dataset with the documented, seeded process (the bundled file is
    --rows 600 --seed 0)."""
    if out_path != "-":
        check_writable(out_path)  # before the work, however many rows are asked for
    dataset = generate_placement(rows, seed)
    if out_path == "-":
        click.echo(to_csv_text(dataset), nl=False)
        return
    try:
        write_csv(dataset, out_path)
    except OutputError as error:
        raise FileProblem(str(error)) from None
    click.echo(f"Wrote {rows} rows to {out_path} (placed: {int(dataset.y.sum())}, "
               f"not placed: {rows - int(dataset.y.sum())})")
