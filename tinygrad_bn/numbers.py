"""Reading numbers from people: the one validation layer for CSV cells, ``--row`` values and
numeric options.

A number is accepted only when it is written plainly in ASCII (``7``, ``-0.5``, ``.5``,
``1e-3``) and is finite **once stored in the dtype that will hold it** (float32 for the
placement model: ``1e39`` is finite as a Python float but overflows float32 to infinity).
Python's ``float()`` is more lenient than a data file should be: it reads ``7_0`` as 70,
Arabic-Indic digits as digits, and ``nan``/``inf`` as numbers; all of these are refused here.

Read next: data.py (the CSV loader that uses `parse_number`).
"""
from __future__ import annotations

import functools
import math
import re

import numpy as np

__all__ = ["NumberError", "parse_number", "check_finite", "DECIMAL"]

# A plain decimal: optional sign, digits with an optional fraction (or a bare fraction), an
# optional exponent. re.ASCII keeps \d to 0-9.
DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_SPACE = " \t\r\n\f\v"


class NumberError(ValueError):
    """A value that is not a usable number; the message says why, without saying where (the
    caller adds the file and line, or the option name)."""


@functools.lru_cache(maxsize=None)
def _largest(dtype: np.dtype | type) -> tuple:
    """(largest finite value, name) of a float dtype; cached: a CSV asks millions of times."""
    return float(np.finfo(dtype).max), np.dtype(dtype).name


def check_finite(value: float, dtype: np.dtype | type = np.float32) -> float:
    """Return ``value`` if it is finite once stored as ``dtype``, else raise `NumberError`."""
    if not math.isfinite(value):
        raise NumberError(f"{value!r} is not a finite number")
    largest, name = _largest(dtype)
    if abs(value) > largest:
        raise NumberError(f"{value!r} is too large for {name} (largest: {largest:.4g})")
    return value


def parse_number(text: str, dtype: np.dtype | type = np.float32) -> float:
    """The number written in ``text`` (surrounding ASCII spaces allowed), as a Python float.

    Raises `NumberError` for an empty value, anything but a plain ASCII decimal, and values
    that are not finite in ``dtype``.

    Example:
        >>> parse_number(" 8.5 ")
        8.5
        >>> parse_number("7_0")
        Traceback (most recent call last):
        ...
        tinygrad_bn.numbers.NumberError: '7_0' is not a number
    """
    stripped = text.strip(_SPACE)
    if not stripped:
        raise NumberError("an empty value is not a number")
    if DECIMAL.fullmatch(stripped) is None:
        lowered = stripped.lower().lstrip("+-")
        if lowered in ("nan", "inf", "infinity"):
            raise NumberError(f"{stripped!r} is not a finite number")
        raise NumberError(f"{stripped!r} is not a number")
    value = float(stripped)
    largest, name = _largest(dtype)
    if not abs(value) <= largest:  # also 1e400, which is infinite as a float64 too
        raise NumberError(f"{stripped!r} is too large for {name} (largest: {largest:.4g})")
    return value
