"""The leaderboard's vocabulary, shared by the dashboard and the shell: what it sorts by,
how a row is marked, how a score's interval reads, and how a long board pages.

Written once here so the Leaderboard page and `smash top` say the same words and count
the same pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.metric import format_score, plotly_format

if TYPE_CHECKING:  # the board's rows come as a DataFrame; the shell's parser must not load pandas
    import pandas as pd

MISSING = "–"

SORT_KEYS = ("score_mean", "score_std", "params", "flops", "depth", "n_layers", "val_error", "arch_id")
"""What the board sorts by. Test error is shown beside validation error but is no sort
key: nothing selects on it."""

MARKS = {
    "leader": "the best score",
    "equivalent": "its score interval lies within the run's delta of the leader's score: as good as "
                  "the leader for any purpose",
    "unresolved": "its interval overlaps the leader's and is not inside delta: the draws did not "
                  "settle it (race it, or retrain it)",
    "partial": "successive halving stopped it early (never the best; left out of correlations "
               "and Pareto fronts)",
}
"""A row's mark (the store's verdict against the leader) and what it means; an unmarked row
is separated from the leader: its interval lies wholly above the leader's."""


def mark(verdict: Any) -> str:
    """The mark of a board row from its verdict (none for separated, or unknown)."""
    return verdict if isinstance(verdict, str) and verdict in MARKS else ""


def equivalence_sentence(counts: dict[str, int], delta: float | None, metric: str = "error") -> str:
    """What the board has decided, in one sentence: how many archs are equivalent to the
    leader within delta, how many are still unresolved, how many are separated."""
    equivalent = counts.get("leader", 0) + counts.get("equivalent", 0)
    if not equivalent:
        return "No full score yet: nothing to compare with."
    zone = f"within delta = {format_score(delta, metric)}" if delta else "(no indifference zone set)"
    text = (f"{equivalent} architectures are equivalent {zone} (the leader and {equivalent - 1} more)"
            if equivalent > 1 else f"No architecture is equivalent to the leader {zone}")
    if counts.get("unresolved"):
        text += f"; {counts['unresolved']:,} unresolved (their intervals overlap the leader's)"
    return text + f"; {counts.get('separated', 0):,} separated from the leader."


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


def recommend(equivalent: pd.DataFrame, learned: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """What to train, from the archs equivalent to the leader (`equivalent`: arch_id,
    score_mean, params, flops, best score first): the best-scored, the cheapest by params and
    the cheapest by FLOPs, each once with every reason it was picked for; then, when a ranker
    learned from the run's retrains beats the SMASH score (`learned`: its best predicted arch,
    with arch_id and reason), that arch too."""
    picks: dict[str, dict[str, Any]] = {}

    def add(row: Any, reason: str) -> None:
        pick = picks.setdefault(str(row["arch_id"]), {
            "arch_id": str(row["arch_id"]), "reasons": [], "score_mean": _num(row.get("score_mean")),
            "params": _num(row.get("params")), "flops": _num(row.get("flops"))})
        pick["reasons"].append(reason)

    if len(equivalent):
        n = len(equivalent)
        add(equivalent.iloc[0], "best SMASH score")
        for size, label in (("params", "parameters"), ("flops", "FLOPs")):
            sized = equivalent.dropna(subset=[size])
            if n > 1 and len(sized):
                add(sized.loc[sized[size].astype(float).idxmin()],
                    f"fewest {label} of the {n} equivalent to the leader")
    if learned is not None:
        add(learned, learned["reason"])
    return list(picks.values())


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
