"""The leaderboard's vocabulary, shared by the dashboard and the shell: what it sorts by,
how a row is marked, how a score's interval reads, and how a long board pages.

Written once here so the Leaderboard page and `smash top` say the same words and count
the same pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.metric import plotly_format

MISSING = "–"

SORT_KEYS = ("score_mean", "score_std", "params", "flops", "depth", "n_layers", "val_error", "arch_id")
"""What the board sorts by. Test error is shown beside validation error but is no sort
key: nothing selects on it."""

MARKS = {
    "partial": "successive halving stopped it early (never the best; left out of correlations "
               "and Pareto fronts)",
    "tied": "its score interval overlaps the leader's, so their order is not settled",
}
"""A row's mark and what it means; an unmarked row is separated from the leader."""


def _flag(value: Any) -> bool:
    """A stored flag: NULL (a store from before the column) is unknown, so unmarked."""
    return bool(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) else False


def mark(tied: Any, partial: Any) -> str:
    """The mark of a board row from its tied and partial flags."""
    return "partial" if _flag(partial) else "tied" if _flag(tied) else ""


def marks_legend(shown: set[str] | None = None) -> str:
    """One line explaining the marks (those in `shown`, or all)."""
    names = [m for m in MARKS if shown is None or m in shown]
    return "mark: " + "; ".join(f"{m} = {MARKS[m]}" for m in names)


def interval_text(lo: Any, hi: Any, metric: str = "error") -> str:
    """A score's 95% interval, one place coarser than the score: [85.1%, 88.9%] for error,
    [0.912, 0.951] for loss, or – without one."""
    if lo is None or hi is None or any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
        return MISSING
    spec = plotly_format(metric)  # ".1%" or ".3f": a Python format spec as well
    return f"[{float(lo):{spec}}, {float(hi):{spec}}]"


@dataclass(frozen=True)
class Page:
    """One page of a board of `total` rows, `size` rows a page; `number` counts from 1."""

    total: int
    size: int
    number: int = 1

    def __post_init__(self) -> None:
        if self.size < 1 or self.number < 1:
            raise ValueError("page size and number must be at least 1")

    def clamped(self) -> Page:
        """This page, or the last one where `number` lies past it."""
        return Page(self.total, self.size, min(self.number, self.pages))

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def span(self, rows: int) -> str:
        """Which rows `rows` shown from this page are: "showing 51–100 (page 2 of 4)"."""
        first = self.offset + 1 if self.total else 0
        return f"showing {first:,}–{self.offset + rows:,} (page {self.number:,} of {self.pages:,})"
