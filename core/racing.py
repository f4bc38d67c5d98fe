"""Racing: spend extra draws on the architectures whose order is still noise, until the
leaderboard can say which are equivalent to the leader and which are not.

A SMASH score is a mean over draws (HyperNet noise and validation images), so two archs
whose intervals overlap are tied. Ties alone decide nothing: two archs a retrain could
not tell apart need not be told apart by SMASH either. So racing works to an indifference
zone `delta` (the run's [score].delta, in the score's units). Each arch's interval is its
mean +- t x the run's per-draw spread pooled over all its archs / sqrt(its draws) (one
scorer makes every draw; two draws of one arch say little about the spread, hundreds of
archs say much), and each leading arch ends as one of VERDICTS,
  separated   its interval lies wholly above the leader's: the leader is better;
  equivalent  its interval lies within delta of the leader's mean, and the leader's own
              half-width is at most delta / 2 (so a lucky leader does not set the zone):
              as good as the leader for any purpose;
  unresolved  neither yet, and its draw budget is spent (racing gives it more otherwise).
Round after round the top archs still unresolved get fresh draws (the leader too while
its half-width exceeds delta / 2), so draws go where they change the decision and a
decision comes out, not a wall of ties. Without a delta it races the archs whose own
intervals overlap the leader's until none does (the older rule). Pure logic, no torch:
the scorer is a callable.
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




VERDICTS = ("leader", "equivalent", "unresolved", "separated")
Z95 = 1.959963984540054


def t_quantile(df: int) -> float:
    """The two-sided 95% Student-t quantile for `df` degrees of freedom, by the Cornish-Fisher
    expansion around the normal's (within 0.2% from df 5 on): a formula the store's SQL
    computes alike, so racing and the leaderboard draw the same verdicts."""
    z = Z95
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Spread:
    """The per-draw spread of a run's scores, pooled over its archs: one scorer makes every
    draw, so the archs share it, and pooled over hundreds of archs it is known far better
    than from one arch's two draws (whose own spread can come out near zero by chance)."""

    sd: float
    df: int

    def half_width(self, n: int) -> float:
        return t_quantile(self.df) * self.sd / math.sqrt(max(n, 1))


def pooled_spread(tallies: dict[str, Tally]) -> Spread | None:
    """The pooled per-draw standard deviation of `tallies` (None without two draws anywhere)."""
    ss = sum((t.n - 1) * t.std**2 for t in tallies.values() if t.n > 1)
    df = sum(t.n - 1 for t in tallies.values() if t.n > 1)
    return Spread(math.sqrt(ss / df), df) if df else None


def _bounds(t: Tally, spread: Spread | None) -> tuple[float, float]:
    if spread is None:
        return t.interval()
    hw = spread.half_width(t.n)
    return t.mean - hw, t.mean + hw


def verdicts(tallies: dict[str, Tally], delta: float | None, spread: Spread | None = None) -> dict[str, str]:
    """Each arch of `tallies` judged against the leader (lowest mean, ties by id), as the
    module docstring says. With `delta`, each interval is the mean +- t x the pooled spread
    (`spread`, default: pooled over `tallies`) / sqrt(draws); without, nothing is equivalent
    and each arch's own 95% interval decides tied (unresolved) or separated, the older rule."""
    if delta is not None and spread is None:
        spread = pooled_spread(tallies)
    spread = spread if delta is not None else None
    ranked = sorted(tallies, key=lambda a: (tallies[a].mean, a))
    lead = tallies[ranked[0]]
    lead_lo, lead_hi = _bounds(lead, spread)
    tight = delta is not None and (lead_hi - lead_lo) / 2 <= delta / 2
    out = {ranked[0]: "leader"}
    for a in ranked[1:]:
        lo, hi = _bounds(tallies[a], spread)
        if lo > lead_hi:
            out[a] = "separated"
        elif tight and lo >= lead.mean - delta and hi <= lead.mean + delta:
            out[a] = "equivalent"
        else:
            out[a] = "unresolved"
    return out


def to_race(tallies: dict[str, Tally], ids: list[str], delta: float | None, max_draws: int,
            spread: Spread | None = None) -> list[str]:
    """Of the leading `ids`, the archs that get more draws this round: each unresolved one,
    and the leader while any is unresolved and its own interval is wider than delta, each
    only while under `max_draws`."""
    judged = verdicts({a: tallies[a] for a in ids}, delta, spread)
    open_ = [a for a in ids if judged[a] == "unresolved"]
    if not open_:
        return []
    leader = ids[0]
    lo, hi = _bounds(tallies[leader], spread if delta is not None else None)
    if delta is None or (hi - lo) / 2 > delta / 2:
        open_.insert(0, leader)
    return [a for a in open_ if tallies[a].n < max_draws]


def race(tallies: dict[str, Tally], more: MoreFn, *, top: int, max_draws: int, delta: float | None = None,
         on_round: Callable[[int, list[str], dict[str, Tally]], None] | None = None
         ) -> dict[str, Tally]:
    """Race the `top` best of `tallies` (arch id -> Tally; give every scored arch, so the
    spread is pooled over all of them); returns the updated tallies.

    Each round re-ranks the top and gives each arch `to_race` names one more batch of
    draws from `more`, until none is left to race. A resumed race (tallies read back from
    the store) continues exactly where it stopped.
    """
    tallies = dict(tallies)
    rnd = 0
    while True:
        ids = sorted(tallies, key=lambda a: (tallies[a].mean, a))[:top]
        open_ = to_race(tallies, ids, delta, max_draws, pooled_spread(tallies) if delta is not None else None)
        if not open_:
            return tallies
        rnd += 1
        for a in open_:
            tallies[a] = tallies[a].merge(more(a, tallies[a].next_draw))
        if on_round is not None:
            on_round(rnd, open_, tallies)
