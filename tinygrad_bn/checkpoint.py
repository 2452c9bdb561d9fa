"""Checkpoints: a state_dict saved as one ``.npz`` file — plain arrays, never pickle.

The file is written to a temporary name beside the target and renamed into place, so an
interrupted save never leaves a half-written checkpoint. Loading uses
``np.load(..., allow_pickle=False)``, so a file carrying pickled Python objects is refused
instead of executed. Keys and array layouts are PyTorch's, so the arrays load into the
equivalent ``torch.nn`` model too.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "load_with_metadata", "atomic_write", "optimizer_arrays",
           "optimizer_state"]

# Metadata (a dict) travels as a JSON text in a 0-d unicode array: readable without pickle.
METADATA_KEY = "__metadata__"


def atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {directory} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        # mkstemp makes the file private (0600); give it the permissions of a normal new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def save(state_dict: dict, path: str | os.PathLike, *, metadata: dict | None = None) -> None:
    """Write a dict of arrays (e.g. ``model.state_dict()``) to ``path`` as an ``.npz`` file.

    ``metadata``, a JSON-serialisable dict, is stored beside the arrays (see
    `load_with_metadata`).
    """
    arrays = {}
    for key, value in state_dict.items():
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"cannot save {key!r}: checkpoints hold numeric arrays only, got "
                            f"dtype {array.dtype}")
        arrays[key] = array
    if metadata is not None:
        arrays[METADATA_KEY] = np.array(json.dumps(metadata))
    atomic_write(path, lambda file: np.savez(file, **arrays))


def load(path: str | os.PathLike) -> dict:
    """Read an ``.npz`` checkpoint into a dict of numpy arrays (no pickle is ever loaded)."""
    return load_with_metadata(path)[0]


def load_with_metadata(path: str | os.PathLike) -> tuple:
    """Read an ``.npz`` checkpoint: returns (dict of arrays, metadata dict or {})."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise ValueError(f"{path} contains pickled Python objects; refusing to load it "
                             "(checkpoints hold plain arrays only)") from None
        raise ValueError(f"{path} is not a valid .npz checkpoint: {error}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path} is not a valid .npz checkpoint: {error}") from None
    metadata = {}
    if METADATA_KEY in arrays:
        try:
            metadata = json.loads(str(arrays.pop(METADATA_KEY)))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: its metadata is not valid JSON ({error})") from None
    return arrays, metadata


# --- an optimizer's state beside the model's ------------------------------------------------------

def optimizer_arrays(state_dict: dict, prefix: str = "optimizer.") -> tuple:
    """Flatten ``optimizer.state_dict()`` for `save`: returns (arrays, param_groups).

    Each buffer becomes the array ``<prefix>state.<index>.<name>`` (the step count a 0-d
    array); the parameter groups (options and parameter numbers, plain JSON) go into the
    metadata. `optimizer_state` reverses it. Example, the model and its optimizer in one file:

        arrays, groups = optimizer_arrays(optimizer.state_dict())
        save({**model.state_dict(), **arrays}, path, metadata={"optimizer": groups})
    """
    arrays = {}
    for index, entry in state_dict["state"].items():
        for name, value in entry.items():
            arrays[f"{prefix}state.{index}.{name}"] = np.asarray(value)
    groups = [{key: list(value) if isinstance(value, tuple) else value
               for key, value in group.items()} for group in state_dict["param_groups"]]
    return arrays, groups


def optimizer_state(arrays: dict, param_groups: list, prefix: str = "optimizer.") -> dict:
    """The optimizer state dict that `optimizer_arrays` flattened, for ``load_state_dict``;
    keys of ``arrays`` without ``<prefix>state.`` (the model's) are ignored."""
    state: dict = {}
    start = prefix + "state."
    for key, value in arrays.items():
        if not key.startswith(start):
            continue
        index, _, name = key[len(start):].partition(".")
        if not index.isdigit() or not name:
            raise ValueError(f"optimizer state key {key!r} is not <prefix>state.<index>.<name>")
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": param_groups}
