"""Checkpoints: a state_dict saved as one ``.npz`` file — plain arrays, never pickle.

The file is written to a temporary name beside the target and renamed into place, so an
interrupted save never leaves a half-written checkpoint. Loading uses
``np.load(..., allow_pickle=False)``, so a file carrying pickled Python objects is refused
instead of executed. Keys and array layouts are PyTorch's, so the arrays load into the
equivalent ``torch.nn`` model too.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "atomic_write"]


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
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def save(state_dict: dict, path: str | os.PathLike) -> None:
    """Write a dict of arrays (e.g. ``model.state_dict()``) to ``path`` as an ``.npz`` file."""
    arrays = {}
    for key, value in state_dict.items():
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"cannot save {key!r}: checkpoints hold numeric arrays only, got "
                            f"dtype {array.dtype}")
        arrays[key] = array
    atomic_write(path, lambda file: np.savez(file, **arrays))


def load(path: str | os.PathLike) -> dict:
    """Read an ``.npz`` checkpoint into a dict of numpy arrays (no pickle is ever loaded)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise ValueError(f"{path} contains pickled Python objects; refusing to load it "
                             "(checkpoints hold plain arrays only)") from None
        raise ValueError(f"{path} is not a valid .npz checkpoint: {error}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path} is not a valid .npz checkpoint: {error}") from None
