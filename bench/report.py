"""Figures, their targets and in-run baselines: one table on stdout, one JSON file per bench.

A figure holds one value per round, so a reader sees how noisy the machine was: the table
shows the median and the spread ((max - min) / median) across rounds. A baseline is a
figure measured in the same run on the same machine; its ratio says how far we are from
the floor whatever else the machine was doing meanwhile.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Better = Literal["lower", "higher"]


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN when there are no samples (a missing figure shows)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def pcts(samples: Sequence[float], qs: Iterable[float] = (50, 95, 99)) -> dict[str, float]:
    """`{"p50": ..., "p95": ..., "p99": ..., "n": ...}` rounded for JSON."""
    out: dict[str, float] = {f"p{q:g}": round(percentile(samples, q), 3) for q in qs}
    out["n"] = len(samples)
    return out


@dataclass
class Figure:
    """One measured quantity, one value per round, with its target and baseline if any."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    target: float | None = None
    better: Better = "lower"
    baseline_name: str = ""
    note: str = ""
    baselines: list[float] = field(default_factory=list)

    def add(self, value: float, baseline: float | None = None) -> Figure:
        """One round's value, and the floor measured in that same round if there is one."""
        self.values.append(float(value))
        if baseline is not None:
            self.baselines.append(float(baseline))
        return self

    @property
    def value(self) -> float:
        finite = [v for v in self.values if not math.isnan(v)]
        return statistics.median(finite) if finite else math.nan

    @property
    def baseline(self) -> float | None:
        finite = [v for v in self.baselines if not math.isnan(v)]
        return statistics.median(finite) if finite else None

    @property
    def spread(self) -> float | None:
        """(max - min) / median over rounds: 0.1 means the rounds disagreed by 10 %."""
        finite = [v for v in self.values if not math.isnan(v)]
        if len(finite) < 2 or self.value == 0:
            return None
        return (max(finite) - min(finite)) / abs(self.value)

    @property
    def met(self) -> bool | None:
        if self.target is None or math.isnan(self.value):
            return None
        if self.better == "lower":
            return self.value <= self.target
        return self.value >= self.target

    @property
    def ratio(self) -> float | None:
        """Value over baseline: how many floors this figure costs."""
        if self.baseline is None or not self.baseline or math.isnan(self.value):
            return None
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "value": _num(self.value),
            "rounds": [_num(v) for v in self.values],
            "spread": _num(self.spread),
            "target": self.target,
            "better": self.better,
            "met": self.met,
            "baseline": _num(self.baseline),
            "baseline_rounds": [_num(v) for v in self.baselines],
            "baseline_name": self.baseline_name,
            "ratio": _num(self.ratio),
            "note": self.note,
        }


def _num(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, 4)


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass
class Report:
    """Everything one benchmark found: figures for the table, details for the JSON."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    began: float = field(default_factory=time.time)
    load_at_start: list[float] = field(
        default_factory=lambda: [round(x, 2) for x in os.getloadavg()]
    )

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def figure(self, name: str, unit: str, **fields: Any) -> Figure:
        """The figure called `name`, created on first use (rounds append to it)."""
        for found in self.figures:
            if found.name == name:
                return found
        return self.add(Figure(name, unit, **fields))

    def table(self) -> str:
        head = ("figure", "value", "unit", "target", "met", "baseline", "ratio", "spread")
        rows = [head]
        for f in self.figures:
            target = "-" if f.target is None else ("<=" if f.better == "lower" else ">=")
            target = target if f.target is None else f"{target} {_fmt(f.target)}"
            met = {True: "yes", False: "NO", None: "-"}[f.met]
            ratio = "-" if f.ratio is None else f"x{_fmt(f.ratio)}"
            spread = "-" if f.spread is None else f"{f.spread * 100:.0f}%"
            rows.append(
                (f.name, _fmt(f.value), f.unit, target, met, _fmt(f.baseline), ratio, spread)
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)

    def print(self) -> None:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\n== bench {self.name} == (load average at end {load} on {os.cpu_count()} CPUs)")
        for key, value in self.info.items():
            print(f"  {key}: {value}")
        print(self.table())
        notes = [f"  {f.name}: {f.note}" for f in self.figures if f.note]
        if notes:
            print("notes:")
            print("\n".join(notes))

    def write(self, directory: Path = RESULTS_DIR, *, tag: str = "") -> Path:
        """Write `<directory>/<name>[.<tag>].json` and return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}{'.' + tag if tag else ''}.json"
        body = {
            "bench": self.name,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.began)),
            "duration_s": round(time.time() - self.began, 1),
            "machine": machine() | {"loadavg_at_start": self.load_at_start},
            "info": self.info,
            "figures": [f.as_dict() for f in self.figures],
            "details": self.details,
        }
        path.write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")
        return path


def _cells(row: Sequence[str], widths: Sequence[int]) -> Iterable[str]:
    """The first column left-aligned, numbers right-aligned."""
    for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
        yield cell.ljust(width) if i == 0 else cell.rjust(width)


def machine() -> dict[str, Any]:
    """What the numbers were measured on, how busy it was, and which code was measured."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "commit": _git("rev-parse", "--short", "HEAD"),
        # The tree is shared and edited while benchmarks run: name what differed from HEAD.
        "uncommitted": _git("status", "--porcelain", "--", "core", "integrations", "bot", "config"),
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip()
