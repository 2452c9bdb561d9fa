"""Option types and error helpers shared by the CLI commands."""
from __future__ import annotations

import json
import math
import os
from typing import Any, Iterable

import click
import numpy as np

from ..files import OutputError, check_destination, same_file
from ..numbers import NumberError, parse_number

__all__ = ["IntList", "NameList", "FiniteFloat", "FileProblem", "check_writable", "echo_json",
           "printable"]


class FileProblem(click.ClickException):
    """A data or model file that is missing or unusable: one line on stderr, exit code 1."""

    exit_code = 1


class IntList(click.ParamType):
    """A comma-separated list of positive integers, e.g. ``16,16``."""

    name = "N,N,..."

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple:
        if isinstance(value, tuple):
            return value
        parts = [p.strip() for p in str(value).split(",")]
        try:
            sizes = tuple(int(p) for p in parts)
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers (e.g. 16,16)", param,
                      ctx)
        if not sizes or any(s <= 0 for s in sizes):
            self.fail(f"{value!r}: every size must be a positive integer", param, ctx)
        return sizes


class NameList(click.ParamType):
    """A comma-separated list of column names, e.g. ``cgpa,iq``."""

    name = "NAME,NAME,..."

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple:
        if isinstance(value, tuple):
            return value
        names = tuple(p.strip() for p in str(value).split(","))
        if not names or any(not n for n in names):
            self.fail(f"{value!r} is not a comma-separated list of column names", param, ctx)
        if len(set(names)) != len(names):
            self.fail(f"{value!r} names a column twice", param, ctx)
        return names


class FiniteFloat(click.FloatRange):
    """A float in a range, written plainly and finite in float32 (``nan``, ``inf``, ``1e39``
    and ``7_0`` are refused, naming the option): `numbers.parse_number` decides."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, float):
            try:
                value = parse_number(str(value), np.float32)
            except NumberError as error:
                self.fail(str(error), param, ctx)
        return super().convert(value, param, ctx)


def check_writable(path: str | None, inputs: Iterable[str | os.PathLike | None] = ()) -> None:
    """Fail before any work is done if ``path`` cannot be written: its folder is missing or
    read-only, its name too long, or something other than a regular file is there (exit 1);
    or writing it would replace one of ``inputs`` (exit 2: the output must be another file).
    """
    if path is None:
        return
    for source in inputs:
        if source is not None and same_file(path, source):
            raise click.UsageError(f"the output {path} is the input file {source}: writing it "
                                   "would destroy the input; choose another output name")
    try:
        check_destination(path)
    except OutputError as error:
        raise FileProblem(str(error)) from None


def _strict(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN or Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    return value


def echo_json(value: Any) -> None:
    """Print ``value`` as strict JSON: a non-finite number is written as null."""
    click.echo(json.dumps(_strict(value), indent=2, allow_nan=False))


def printable(text: str) -> str:
    """``text`` with control and other non-printable characters escaped (``\\x1b``), so that
    names read from a file cannot move the cursor or recolour the terminal."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
                   for char in text)
