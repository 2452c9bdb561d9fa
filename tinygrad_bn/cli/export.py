"""``tinygrad-bn export``: a saved placement model out to ONNX or PyTorch, standardiser included."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..files import atomic_write
from ..optional import require
from ..placement import inference_pipeline, load_model
from .options import FileProblem, check_writable

__all__ = ["export_command"]

SUFFIXES = {".onnx": "onnx", ".pt": "torch", ".pth": "torch"}
PACKAGES = {"onnx": ("onnx", "onnx"), "torch": ("torch", "torch")}


def _format_of(out_path: str, chosen: str | None) -> str:
    if chosen is not None:
        return chosen
    suffix = Path(out_path).suffix.lower()
    if suffix not in SUFFIXES:
        raise click.UsageError(f"cannot tell the format from {out_path!r}: name it .onnx, .pt "
                               "or .pth, or give --format onnx|torch")
    return SUFFIXES[suffix]


def _export_onnx(pipeline: object, names: tuple, out_path: str, opset: int) -> None:
    from ..onnx import export  # after require(): the onnx package is there
    example = np.zeros((1, len(names)), dtype=np.float32)
    export(pipeline, example, out_path, opset=opset, input_names=["features"],
           output_names=["probability"],
           metadata={"features": ",".join(names), "probability": "P(placed)"})
    click.echo(f"Wrote {out_path} (ONNX, opset {opset}): input 'features' of shape "
               f"(batch, {len(names)}) = raw {', '.join(names)}; output 'probability' of shape "
               "(batch, 1) = P(placed).")


def _export_torch(pipeline: object, names: tuple, out_path: str) -> None:
    from ..torch_bridge import definition, to_torch
    torch = require("torch", "torch")
    twin = to_torch(pipeline)
    atomic_write(out_path, lambda file: torch.save(twin.state_dict(), file))
    # Everything printed is Python: redirect it to a file and run it.
    click.echo(f"# {out_path}: a state_dict (weights, BatchNorm running statistics and the "
               "standardiser).")
    click.echo(f"# The model takes raw {', '.join(names)} (shape (batch, {len(names)})) and "
               "returns P(placed) (shape (batch, 1)).")
    click.echo(definition(twin))
    click.echo(f"model.load_state_dict(torch.load({out_path!r}, weights_only=True))")
    click.echo("model.eval()")


@click.command("export")
@click.argument("model_path", metavar="MODEL.npz", type=click.Path(dir_okay=False))
@click.argument("out_path", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--format", "chosen", type=click.Choice(["onnx", "torch"]), default=None,
              help="onnx (an .onnx file) or torch (a state_dict .pt file). "
                   "Default: from OUT's suffix (.onnx → onnx; .pt, .pth → torch).")
@click.option("--opset", type=click.IntRange(min=15), default=17, show_default=True,
              help="ONNX opset version (onnx format only).")
def export_command(model_path: str, out_path: str, chosen: str | None, opset: int) -> None:
    """Export a model saved by `tinygrad-bn train --save` for ONNX runtimes or PyTorch.

    The exported model takes raw features (it standardises them itself, with the training
    split's statistics) and returns P(placed). With --format torch, the printed text is the
    torch.nn definition plus the two lines that load the weights. Examples:

        tinygrad-bn export model.npz model.onnx

        tinygrad-bn export model.npz model.pt > load_model.py
    """
    fmt = _format_of(out_path, chosen)
    check_writable(out_path, inputs=[model_path])
    package, extra = PACKAGES[fmt]
    try:
        module = require(package, extra)
    except ImportError as error:
        raise FileProblem(f"--format {fmt}: {error}") from None
    if fmt == "onnx" and opset > module.defs.onnx_opset_version():
        raise click.BadParameter(f"{opset}: the installed onnx knows opsets up to "
                                 f"{module.defs.onnx_opset_version()}", param_hint="--opset")
    try:
        model, scaler, metadata = load_model(model_path)
    except (FileNotFoundError, ValueError) as error:
        raise FileProblem(str(error)) from None
    names = tuple(metadata["features"])
    pipeline = inference_pipeline(model, scaler)
    try:
        if fmt == "onnx":
            _export_onnx(pipeline, names, out_path, opset)
        else:
            _export_torch(pipeline, names, out_path)
    except OSError as error:  # e.g. a full disk; the temporary file is already removed
        raise FileProblem(f"cannot write {out_path}: {error}") from None
