"""TensorDataset, DataLoader, Tensor.argmax and accuracy."""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_bn import Tensor, manual_seed
from tinygrad_bn.loader import DataLoader, TensorDataset
from tinygrad_bn.metrics import accuracy, predicted_classes


def rows(n: int = 10) -> TensorDataset:
    return TensorDataset(np.arange(2 * n, dtype=np.float32).reshape(n, 2), np.arange(n))


def test_batches_cover_the_data_once_in_order_without_shuffle():
    loader = DataLoader(rows(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert np.concatenate([y.data for _, y in batches]).tolist() == list(range(10))
    x, y = batches[0]
    assert isinstance(x, Tensor) and x.shape == (4, 2) and x.dtype == np.float32
    assert not x.requires_grad and y.dtype == np.int64
    np.testing.assert_array_equal(x.data[:, 0] / 2, y.data)   # rows stay paired


def test_drop_last_skips_only_a_short_last_batch():
    assert [len(y) for _, y in DataLoader(rows(10), 4, drop_last=True)] == [4, 4]
    assert len(DataLoader(rows(10), 4, drop_last=True)) == 2
    assert len(list(DataLoader(rows(8), 4, drop_last=True))) == 2


def order(loader: DataLoader) -> list:
    return [int(v) for _, y in loader for v in y.data]


def test_shuffle_is_a_new_permutation_each_epoch_and_repeats_with_the_seed():
    loader = DataLoader(rows(20), 8, shuffle=True, seed=3)
    first, second = order(loader), order(loader)
    assert sorted(first) == sorted(second) == list(range(20))
    assert first != second
    again = DataLoader(rows(20), 8, shuffle=True, seed=3)
    assert [order(again), order(again)] == [first, second]
    assert order(DataLoader(rows(20), 8, shuffle=True, seed=4)) != first


def test_a_numpy_generator_is_drawn_from_and_none_follows_manual_seed():
    expected = np.random.default_rng(5).permutation(12).tolist()
    assert order(DataLoader(rows(12), 5, shuffle=True, seed=np.random.default_rng(5))) == expected
    manual_seed(9)
    first = order(DataLoader(rows(12), 5, shuffle=True))
    manual_seed(9)
    assert order(DataLoader(rows(12), 5, shuffle=True)) == first


def test_any_dataset_with_len_and_getitem_is_collated():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float64), i % 2

    (x, y), *_ = DataLoader(Squares(), batch_size=3)
    assert x.data.tolist() == [[0, 0], [1, 1], [2, 4]] and y.data.tolist() == [0, 1, 0]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"same number of rows.*\(3, 2\), \(4,\)"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        DataLoader(rows(), 0)
    with pytest.raises(ValueError, match="seed"):
        DataLoader(rows(), 2, seed=-1)
    with pytest.raises(TypeError, match="__len__ and __getitem__"):
        DataLoader(42, 2)


def test_argmax_matches_numpy_and_is_outside_the_graph():
    data = np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 2.0]])
    x = Tensor(data, requires_grad=True)
    assert x.argmax(axis=1).tolist() == [1, 0]          # a tie goes to the first
    assert x.argmax(axis=0).tolist() == [1, 0, 0]
    assert x.argmax().item() == 3 and x.argmax().dtype == np.int64
    assert x.argmax(axis=-1, keepdims=True).shape == (2, 1)
    assert x.argmax(keepdims=True).shape == (1, 1)
    assert not x.argmax(axis=1).requires_grad
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        x.argmax(axis=2)


def test_accuracy_of_class_scores_and_binary_logits():
    scores = Tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(scores, [1, 0, 0]) == pytest.approx(2 / 3)
    logits = np.array([[2.0], [-1.0], [0.0]])
    assert accuracy(logits, Tensor([1.0, 0.0, 0.0])) == pytest.approx(2 / 3)
    assert predicted_classes(np.array([-0.5, 0.5])).tolist() == [0, 1]
    with pytest.raises(ValueError, match="3 predictions but target has shape"):
        accuracy(np.zeros((3, 2)), [0, 1])
