"""The classification tasks the experiments train on: the data sets of tinygrad_bn.datasets,
split (where they come unsplit) and standardised (where it helps) once.

* ``placement`` — the course notes' data (``resources/placement.csv``: cgpa, iq → placed), two
  classes with noisy labels: an easy boundary, but no network gets every student right.
* ``spirals`` — three interleaved spiral arms in the plane (`tinygrad_bn.datasets.spirals`).
  The boundary winds round the origin one and a half times, so a shallow network cannot draw
  it: depth matters, and so does how well a deep network trains.
* ``digits`` — scikit-learn's 1 797 real 8×8 handwritten digits, a stratified quarter held out.
* ``fashion-mnist`` and ``mnist`` — 28×28 images with their official 60 000/10 000 split.

Images keep their pixels in [0, 1], as in the BatchNorm paper: they already share one scale,
and standardising each pixel would blow up the border pixels that are almost always 0.

A task is fixed (the same split on every run); only the training seed changes between runs,
so differences between seeds come from initialisation, shuffling and dropout alone.

Read next: training.py, which builds and trains the networks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import datasets
from ..data import Standardizer, train_test_split

__all__ = ["Task", "spirals_task", "placement_task", "digits_task", "fashion_mnist_task",
           "mnist_task", "TASKS", "load_task"]


@dataclass(frozen=True)
class Task:
    """A classification problem, already split (and standardised, except images).

    ``X_*`` are float32 (n, d): standardised with the training split's statistics, or for
    images their pixels in [0, 1];
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


def _split(name: str, X: np.ndarray, y: np.ndarray, test_size: float, description: str) -> Task:
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size,
                                                        np.random.default_rng(0))
    scaler = Standardizer.fit(X_train)
    return Task(name, scaler.transform(X_train), y_train.astype(np.int64),
                scaler.transform(X_test), y_test.astype(np.int64),
                int(y.max()) + 1, description)


def spirals_task(points_per_class: int = 400) -> Task:
    """Three spiral arms (`tinygrad_bn.datasets.spirals`, seed 0), a stratified third held out
    for testing."""
    data = datasets.spirals(points_per_class)
    return _split("spirals", data.X, data.y, 1 / 3, data.description)


def placement_task() -> Task:
    """The bundled placement CSV (600 students), 20 % held out as ``tinygrad-bn train`` does.

    Two classes, so the networks end in two logits and use cross-entropy, like the spirals.
    """
    data = datasets.placement()
    return _split("placement", data.X, data.y, 0.2, data.description)


def digits_task() -> Task:
    """scikit-learn's digits (needs the "data" extra), a stratified quarter held out for
    testing (1 347 training and 450 test images); pixels in [0, 1], not standardised."""
    data = datasets.digits()
    X_train, X_test, y_train, y_test = train_test_split(data.X, data.y, 0.25,
                                                        np.random.default_rng(0))
    return Task("digits", X_train, y_train, X_test, y_test, 10,
                f"{data.description}; {len(X_train)} for training, {len(X_test)} for testing")


def _official_split(name: str, title: str, train: datasets.LabeledData,
                    test: datasets.LabeledData) -> Task:
    return Task(name, train.X, train.y, test.X, test.y, 10,
                f"{title}: {len(train.X)} training and {len(test.X)} test images, 28×28, "
                "pixels in [0, 1]")


def fashion_mnist_task() -> Task:
    """Fashion-MNIST's official split (needs Debian's dataset-fashion-mnist package)."""
    return _official_split("fashion-mnist", "Fashion-MNIST", datasets.fashion_mnist("train"),
                           datasets.fashion_mnist("test"))


def mnist_task() -> Task:
    """MNIST's official split, from files found through $TINYGRAD_BN_DATA (see
    `tinygrad_bn.datasets.mnist`)."""
    return _official_split("mnist", "MNIST", datasets.mnist("train"), datasets.mnist("test"))


# Name → task builder, for the experiments' --dataset option.
TASKS = {"spirals": spirals_task, "placement": placement_task, "digits": digits_task,
         "fashion-mnist": fashion_mnist_task, "mnist": mnist_task}


def load_task(name: str) -> Task:
    """The task called ``name`` (a key of `TASKS`).

    Raises `tinygrad_bn.datasets.DatasetUnavailable` when its data is not installed.
    """
    if name not in TASKS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]()
