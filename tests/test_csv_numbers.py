"""The one validation layer for numbers (`tinygrad_bn.numbers`) and the CSV loader built on it:
plain ASCII decimals only, finite in float32, exact line and column for every bad cell, and the
same result whether the fast (numpy) or the checked (record by record) path reads the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinygrad_bn import data as data_module
from tinygrad_bn.data import DataError, generate_placement, load_csv, to_csv_text
from tinygrad_bn.numbers import NumberError, check_finite, parse_number


@pytest.mark.parametrize("text, value", [("7", 7.0), (" -0.5 ", -0.5), (".5", 0.5), ("5.", 5.0),
                                         ("+1e-3", 1e-3), ("3.4e38", 3.4e38), ("1E2", 100.0),
                                         ("1e-50", 1e-50)])
def test_plain_decimals_are_read(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("  ", "empty"), ("7_0", "'7_0' is not a number"),
    ("\u0667", "is not a number"),             # ARABIC-INDIC DIGIT SEVEN: float() reads 7
    ("\uff17", "is not a number"),             # FULLWIDTH DIGIT SEVEN
    ("1\u00a0", "is not a number"),            # a no-break space is not ASCII space
    ("nan", "not a finite number"), ("-inf", "not a finite number"),
    ("Infinity", "not a finite number"), ("1e39", "too large for float32"),
    ("-3.5e38", "too large for float32"), ("1e400", "too large"), ("0x10", "not a number"),
    ("1,5", "not a number"), ("--1", "not a number"), ("1e", "not a number"),
])
def test_everything_else_is_refused_with_the_reason(text, message):
    with pytest.raises(NumberError, match=message):
        parse_number(text)


def test_the_dtype_decides_what_is_finite():
    assert parse_number("1e39", np.float64) == 1e39
    with pytest.raises(NumberError, match="float16"):
        parse_number("70000", np.float16)
    assert check_finite(1e38) == 1e38
    with pytest.raises(NumberError):
        check_finite(float("nan"), np.float64)


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("cell, reason", [("1e39", "'1e39' is too large for float32"),
                                          ("7_0", "'7_0' is not a number"),
                                          ("\u0663", "is not a number"),
                                          ("inf", "'inf' is not a finite number")])
def test_csv_cells_name_file_line_and_column(tmp_path, cell, reason):
    path = write(tmp_path, f"cgpa,iq,placed\n7,100,1\n8,90,0\n{cell},95,1\n")
    with pytest.raises(DataError) as info:
        load_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 4, column 'cgpa': ") and reason in message


def test_a_duplicated_header_name_is_refused_naming_it(tmp_path):
    path = write(tmp_path, "cgpa,iq,placed,iq\n7,100,1,3\n8,90,0,4\n")
    with pytest.raises(DataError, match=r"line 1: the header names column 'iq' more than once"):
        load_csv(path)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of a few lines, so that small files exercise the block-by-block fast path."""
    monkeypatch.setattr(data_module, "BLOCK_CHARS", 50)


def test_fast_and_checked_paths_read_the_same_numbers(tmp_path, tiny_blocks):
    dataset = generate_placement(300, seed=5)
    plain = write(tmp_path, to_csv_text(dataset), "plain.csv")
    # Quotes and a blank line with spaces send the file down the checked path.
    quoted_text = to_csv_text(dataset).replace("\n", "\n   \n", 1).replace(",1\n", ',"1"\n')
    quoted = write(tmp_path, "\ufeff" + quoted_text.replace("\n", "\r\n"), "quoted.csv")
    fast, checked = load_csv(plain), load_csv(quoted)
    np.testing.assert_array_equal(fast.X, dataset.X)
    np.testing.assert_array_equal(fast.y, dataset.y)
    np.testing.assert_array_equal(checked.X, fast.X)
    np.testing.assert_array_equal(checked.y, fast.y)
    assert fast.X.dtype == checked.X.dtype == np.float32


def test_a_problem_deep_in_a_large_file_is_found_at_its_exact_line(tmp_path, tiny_blocks):
    lines = [f"{7 + i % 3},{90 + i % 40},{i % 2}" for i in range(2000)]
    for bad, where in [("1e39", "column 'cgpa'"), ("", "column 'cgpa': an empty value")]:
        broken = lines.copy()
        broken[1500] = f"{bad},100,1"
        path = write(tmp_path, "cgpa,iq,placed\n\n" + "\n".join(broken) + "\n")
        with pytest.raises(DataError, match=f"line 1503, {where}"):
            load_csv(path)
    ragged = lines.copy()
    ragged[1700] = "7,100"
    path = write(tmp_path, "cgpa,iq,placed\n" + "\n".join(ragged) + "\n")
    with pytest.raises(DataError, match="line 1702: expected 3 fields, got 2"):
        load_csv(path)
    wrong_label = lines.copy()
    wrong_label[1999] = "7,100,0.5"
    path = write(tmp_path, "cgpa,iq,placed\n" + "\n".join(wrong_label) + "\n")
    with pytest.raises(DataError, match="line 2001, column 'placed': the target must be 0 or 1"):
        load_csv(path)


def test_unused_text_columns_and_prediction_files_still_load(tmp_path, tiny_blocks):
    path = write(tmp_path, "name,cgpa,iq,placed\nann,7,100,1\nbob,8,90,0\n")
    dataset = load_csv(path)
    assert dataset.X.tolist() == [[7.0, 100.0], [8.0, 90.0]] and dataset.y.tolist() == [1, 0]
    no_target = load_csv(write(tmp_path, "iq,cgpa\n100,7\n", "new.csv"), require_target=False)
    assert no_target.y is None and no_target.X.tolist() == [[7.0, 100.0]]
