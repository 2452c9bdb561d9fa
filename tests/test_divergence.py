"""The divergence guard: `optim.check_loss` raises `DivergenceError` naming the step (and
epoch); `placement.train` always uses it, the experiments catch it to count diverged runs."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor
from tinygrad_bn.data import generate_placement
from tinygrad_bn.experiments import NetSpec, train_network
from tinygrad_bn.experiments.datasets import spirals_task
from tinygrad_bn.optim import DivergenceError, check_loss
from tinygrad_bn.placement import TrainConfig, train


def test_check_loss_passes_finite_values_through_and_names_where_it_failed():
    assert check_loss(Tensor(np.float32(0.25)), step=1) == 0.25
    assert check_loss(3.0, step=2, epoch=1) == 3.0
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(DivergenceError) as info:
            check_loss(Tensor(np.array([bad], dtype=np.float32)), step=7, epoch=3)
        error = info.value
        assert (error.step, error.epoch) == (7, 3) and not math.isfinite(error.loss)
        assert "diverged at epoch 3, step 7" in str(error) and "smaller learning rate" in str(
            error)
    assert tg.DivergenceError is DivergenceError and issubclass(DivergenceError,
                                                                FloatingPointError)


def test_placement_training_raises_instead_of_returning_a_nan_model():
    dataset = generate_placement(200, seed=1)
    with pytest.raises(DivergenceError) as info:
        train(dataset, TrainConfig(lr=1e30, epochs=5))
    assert info.value.epoch == 1
    result = train(dataset, TrainConfig(epochs=2))
    assert all(np.isfinite(p.data).all() for p in result.model.parameters())


def test_non_finite_options_are_refused_by_the_library_too():
    for name in ("lr", "momentum", "weight_decay", "test_size"):
        with pytest.raises(ValueError, match="finite"):
            TrainConfig(**{name: math.nan}).validate()


def test_experiments_count_diverged_runs_through_the_guard(monkeypatch):
    task = spirals_task(points_per_class=30)
    calls = []
    import tinygrad_bn.experiments.training as training

    def spy(loss, *, step, epoch=None):
        calls.append(step)
        return check_loss(loss, step=step, epoch=epoch)

    monkeypatch.setattr(training, "check_loss", spy)
    run = train_network(task, NetSpec(hidden=(8,)), lr=1e6, steps=100, seed=0)
    assert run.diverged and run.diverged_at == calls[-1]
