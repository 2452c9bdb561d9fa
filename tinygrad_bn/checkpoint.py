"""Checkpoints: a state_dict saved as one ``.npz`` file — plain arrays, never pickle.

Saving goes through `files.atomic_write`, so an interrupted save never leaves a half-written
checkpoint. Keys and array layouts are PyTorch's, so the arrays load into the equivalent
``torch.nn`` model too.

Loading treats the file as untrusted input and is bounded: `open_checkpoint` reads the zip
directory and the metadata only; `Checkpoint.read` first reads each member's ``.npy`` header
(its declared shape and dtype), checks them against what the caller expects and the total
against ``max_bytes``, and only then inflates the data — so a small file cannot make the
loader allocate gigabytes. A member holding pickled objects is refused, never unpickled.
Every malformed file raises `CheckpointError`, a ``ValueError`` whose one-line message names
the file.

Read next: placement.py (`load_model`, which checks a checkpoint against its architecture).
"""
from __future__ import annotations

import json
import math
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy

from .files import atomic_write
from .tensor import Tensor

__all__ = ["save", "load", "load_with_metadata", "open_checkpoint", "Checkpoint",
           "CheckpointError", "ArraySpec", "atomic_write", "MAX_BYTES", "optimizer_arrays",
           "optimizer_state"]

# Metadata (a dict) travels as a JSON text in a 0-d unicode array: readable without pickle.
METADATA_KEY = "__metadata__"
MAX_BYTES = 1 << 28              # default bound on the total size of the arrays read (256 MiB)
MAX_MEMBERS = 4096               # a state_dict of a few hundred layers fits easily
MAX_METADATA_CHARS = 1 << 16     # the JSON text
MAX_JSON_DEPTH = 8               # nesting of lists and objects in the metadata


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class ArraySpec:
    """What a member declares in its ``.npy`` header: shape and dtype (and so its size)."""

    shape: tuple
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # Python ints: no overflow


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


def load(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> dict:
    """Read an ``.npz`` checkpoint into a dict of numpy arrays (no pickle is ever loaded).

    At most ``max_bytes`` of array data are read; a larger (or lying) file is refused.
    """
    return load_with_metadata(path, max_bytes=max_bytes)[0]


def load_with_metadata(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> tuple:
    """Read an ``.npz`` checkpoint: returns (dict of arrays, metadata dict or {})."""
    with open_checkpoint(path, max_bytes=max_bytes) as checkpoint:
        return checkpoint.read(), checkpoint.metadata


def open_checkpoint(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> Checkpoint:
    """Open ``path`` and read its directory and metadata, but no array data yet.

    Use it as a context manager: ``with open_checkpoint(p) as c: arrays = c.read(expected)``.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        CheckpointError: it is not a readable checkpoint (the message says why).
    """
    return Checkpoint(Path(path), max_bytes)


class Checkpoint:
    """An opened ``.npz`` checkpoint: ``keys``, ``metadata``, and `read` for the arrays.

    The file is opened once and read through that one handle.
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max_bytes
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise FileNotFoundError(f"checkpoint {path} does not exist") from None
        except OSError as error:
            raise CheckpointError(f"{path}: cannot read it ({error.strerror})") from None
        if not stat.S_ISREG(mode):
            raise CheckpointError(f"{path} is not a regular file")
        self._file = open(path, "rb")
        try:
            self._archive = self._open_zip()
            self._members = self._check_directory()
            self.metadata = self._read_metadata()
        except BaseException:
            self.close()
            raise

    # --- context manager ---

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        archive = getattr(self, "_archive", None)
        if archive is not None:
            archive.close()
        self._file.close()

    # --- the directory ---

    def _fail(self, reason: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {reason}")

    def _open_zip(self) -> zipfile.ZipFile:
        start = self._file.read(6)
        self._file.seek(0)
        if start.startswith(b"\x93NUMPY"):
            raise self._fail("is a single .npy array, not an .npz checkpoint")
        if start[:1] == b"\x80":
            raise self._fail("is a Python pickle; refusing to load it (checkpoints hold plain "
                             "arrays only)")
        if not start.startswith(b"PK"):
            raise self._fail("is not an .npz checkpoint (not a zip archive)")
        try:
            return zipfile.ZipFile(self._file)
        except Exception as error:  # hostile bytes can fail in many ways; all mean "damaged"
            raise self._fail(f"is not a valid .npz checkpoint (truncated or damaged: "
                             f"{_short(error)})") from None

    def _check_directory(self) -> dict:
        infos = self._archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise self._fail(f"has {len(infos)} members, more than a checkpoint holds")
        members: dict = {}
        for info in infos:
            name = info.filename
            if not name.endswith(".npy") or info.is_dir():
                raise self._fail(f"member {_shown(name)} is not an array (.npy)")
            if info.flag_bits & 0x1:
                raise self._fail(f"member {_shown(name)} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self._fail(f"member {_shown(name)} uses an unsupported compression "
                                 f"(method {info.compress_type})")
            key = name[:-len(".npy")]
            if key in members:
                raise self._fail(f"member {_shown(name)} appears twice")
            members[key] = info
        return members

    @property
    def keys(self) -> list:
        """The array names in the file (the metadata excluded), in file order."""
        return [key for key in self._members if key != METADATA_KEY]

    # --- reading members ---

    def _header(self, key: str) -> tuple:
        """(open member positioned at its data, ArraySpec, fortran_order): inflates only the
        few bytes of the .npy header."""
        info = self._members[key]
        try:
            member = self._archive.open(info)
            version = npy.read_magic(member)
            reader = npy.read_array_header_1_0 if version == (1, 0) else \
                npy.read_array_header_2_0
            shape, fortran, dtype = reader(member)
            header_size = member.tell()
        except Exception as error:  # untrusted bytes: any failure means "not an array"
            raise self._fail(f"member {_shown(info.filename)} is not a valid .npy array "
                             f"({_short(error)})") from None
        if dtype.hasobject:
            member.close()
            raise self._fail(f"member {_shown(info.filename)} contains pickled Python objects; "
                             "refusing to load it (checkpoints hold plain arrays only)")
        spec = ArraySpec(tuple(shape), dtype)
        if info.file_size != header_size + spec.nbytes:
            member.close()
            raise self._fail(f"member {_shown(info.filename)} is damaged (its size does not "
                             "match its header)")
        return member, spec, fortran

    def _inflate(self, key: str, member: Any, spec: ArraySpec, fortran: bool) -> np.ndarray:
        buffer = bytearray(spec.nbytes)
        view = memoryview(buffer)
        filled = 0
        try:
            while filled < spec.nbytes:
                count = member.readinto(view[filled:])
                if not count:
                    break
                filled += count
            extra = member.read(1)  # reaching the end makes zipfile check the CRC
        except Exception as error:
            raise self._fail(f"member {key!r} is damaged ({_short(error)})") from None
        finally:
            member.close()
        if filled != spec.nbytes or extra:
            raise self._fail(f"member {key!r} is damaged (its size does not match its header)")
        array = np.frombuffer(buffer, dtype=spec.dtype)
        return array.reshape(spec.shape, order="F" if fortran else "C")

    def read(self, expected: dict | None = None) -> dict:
        """Inflate and return the arrays, after checking every header first.

        ``expected`` maps each key to the `ArraySpec` it must have (same shape, same kind of
        dtype: float, signed or unsigned integer, bool). Any key missing from the file, any
        member not expected and any mismatch is refused before a byte of data is inflated.
        Without ``expected`` every numeric member is read. Either way the arrays' total size
        must not exceed ``max_bytes``.
        """
        if expected is not None:
            unexpected = [key for key in self.keys if key not in expected]
            if unexpected:
                raise self._fail(f"unexpected array {_shown(unexpected[0])} (this model "
                                 "has no such parameter or buffer)")
            missing = [key for key in expected if key not in self._members]
            if missing:
                raise self._fail(f"the array {missing[0]!r} is missing")
        opened, total = [], 0
        try:
            for key in self.keys:
                member, spec, fortran = self._header(key)
                opened.append((key, member, spec, fortran))
                if spec.dtype.kind not in "biuf":
                    raise self._fail(f"array {_shown(key)} has dtype {spec.dtype}; checkpoints "
                                     "hold numbers only")
                want = None if expected is None else expected[key]
                if want is not None and (spec.shape != tuple(want.shape)
                                         or spec.dtype.kind != np.dtype(want.dtype).kind):
                    raise self._fail(f"array {key!r} is {spec.dtype} {spec.shape}, but the "
                                     f"architecture needs {np.dtype(want.dtype)} "
                                     f"{tuple(want.shape)}")
                total += spec.nbytes
                if total > self.max_bytes:
                    raise self._fail(f"its arrays declare more than {self.max_bytes} bytes; "
                                     "refusing to inflate them")
            return {key: self._inflate(key, member, spec, fortran)
                    for key, member, spec, fortran in opened}
        finally:
            for _, member, _, _ in opened:
                member.close()

    def _read_metadata(self) -> dict:
        if METADATA_KEY not in self._members:
            return {}
        member, spec, fortran = self._header(METADATA_KEY)
        if spec.dtype.kind != "U" or spec.shape != ():
            member.close()
            raise self._fail("its metadata is not a JSON text")
        if spec.dtype.itemsize // 4 > MAX_METADATA_CHARS:
            member.close()
            raise self._fail(f"its metadata is longer than {MAX_METADATA_CHARS} characters")
        try:
            text = str(self._inflate(METADATA_KEY, member, spec, fortran)[()])
        except UnicodeError:
            raise self._fail("its metadata is not valid text") from None
        return parse_metadata(text, self.path)


def parse_metadata(text: str, path: Path | str) -> dict:
    """The metadata JSON object, refused (CheckpointError) when deeper than `MAX_JSON_DEPTH`,
    longer than `MAX_METADATA_CHARS`, not valid JSON, or not an object."""
    if len(text) > MAX_METADATA_CHARS:
        raise CheckpointError(f"{path}: its metadata is longer than {MAX_METADATA_CHARS} "
                              "characters")
    # Measured before json.loads, whose recursion a deeply nested text would exhaust.
    depth, deepest, in_string, escaped = 0, 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                raise CheckpointError(f"{path}: its metadata is nested more than "
                                      f"{MAX_JSON_DEPTH} levels deep")
        elif char in "]}":
            depth -= 1
    try:
        metadata = json.loads(text)
    except ValueError as error:
        raise CheckpointError(f"{path}: its metadata is not valid JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: its metadata is not a JSON object")
    return metadata


def _short(error: BaseException) -> str:
    """An exception as a short single line (hostile input can make messages long)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _shown(name: str) -> str:
    """A name from the file, quoted with control characters escaped and the length bounded."""
    text = repr(name[:80] + ("..." if len(name) > 80 else ""))
    return text


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
