"""The two classification tasks the experiments train on, split and standardised once.

* ``placement`` — the course notes' data (``resources/placement.csv``: cgpa, iq → placed), two
  classes with noisy labels: an easy boundary, but no network gets every student right.
* ``spirals`` — three interleaved spiral arms in the plane, generated here (`make_spirals`).
  The boundary winds round the origin one and a half times, so a shallow network cannot draw
  it: depth matters, and so does how well a deep network trains.

A task is fixed (the same split on every run); only the training seed changes between runs,
so differences between seeds come from initialisation, shuffling and dropout alone.

Read next: training.py, which builds and trains the networks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data import Standardizer, bundled_placement_path, load_csv, train_test_split

__all__ = ["Task", "make_spirals", "spirals_task", "placement_task"]


@dataclass(frozen=True)
class Task:
    """A classification problem, already split and standardised.

    ``X_*`` are float32 (n, d), standardised with the training split's statistics;
    ``y_*`` are int64 class indices (n,).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: int
    description: str

    @property
    def features(self) -> int:
        return self.X_train.shape[1]

    def subset(self, train_rows: int, seed: int = 0) -> Task:
        """The same task with only ``train_rows`` training examples (the test set is kept)."""
        if not 2 <= train_rows <= len(self.X_train):
            raise ValueError(f"train_rows must be in [2, {len(self.X_train)}], got {train_rows}")
        pick = np.random.default_rng(seed).permutation(len(self.X_train))[:train_rows]
        return Task(self.name, self.X_train[pick], self.y_train[pick], self.X_test, self.y_test,
                    self.classes, f"{self.description}, {train_rows} of its training rows")


def make_spirals(points_per_class: int = 400, classes: int = 3, turns: float = 1.5,
                 noise: float = 0.02, seed: int = 0) -> tuple:
    """Points on ``classes`` interleaved spiral arms: returns X (n, 2) float32, y (n,) int64.

    For arm k and t ~ U(0, 1): radius r = 0.2 + 0.8·t, angle θ = 2π·(turns·t + k/classes), and
    the point is r·(cos θ, sin θ) + noise·N(0, I). Neighbouring arms are 0.8/(turns·classes)
    apart along a radius (0.18 with the defaults), a few noise widths, so the classes barely
    overlap: a good network can reach close to 100 % accuracy, a poor one is stuck far below.
    """
    if points_per_class < 1 or classes < 2:
        raise ValueError(f"need points_per_class >= 1 and classes >= 2, got {points_per_class} "
                         f"and {classes}")
    rng = np.random.default_rng(seed)
    X, y = [], []
    for k in range(classes):
        t = rng.uniform(0.0, 1.0, points_per_class)
        radius = 0.2 + 0.8 * t
        angle = 2 * math.pi * (turns * t + k / classes)
        arm = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        X.append(arm + noise * rng.normal(size=arm.shape))
        y.append(np.full(points_per_class, k))
    return np.concatenate(X).astype(np.float32), np.concatenate(y).astype(np.int64)


def _split(name: str, X: np.ndarray, y: np.ndarray, test_size: float, description: str) -> Task:
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size,
                                                        np.random.default_rng(0))
    scaler = Standardizer.fit(X_train)
    return Task(name, scaler.transform(X_train), y_train.astype(np.int64),
                scaler.transform(X_test), y_test.astype(np.int64),
                int(y.max()) + 1, description)


def spirals_task(points_per_class: int = 400) -> Task:
    """Three spiral arms (`make_spirals`, seed 0), a stratified third held out for testing."""
    X, y = make_spirals(points_per_class)
    description = f"spirals: 3 arms × {points_per_class} points, 1.5 turns, noise 0.02"
    return _split("spirals", X, y, 1 / 3, description)


def placement_task() -> Task:
    """The bundled placement CSV (600 students), 20 % held out as ``tinygrad-bn train`` does.

    Two classes, so the networks end in two logits and use cross-entropy, like the spirals.
    """
    dataset = load_csv(bundled_placement_path())
    return _split("placement", dataset.X, dataset.y, 0.2,
                  "placement: cgpa, iq → placed (the bundled 600 rows)")
