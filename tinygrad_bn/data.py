"""Data for the placement example: a documented generator, a careful CSV loader, splitting,
standardisation and mini-batches.

The course notes' question: given a student's ``cgpa`` (0–10) and ``iq`` (around 100), will the
student be ``placed`` (1) or not (0)? The bundled CSV (``resources/placement.csv``) was made by
`generate_placement` with ``rows=600, seed=0``; ``tinygrad-bn data`` makes others.
"""
from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import warnings
from array import array
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator, Sequence, TextIO

import numpy as np

from .files import atomic_write
from .numbers import NumberError, parse_number
from .loader import DataLoader, TensorDataset

__all__ = [
    "DataError", "Dataset", "Standardizer", "generate_placement", "to_csv_text", "write_csv",
    "load_csv", "bundled_placement_path", "train_test_split", "batches", "dropped_rows",
]

DEFAULT_FEATURES = ("cgpa", "iq")
DEFAULT_TARGET = "placed"


class DataError(ValueError):
    """A data file that cannot be used; the message names the file, line and column."""


@dataclass
class Dataset:
    """Features X (n, d) as float32, targets y (n,) as float32 0/1 (or None), and names."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: tuple
    target_name: str | None
    source: str = ""

    def __len__(self) -> int:
        return len(self.X)


# --- the generating process ---------------------------------------------------------------------

def generate_placement(rows: int, seed: int = 0) -> Dataset:
    """Draw ``rows`` students from a seeded, documented process (see docs/cli.md).

    1. A hidden "ability" a ~ N(0, 1) drives both measurements, so they are correlated:
       cgpa = 7 + 0.9·(0.6a + 0.8·n₁), clipped to [4, 10] and rounded to 2 decimals;
       iq = 100 + 15·(0.5a + 0.87·n₂), clipped to [60, 150] and rounded; n₁, n₂ ~ N(0, 1).
    2. With standardised c = (cgpa − 7)/0.9 and q = (iq − 100)/15, a recruiter's score
       s = 1.8c + 1.1q + 0.9cq − 0.6c² + 0.4 rewards both, rewards them together more (cq),
       and saturates for very high grades (−c²): the boundary s = 0 is curved, so no straight
       line separates the classes.
    3. placed ~ Bernoulli(σ(2s)): the outcome is noisy, as real placements are.
    """
    if rows < 2:
        raise ValueError(f"rows must be at least 2, got {rows}")
    rng = np.random.default_rng(seed)
    ability = rng.normal(size=rows)
    cgpa = np.clip(7.0 + 0.9 * (0.6 * ability + 0.8 * rng.normal(size=rows)), 4.0, 10.0)
    iq = np.clip(100 + 15 * (0.5 * ability + math.sqrt(0.75) * rng.normal(size=rows)), 60, 150)
    cgpa, iq = cgpa.round(2), iq.round(0)
    c, q = (cgpa - 7.0) / 0.9, (iq - 100.0) / 15.0
    score = 1.8 * c + 1.1 * q + 0.9 * c * q - 0.6 * c ** 2 + 0.4
    probability = 1.0 / (1.0 + np.exp(-2.0 * score))
    placed = (rng.random(rows) < probability).astype(np.float32)
    X = np.stack([cgpa, iq], axis=1).astype(np.float32)
    return Dataset(X, placed, DEFAULT_FEATURES, DEFAULT_TARGET, source=f"generated(seed={seed})")


def to_csv_text(dataset: Dataset) -> str:
    """The dataset as CSV text: a header, then one row per example."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(dataset.feature_names) + [dataset.target_name])
    for features, target in zip(dataset.X, dataset.y):
        writer.writerow([f"{v:g}" for v in features] + [int(target)])
    return text.getvalue()


def write_csv(dataset: Dataset, path: str | os.PathLike) -> None:
    """Write a dataset as CSV (see `to_csv_text`), atomically."""
    text = to_csv_text(dataset)
    atomic_write(path, lambda file: file.write(text.encode()))


def bundled_placement_path() -> Path:
    """The placement CSV shipped with the package."""
    return Path(str(resources.files("tinygrad_bn") / "resources" / "placement.csv"))


# --- loading user files -------------------------------------------------------------------------

# The fast path reads blocks of about this many characters with numpy's C parser.
BLOCK_CHARS = 1 << 20
# A block holding anything else (quotes, letters, nan, 7_0, non-ASCII digits) takes the
# checked path, which accepts only what `numbers.parse_number` accepts.
_PLAIN_BLOCK = re.compile(r"[0-9eE+\-., \t\r\n]*", re.ASCII)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _read_header(file: TextIO, path: Path) -> tuple:
    """The first non-blank record, its names stripped, and its line number."""
    for number, line in enumerate(iter(file.readline, ""), start=1):
        row = next(csv.reader([line]), [])
        if any(cell.strip() for cell in row):
            return [name.strip() for name in row], number
    raise DataError(f"{path}: the file is empty")


@dataclass
class _Columns:
    """Where the wanted values are in each record of a file."""

    path: Path
    n_fields: int
    features: list          # names, for messages
    columns: list           # their positions
    target: str | None
    target_column: int | None


def _parse_block(block: str, where: _Columns) -> tuple | None:
    """(X, y) of a block of whole lines parsed by numpy's C parser, or None when anything in it
    is unusual — a character outside plain decimals, a ragged or blank-looking line, a value
    that is not finite in float32, a target that is not 0/1 — so that the checked path can
    name the exact line and column."""
    if _PLAIN_BLOCK.fullmatch(block) is None:
        return None
    if block.count("\r") != block.count("\r\n"):
        return None  # a lone \r ends a line for csv, not for the newline count of _read_rows
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": blank lines only
            table = np.loadtxt(io.StringIO(block), delimiter=",", dtype=np.float64,
                               comments=None, ndmin=2)
    except ValueError:
        return None
    if table.shape[0] == 0 and not block.strip():
        return np.empty((0, len(where.columns)), np.float32), np.empty(0, np.float32)
    if table.shape[1] != where.n_fields:
        return None
    chosen = table[:, where.columns]
    if not np.all(np.abs(chosen) <= _FLOAT32_MAX):  # also False for nan
        return None
    labels = table[:, where.target_column] if where.target_column is not None else None
    if labels is not None and not np.all((labels == 0.0) | (labels == 1.0)):
        return None
    return chosen.astype(np.float32), labels.astype(np.float32) if labels is not None else None


def _parse_records(lines: Iterable[str], first_line: int, where: _Columns) -> tuple:
    """(X, y) of CSV records read one by one, naming the line and column of any problem.

    ``first_line`` is the number of the line before ``lines``. Values go straight into compact
    arrays, so memory stays proportional to the result.
    """
    values, labels = array("f"), array("f")
    header_names = dict(zip(where.columns, where.features))
    header_names[where.target_column] = where.target
    reader = csv.reader(lines)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are skipped
        line = first_line + reader.line_num
        if len(row) != where.n_fields:
            raise DataError(f"{where.path}, line {line}: expected {where.n_fields} fields, got "
                            f"{len(row)}")
        column = None
        try:  # the message is built only when a value is refused: this loop is the hot one
            for column in where.columns:
                values.append(parse_number(row[column], np.float32))
            if where.target_column is not None:
                column = where.target_column
                label = parse_number(row[column], np.float32)
        except NumberError as error:
            name = header_names[column]
            raise DataError(f"{where.path}, line {line}, column {name!r}: {error}") from None
        if where.target_column is not None:
            if label not in (0.0, 1.0):
                raise DataError(f"{where.path}, line {line}, column {where.target!r}: the "
                                f"target must be 0 or 1, got {row[column].strip()!r}")
            labels.append(label)
    X = np.frombuffer(values, dtype=np.float32).reshape(-1, len(where.columns)).copy()
    y = np.frombuffer(labels, dtype=np.float32).copy()
    return X, y if where.target_column is not None else None


def _read_rows(file: TextIO, header_line: int, where: _Columns) -> tuple:
    """(X, y) of the rest of ``file``: blocks of about `BLOCK_CHARS` through the fast parser;
    from the first block it cannot take, record by record. Lines before that block were
    plain lines (no quotes), so counting newlines gives the exact line numbers after it."""
    parts, line = [], header_line
    while True:
        block = file.read(BLOCK_CHARS)
        if not block:
            break
        block += file.readline()  # end the block at the end of a line
        parsed = _parse_block(block, where)
        if parsed is None:
            rest = itertools.chain(io.StringIO(block, newline=""), file)
            parts.append(_parse_records(rest, line, where))
            break
        parts.append(parsed)
        line += block.count("\n")
    if not parts:
        return np.empty((0, len(where.columns)), np.float32), None
    X = np.concatenate([X for X, _ in parts])
    return X, np.concatenate([y for _, y in parts]) if where.target_column is not None else None


def load_csv(path: str | os.PathLike, features: Sequence[str] = DEFAULT_FEATURES,
             target: str | None = DEFAULT_TARGET, *, require_target: bool = True) -> Dataset:
    """Read the named feature and target columns of a CSV file with a header row.

    Header names are matched after stripping whitespace (``"  placed"`` is ``placed``); a
    header naming a column twice is refused. Every value must be a plain ASCII decimal that is
    finite in float32 (see `numbers.parse_number`). The target must hold 0/1 labels with both
    classes present. With ``require_target=False`` a missing target column is allowed (for
    prediction) and ``y`` is None.

    Large files are read in bounded memory, in blocks: numpy's C parser reads plain numeric
    blocks; from the first block holding anything else the file is read record by record,
    which accepts quoted cells and names the exact line and column of a problem.

    Raises DataError naming the file, and the line and column where there is one.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    wanted = list(features)
    if not wanted:
        raise DataError(f"{path}: no feature columns were asked for")
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            header, header_line = _read_header(file, path)
            duplicated = sorted({name for name in header if name and header.count(name) > 1})
            if duplicated:
                raise DataError(f"{path}, line {header_line}: the header names column "
                                f"{duplicated[0]!r} more than once")
            has_target = target is not None and target in header
            if target is not None and not has_target and require_target:
                wanted.append(target)
            missing = [name for name in wanted if name not in header]
            if missing:
                raise DataError(f"{path}: no column {', '.join(repr(m) for m in missing)} "
                                f"(the header has: {', '.join(header)})")
            columns = [header.index(name) for name in features]
            target_column = header.index(target) if has_target else None
            where = _Columns(path, len(header), list(features), columns, target, target_column)
            X, y = _read_rows(file, header_line, where)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file (cannot decode it as UTF-8)") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read it ({error.strerror or error})") from None
    if len(X) == 0:
        raise DataError(f"{path}: the header has no data rows below it")
    if has_target and require_target and len(np.unique(y)) < 2:
        raise DataError(f"{path}: column {target!r} holds only class {int(y[0])}; training "
                        "needs examples of both 0 and 1")
    return Dataset(X, y, tuple(features), target if has_target else None, source=str(path))


# --- preparing data for training -----------------------------------------------------------------

def train_test_split(X: np.ndarray, y: np.ndarray, test_size: float,
                     rng: np.random.Generator) -> tuple:
    """Split into (X_train, X_test, y_train, y_test), stratified: each class keeps its share.

    Each class contributes round(test_size · count) examples to the test set (at least one
    when it has two or more), chosen by the seeded ``rng``.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    test_index = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        count = int(round(test_size * len(members)))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        test_index.extend(members[:count])
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test_index] = True
    return X[~is_test], X[is_test], y[~is_test], y[is_test]


@dataclass
class Standardizer:
    """z = (x − mean) / std per feature, with statistics fitted on the training split only
    (fitting on all data would leak the test set into training)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> Standardizer:
        std = X.std(axis=0)
        std[std == 0] = 1.0  # a constant feature stays constant instead of dividing by zero
        return cls(X.mean(axis=0).astype(np.float32), std.astype(np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.std).astype(np.float32)


def batches(X: np.ndarray, y: np.ndarray, batch_size: int,
            rng: np.random.Generator) -> Iterator[tuple]:
    """Yield shuffled mini-batches (X_batch, y_batch) of numpy arrays covering the data once.

    A numpy front of `loader.DataLoader` (which the library's training loops use). A final
    batch of a single row is skipped: BatchNorm cannot compute a variance from one value per
    feature (the caller reports how many rows were skipped, see `dropped_rows`).
    """
    loader = DataLoader(TensorDataset(X, y), batch_size, shuffle=True, seed=rng,
                        drop_last=dropped_rows(len(X), batch_size) > 0)
    for X_batch, y_batch in loader:
        yield X_batch.data, y_batch.data


def dropped_rows(n: int, batch_size: int) -> int:
    """How many rows `batches` skips per epoch (1 when the last batch would hold one row)."""
    return 1 if n % batch_size == 1 else 0
