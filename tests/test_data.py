"""The placement data: generator, CSV loader (with real messy files), split, scaling, batches."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinygrad_bn.data import (DataError, Standardizer, batches, bundled_placement_path,
                              generate_placement, load_csv, train_test_split, write_csv)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_bundled_dataset_is_the_documented_generator_output(tmp_path):
    bundled = load_csv(bundled_placement_path())
    assert 300 <= len(bundled) <= 1000
    regenerated = tmp_path / "again.csv"
    write_csv(generate_placement(600, 0), regenerated)
    assert regenerated.read_text() == bundled_placement_path().read_text()


def test_generated_data_is_realistic_and_seeded():
    data = generate_placement(2000, seed=3)
    cgpa, iq = data.X[:, 0], data.X[:, 1]
    assert cgpa.min() >= 4.0 and cgpa.max() <= 10.0 and 6.5 < cgpa.mean() < 7.5
    assert 95 < iq.mean() < 105 and 10 < iq.std() < 20
    assert 0.3 < data.y.mean() < 0.7  # both classes well represented
    # placement rises with both measurements, but noisily
    assert data.y[cgpa > 8].mean() > data.y[cgpa < 6].mean() + 0.5
    assert data.y[iq > 115].mean() > data.y[iq < 85].mean() + 0.3
    again = generate_placement(2000, seed=3)
    np.testing.assert_array_equal(again.X, data.X)
    assert not np.array_equal(generate_placement(2000, seed=4).X, data.X)


def test_classes_overlap_so_no_line_separates_them():
    data = generate_placement(600, 0)
    # the best single threshold on any projection leaves errors: look at a dense grid of lines
    X = (data.X - data.X.mean(0)) / data.X.std(0)
    best = 0.0
    for angle in np.linspace(0, np.pi, 90):
        projection = X @ np.array([np.cos(angle), np.sin(angle)])
        for threshold in np.quantile(projection, np.linspace(0.02, 0.98, 49)):
            accuracy = np.mean((projection > threshold) == data.y)
            best = max(best, accuracy, 1 - accuracy)
    assert 0.7 < best < 0.97


def test_real_csv_with_other_columns_and_spaces_in_the_header():
    marks = load_csv(FIXTURES / "placement_marks.csv", ("cgpa", "marks"), "placed")
    assert marks.X.shape == (200, 2) and set(np.unique(marks.y)) == {0.0, 1.0}
    spaces = load_csv(FIXTURES / "placement_resume_spaces.csv", ("cgpa", "resume_score"),
                      "placed")
    assert spaces.X.shape == (5, 2) and spaces.target_name == "placed"


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, pattern", [
    ("", "the file is empty"),
    ("cgpa,iq,placed\n", "no data rows"),
    ("cgpa,placed\n7,1\n8,0\n", r"no column 'iq' \(the header has: cgpa, placed\)"),
    ("cgpa,iq,placed\n7,100,1\n8,abc,0\n", r"line 3, column 'iq': 'abc' is not a number"),
    ("cgpa,iq,placed\n7,100,1\n8,nan,0\n", r"line 3, column 'iq': 'nan' is not a finite"),
    ("cgpa,iq,placed\n7,,1\n8,90,0\n", r"line 2, column 'iq': an empty value"),
    ("cgpa,iq,placed\n7,100,1\n8,90,2\n", r"line 3, column 'placed': the target must be 0 or 1"),
    ("cgpa,iq,placed\n7,100,1\n8,90,1\n", "only class 1"),
    ("cgpa,iq,placed\n7,100,1\n8,90\n", "line 3: expected 3 fields, got 2"),
])
def test_bad_files_are_refused_naming_file_line_and_column(tmp_path, text, pattern):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=pattern) as info:
        load_csv(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "absent.csv")


def test_prediction_files_may_lack_the_target(tmp_path):
    data = load_csv(write(tmp_path, "iq,cgpa\n100,7\n"), require_target=False)
    assert data.y is None and data.X.tolist() == [[7.0, 100.0]]  # columns by name, not position


def test_stratified_split_keeps_class_shares_and_is_seeded():
    y = np.array([0] * 60 + [1] * 40, dtype=np.float32)
    X = np.arange(100, dtype=np.float32).reshape(-1, 1)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, 0.2, np.random.default_rng(0))
    assert len(X_te) == 20 and y_te.sum() == 8 and len(X_tr) == 80
    assert not set(X_tr[:, 0]) & set(X_te[:, 0])
    again = train_test_split(X, y, 0.2, np.random.default_rng(0))
    np.testing.assert_array_equal(again[1], X_te)


def test_standardizer_uses_training_statistics_and_survives_constant_features():
    train = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32)
    scaler = Standardizer.fit(train)
    np.testing.assert_allclose(scaler.transform(train), [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(scaler.transform(np.array([[5.0, 6.0]])), [[3.0, 1.0]])


def test_batches_cover_the_data_and_skip_a_final_single_row():
    X = np.arange(65, dtype=np.float32).reshape(-1, 1)
    y = np.zeros(65, dtype=np.float32)
    seen = [xb for xb, _ in batches(X, y, 32, np.random.default_rng(0))]
    assert [len(b) for b in seen] == [32, 32]  # the 65th row would be a batch of one
    assert len(np.unique(np.concatenate(seen))) == 64
    order1 = [b[:, 0].tolist() for b, _ in batches(X, y, 32, np.random.default_rng(1))]
    order2 = [b[:, 0].tolist() for b, _ in batches(X, y, 32, np.random.default_rng(2))]
    assert order1 != order2  # shuffled per seed
