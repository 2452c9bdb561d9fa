"""What an experiment returns, and how its numbers become tables: mean ± spread over seeds.

Every number in a table is computed from the runs; nothing is typed in. "a ± b" is the mean
over seeds ± their sample standard deviation (one seed: the value alone). A run that diverged
has no meaningful loss, so loss cells count divergences instead of averaging them away.

Read next: any experiment module, e.g. lr_sweep.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["choose_setup", "Table", "ExperimentResult", "Progress", "mean_sd", "mean_pm",
           "run_plan", "json_ready", "unit_trace"]

# progress(done, total, label): called before each run and once at the end (label "").
Progress = Callable[[int, int, str], None]


def choose_setup(quick: bool, seeds: int | None, quick_setup: dict, full_setup: dict,
                 default_seeds: int) -> tuple:
    """(settings, number of seeds) for a run: the quick or the full settings, and the seeds
    asked for, else 2 for a quick run and the experiment's own default for a full one."""
    return (quick_setup if quick else full_setup), (seeds or (2 if quick else default_seeds))


def mean_sd(values: Sequence[float]) -> tuple:
    """(mean, sample standard deviation) of the values; the deviation is 0 for one value."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return math.nan, math.nan
    spread = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return float(array.mean()), spread


def mean_pm(values: Sequence[float], digits: int = 3) -> str:
    """"mean ± sd" with ``digits`` decimals, over the finite values.

    A non-finite value is a run that diverged: the cell says how many, e.g. "diverged 3/3",
    or "0.123 ± 0.004 (1/3 diverged)" when only some did.
    """
    values = [float(v) for v in values]
    finite = [v for v in values if math.isfinite(v)]
    broken = len(values) - len(finite)
    if not finite:
        return f"diverged {broken}/{len(values)}" if values else "—"
    mean, sd = mean_sd(finite)
    text = _number(mean, digits) if len(finite) == 1 else \
        f"{_number(mean, digits)} ± {_number(sd, digits)}"
    return text if broken == 0 else f"{text} ({broken}/{len(values)} diverged)"


def _number(value: float, digits: int) -> str:
    """Fixed decimals, or scientific notation for values of 10⁴ and more."""
    return f"{value:.2e}" if abs(value) >= 1e4 else f"{value:.{digits}f}"


@dataclass
class Table:
    """A titled table of already formatted cells, printed as Markdown (so that the very text
    the command prints can be pasted into docs/batchnorm.md)."""

    title: str
    columns: list
    rows: list
    note: str = ""

    def markdown(self) -> str:
        widths = [max(len(str(row[i])) for row in [self.columns] + self.rows)
                  for i in range(len(self.columns))]

        def line(cells: Sequence) -> str:
            return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

        lines = [f"**{self.title}**", "", line(self.columns),
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += [line(row) for row in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"title": self.title, "columns": list(self.columns),
                "rows": [list(r) for r in self.rows], "note": self.note}


@dataclass
class ExperimentResult:
    """The outcome of one experiment.

    ``findings`` are one-line observations computed from the data (which variant diverged
    where, which reached the target first); ``data`` holds the numbers behind the tables and
    the plot, so a plot can be redrawn from the JSON output.
    """

    name: str
    title: str
    question: str
    settings: dict
    tables: list
    findings: list
    data: dict = field(default_factory=dict)
    seconds: float = 0.0

    def text(self) -> str:
        """Everything the command prints: title, settings, tables and findings."""
        parts = [f"# {self.title}", "", self.question, "",
                 "Settings: " + "; ".join(f"{k} {v}" for k, v in self.settings.items())]
        parts += ["", *[table.markdown() + "\n" for table in self.tables]]
        if self.findings:
            parts += ["Findings (computed from the numbers above):"]
            parts += [f"- {finding}" for finding in self.findings]
        parts += ["", f"({self.seconds:.0f} s)"]
        return "\n".join(parts)

    def to_dict(self) -> dict:
        """A JSON-ready dict (NaN and infinities become null)."""
        return json_ready({"name": self.name, "title": self.title, "question": self.question,
                           "settings": self.settings,
                           "tables": [t.to_dict() for t in self.tables],
                           "findings": self.findings, "data": self.data,
                           "seconds": self.seconds})


def json_ready(value: Any) -> Any:
    """Convert numpy values to Python ones and non-finite floats to None, recursively."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def run_plan(plan: Sequence[tuple], progress: Progress | None) -> list:
    """Run ``plan``, a list of (label, zero-argument function), reporting progress; returns the
    functions' results in order."""
    results = []
    for done, (label, job) in enumerate(plan):
        if progress is not None:
            progress(done, len(plan), label)
        results.append(job())
    if progress is not None:
        progress(len(plan), len(plan), "")
    return results


def unit_trace(steps: Sequence[int], percentiles: Sequence[np.ndarray], unit: int,
               quantiles: Sequence[int] = (15, 50, 85), points: int = 600) -> dict:
    """One unit's percentile curves over training, thinned to at most about ``points`` records.

    ``percentiles[i]`` is a (len(quantiles), units) array measured at ``steps[i]``; the result
    maps "steps" and "p15", "p50", … to lists (the last record is always kept).
    """
    every = max(1, len(steps) // points)
    chosen = list(range(0, len(steps), every))
    if chosen[-1] != len(steps) - 1:
        chosen.append(len(steps) - 1)
    return {"steps": [steps[i] for i in chosen],
            **{f"p{q}": [float(percentiles[i][k, unit]) for i in chosen]
               for k, q in enumerate(quantiles)}}
