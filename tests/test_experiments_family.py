"""The BatchNorm-family experiments (placement-order, batch-size, bn-lite, convnet): their
building blocks do what they claim, and their quick runs measure what they say. The generic
checks (table structure, JSON, plots, CLI) run for them in tests/test_experiments.py."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_bn import Tensor, nn
from tinygrad_bn.datasets import DatasetUnavailable
from tinygrad_bn.experiments import run_experiment, spirals_task, train_network
from tinygrad_bn.experiments.family import (NORMS, PartialBatchNorm, block_statistics, convnet,
                                            mlp, steps_cell, train_mode_accuracy)

rng = np.random.default_rng(0)


def test_partial_batchnorm_removes_exactly_one_part():
    x = Tensor(rng.normal(3.0, 5.0, (50, 4)))
    centred = PartialBatchNorm(4, center=True, scale=False).double()(x).data
    np.testing.assert_allclose(centred.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(centred.std(axis=0), x.data.std(axis=0), rtol=1e-12)
    scaled = PartialBatchNorm(4, center=False, scale=True).double()(x).data
    np.testing.assert_allclose(scaled.std(axis=0), 1, rtol=1e-4)
    np.testing.assert_allclose(scaled.mean(axis=0), x.data.mean(axis=0) / x.data.std(axis=0),
                               rtol=1e-4)
    with pytest.raises(ValueError, match="center or scale"):
        PartialBatchNorm(4, center=False, scale=False)


def test_partial_batchnorm_evaluates_with_running_statistics():
    layer = PartialBatchNorm(3, center=True, scale=True).double()
    for _ in range(200):
        layer(Tensor(rng.normal(2.0, 3.0, (64, 3))))
    layer.eval()
    out = layer(Tensor(rng.normal(2.0, 3.0, (5000, 3)))).data
    assert abs(out.mean()) < 0.1 and abs(out.std() - 1) < 0.1


def test_mlp_puts_the_norm_before_or_after_relu_with_the_same_linear_weights():
    before = mlp(NORMS["BN"], order="before")(4, 3, 7)
    after = mlp(NORMS["BN"], order="after")(4, 3, 7)
    plain = mlp(None)(4, 3, 7)
    kinds = [type(m).__name__ for m in before][:3]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU"]
    assert [type(m).__name__ for m in after][:3] == ["Linear", "ReLU", "BatchNorm1d"]
    assert before[0].bias is None and after[0].bias is not None
    for a, b, c in zip(*[[m for m in net if isinstance(m, nn.Linear)]
                         for net in (before, after, plain)]):
        np.testing.assert_array_equal(a.weight.data, b.weight.data)
        np.testing.assert_array_equal(a.weight.data, c.weight.data)


def test_train_mode_accuracy_differs_from_eval_only_with_batch_statistics():
    task = spirals_task(points_per_class=40)
    for name, norm in NORMS.items():
        run = train_network(task, None, lr=0.1, steps=30, seed=1, batch_size=8, eval_every=30,
                            network=mlp(norm, taps=True))
        buffers = [b.data.copy() for b in run.model.buffers()]
        train_mode = train_mode_accuracy(run.model, task.X_test, task.y_test, 4)
        for before, after in zip(buffers, run.model.buffers()):
            np.testing.assert_array_equal(before, after.data)  # running statistics untouched
        if name != "BN":
            assert train_mode == run.final["test_accuracy"], name
        stats = block_statistics(run.model, task.X_test)
        assert set(stats) == {"abs_mean", "std", "dead"} and 0 <= stats["dead"] <= 1


def test_convnet_builder_shares_kernels_and_refuses_odd_images():
    with_bn, without = convnet(True)(64, 10, 3), convnet(False)(64, 10, 3)
    conv_a = [m for m in with_bn if isinstance(m, nn.Conv2d)]
    conv_b = [m for m in without if isinstance(m, nn.Conv2d)]
    np.testing.assert_array_equal(conv_a[0].weight.data, conv_b[0].weight.data)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in with_bn) == 2
    assert with_bn(Tensor(rng.random((5, 64)).astype(np.float32))).shape == (5, 10)
    with pytest.raises(ValueError, match="square images"):
        convnet(True)(50, 10, 0)


def test_steps_cell_counts_runs_that_never_got_there():
    assert steps_cell([10.0, 20.0]) == "15 ± 7"
    assert steps_cell([10.0, math.nan]) == "10 (1/2 never)"
    assert steps_cell([math.nan]) == "never"


# --- quick runs -------------------------------------------------------------------------------

def test_batch_size_quick_gap_is_zero_without_batch_statistics():
    result = run_experiment("batch-size", quick=True, seeds=1)
    norms = result.data["norms"]
    for name in ("none", "LN", "GN"):
        test = np.asarray(norms[name]["test"], dtype=float)
        np.testing.assert_array_equal(np.asarray(norms[name]["train_mode"], dtype=float), test)
    assert result.data["batch_sizes"] == [4, 32]
    assert [t.columns[1:] for t in result.tables] == [["none", "BN", "LN", "GN"]] * 2


def test_bn_lite_quick_has_every_variant_at_both_learning_rates():
    result = run_experiment("bn-lite", quick=True, seeds=1)
    assert [row[0] for row in result.tables[0].rows] == [
        "full BN", "mean only", "variance only", "fixed γ=1, β=0", "no BN"]
    assert len(result.findings) == 2


def test_placement_order_quick_compares_three_orders_on_two_tasks():
    result = run_experiment("placement-order", quick=True, seeds=1)
    assert [t.title.split(":")[0] for t in result.tables][0] == "placement"
    assert len(result.tables) == 2
    for table in result.tables:
        assert [row[0] for row in table.rows] == ["BN before ReLU", "BN after ReLU", "no BN"]
    # BN right before the output Linear centres what it receives; without BN the mean drifts.
    block = result.data["placement"]
    assert block["BN after ReLU"]["block"][0]["abs_mean"] < block["no BN"]["block"][0]["abs_mean"]


def test_convnet_quick_trains_both_variants():
    try:
        result = run_experiment("convnet", quick=True, seeds=1)
    except DatasetUnavailable:
        pytest.skip("scikit-learn's digits are not installed")
    rows = result.tables[0].rows
    assert [(row[0], row[1]) for row in rows] == [("0.05", "BN2d"), ("0.05", "no BN"),
                                                  ("0.5", "BN2d"), ("0.5", "no BN")]
    with pytest.raises(ValueError, match="runs on digits, fashion-mnist"):
        run_experiment("convnet", quick=True, dataset="spirals")
