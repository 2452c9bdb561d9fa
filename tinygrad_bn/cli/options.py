"""Option types and error helpers shared by the CLI commands."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["IntList", "NameList", "FileProblem", "check_writable"]


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


def check_writable(path: str | None) -> None:
    """Fail before any work is done if ``path`` cannot be written (its folder is missing)."""
    if path is None:
        return
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise FileProblem(f"cannot write {path}: folder {folder} does not exist")
    if Path(path).is_dir():
        raise FileProblem(f"cannot write {path}: it is a folder")
