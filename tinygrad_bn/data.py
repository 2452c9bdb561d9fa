"""Data for the placement example: a documented generator, a careful CSV loader, splitting,
standardisation and mini-batches.

The course notes' question: given a student's ``cgpa`` (0–10) and ``iq`` (around 100), will the
student be ``placed`` (1) or not (0)? The bundled CSV (``resources/placement.csv``) was made by
`generate_placement` with ``rows=600, seed=0``; ``tinygrad-bn data`` makes others.
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .checkpoint import atomic_write
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

def _parse_number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = repr(text) if text.strip() else "an empty value"
        raise DataError(f"{where}: {shown} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {text.strip()!r} is not a finite number")
    return value


def load_csv(path: str | os.PathLike, features: Sequence[str] = DEFAULT_FEATURES,
             target: str | None = DEFAULT_TARGET, *, require_target: bool = True) -> Dataset:
    """Read the named feature and target columns of a CSV file with a header row.

    Header names are matched after stripping whitespace (``"  placed"`` is ``placed``). The
    target must hold 0/1 labels with both classes present. With ``require_target=False`` a
    missing target column is allowed (for prediction) and ``y`` is None.

    Raises DataError naming the file, and the line and column where there is one.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = list(csv.reader(file))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file (cannot decode it as UTF-8)") from None
    # Keep the file's line numbers for messages; skip blank lines.
    rows = [(number, row) for number, row in enumerate(rows, start=1)
            if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{path}: the file is empty")
    header = [name.strip() for name in rows[0][1]]
    wanted = list(features)
    if not wanted:
        raise DataError(f"{path}: no feature columns were asked for")
    has_target = target is not None and target in header
    if target is not None and not has_target and require_target:
        wanted.append(target)
    missing = [name for name in wanted if name not in header]
    if missing:
        raise DataError(f"{path}: no column {', '.join(repr(m) for m in missing)} "
                        f"(the header has: {', '.join(header)})")
    columns = [header.index(name) for name in features]
    target_column = header.index(target) if has_target else None
    data = rows[1:]
    if not data:
        raise DataError(f"{path}: the header has no data rows below it")

    X = np.empty((len(data), len(columns)), dtype=np.float32)
    y = np.empty(len(data), dtype=np.float32) if has_target else None
    for i, (line, row) in enumerate(data):
        if len(row) != len(header):
            raise DataError(f"{path}, line {line}: expected {len(header)} fields, got {len(row)}")
        for j, (name, column) in enumerate(zip(features, columns)):
            X[i, j] = _parse_number(row[column], f"{path}, line {line}, column {name!r}")
        if has_target:
            label = _parse_number(row[target_column], f"{path}, line {line}, column {target!r}")
            if label not in (0.0, 1.0):
                raise DataError(f"{path}, line {line}, column {target!r}: the target must be "
                                f"0 or 1, got {row[target_column].strip()!r}")
            y[i] = label
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
