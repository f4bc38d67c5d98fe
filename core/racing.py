"""Racing: spend extra draws on the architectures whose order is still noise.

A SMASH score is a mean over draws (HyperNet noise and validation images), so two archs
whose intervals overlap are tied. Racing re-scores the current top k with fresh draws,
but only those still tied with the leader, round after round, until no other arch's
interval overlaps the leader's or every tied arch has spent its draw budget. Draws go
where they change the decision, so at equal cost it finds the true best more often than
giving every arch the same number of draws. Pure logic, no torch: the scorer is a callable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from core.rankstats import mean_interval


@dataclass(frozen=True)
class Tally:
    """A score so far: draws, their mean and sample spread, and where the draws started."""

    n: int
    mean: float
    std: float
    first_draw: int = 0
    rounds: int = 0

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        lo, hi = mean_interval(self.mean, self.std, self.n, level)
        return (-math.inf, math.inf) if lo is None else (lo, hi)

    def merge(self, other: Tally) -> Tally:
        """This tally and `other`'s draws pooled (exact mean and sample variance)."""
        n = self.n + other.n
        mean = (self.n * self.mean + other.n * other.mean) / n
        ss = ((self.n - 1) * self.std**2 + (other.n - 1) * other.std**2
              + self.n * (self.mean - mean) ** 2 + other.n * (other.mean - mean) ** 2)
        return replace(self, n=n, mean=mean, std=math.sqrt(ss / (n - 1)) if n > 1 else 0.0,
                       rounds=self.rounds + 1)

    @property
    def next_draw(self) -> int:
        return self.first_draw + self.n


MoreFn = Callable[[str, int], Tally]
"""Fresh draws of an arch starting at a draw index: returns their own tally."""


def tied_with_leader(tallies: dict[str, Tally], ids: list[str], level: float = 0.95) -> list[str]:
    """Of `ids`, the leader (lowest mean, ties by id) and every arch whose interval overlaps it."""
    ranked = sorted(ids, key=lambda a: (tallies[a].mean, a))
    _, leader_hi = tallies[ranked[0]].interval(level)
    return [a for a in ranked if tallies[a].interval(level)[0] <= leader_hi]


def race(tallies: dict[str, Tally], more: MoreFn, *, top: int, max_draws: int, level: float = 0.95,
         on_round: Callable[[int, list[str], dict[str, Tally]], None] | None = None
         ) -> dict[str, Tally]:
    """Race the `top` best of `tallies` (arch id -> Tally); returns the updated tallies.

    Each round re-ranks, finds the archs tied with the leader among the top, and gives each
    of those with fewer than `max_draws` draws one more batch from `more`. A resumed race
    (tallies read back from the store) continues exactly where it stopped.
    """
    tallies = dict(tallies)
    rnd = 0
    while True:
        ids = sorted(tallies, key=lambda a: (tallies[a].mean, a))[:top]
        tied = tied_with_leader(tallies, ids, level)
        open_ = [a for a in tied if tallies[a].n < max_draws]
        if len(tied) < 2 or not open_:
            return tallies
        rnd += 1
        for a in open_:
            tallies[a] = tallies[a].merge(more(a, tallies[a].next_draw))
        if on_round is not None:
            on_round(rnd, open_, tallies)
