"""Search strategies over SMASH scores, behind one interface.

A strategy spends a budget of score calls and returns every evaluation it made, in order.
It is a pure function of (space, rng, score, size, budget), so a run can be repeated and
the same strategies run against a synthetic score in tests. Strategies are looked up by
name (`get_strategy`) so a config can name one and its options as plain data.

- "smash": the authors' procedure: random sampling, perturbation of the best, greedy chain.
- "evolution": regularized (aging) evolution, Real et al. 2019.
- "pareto": the front of SMASH score against size (params or FLOPs), both minimised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import ClassVar, Protocol

import numpy as np

from core.arch import Arch
from core.config import SpaceConfig
from core.pareto import Point, dominates, pareto_front
from core.space import mutate, sample_arch

ScoreFn = Callable[[Arch, str], float]
BatchScoreFn = Callable[[list[Arch], str], list[float]]
"""Score an Arch found by the named stage; lower is better."""

SizeFn = Callable[[Arch], float]
"""Cost of an Arch (params or FLOPs); lower is better. Not counted against the budget."""

REDRAWS = 8
"""Proposals tried for an arch not yet scored before spending budget on a repeat."""


@dataclass(frozen=True)
class Evaluated:
    """One score call a strategy made."""

    arch: Arch
    score: float
    stage: str


class Strategy(Protocol):
    """A search strategy; options are constructor arguments, so configs stay serialisable."""

    name: ClassVar[str]

    def run(self, space: SpaceConfig, rng: np.random.Generator, score: ScoreFn,
            size: SizeFn, budget: int) -> list[Evaluated]:
        """Make at most `budget` score calls; return them in call order."""
        ...


def best_of(evaluated: list[Evaluated]) -> Evaluated:
    """Lowest score, ties broken by arch id as the leaderboard does."""
    return min(evaluated, key=lambda e: (e.score, e.arch.id))


class _Ledger:
    """Wraps a ScoreFn: counts calls against the budget and records each one."""

    def __init__(self, score: ScoreFn, budget: int):
        if budget < 0:
            raise ValueError(f"budget = {budget}; must be >= 0")
        self.score, self.left = score, budget
        self.log: list[Evaluated] = []
        self.seen: dict[Arch, float] = {}

    def __call__(self, arch: Arch, stage: str) -> float:
        return self.evaluate(arch, stage).score

    def evaluate(self, arch: Arch, stage: str) -> Evaluated:
        if self.left <= 0:
            raise RuntimeError("search strategy overran its score budget")  # a bug, not bad input
        self.left -= 1
        ev = Evaluated(arch, float(self.score(arch, stage)), stage)
        self.log.append(ev)
        self.seen[arch] = ev.score
        return ev

    def fresh(self, propose: Callable[[], Arch]) -> Arch:
        """Redraw a few times rather than spend budget re-scoring a known arch."""
        arch = propose()
        for _ in range(REDRAWS - 1):
            if arch not in self.seen:
                break
            arch = propose()
        return arch


# ---------------------------------------------------------------- the authors' stages

def random_archs(space: SpaceConfig, rng: np.random.Generator, n: int) -> Iterator[Arch]:
    for _ in range(n):
        yield sample_arch(space, rng, progress=1.0)


def perturb(best: Arch, space: SpaceConfig, rng: np.random.Generator, n: int,
            score: ScoreFn, score_batch: BatchScoreFn | None = None,
            rate: float = 0.05) -> tuple[Arch, float]:
    """Score `n` neighbours of `best`; return the best of them (or `best` itself).

    The neighbours do not depend on each other's scores, so `score_batch`, when given,
    scores them all at once (in parallel); the result is the same either way.
    """
    best_score = score(best, "perturb")
    if score_batch is None:
        return _best_neighbour(best, best_score, space, rng, n, score, rate)
    cands = [mutate(best, space, rng, rate) for _ in range(n)]
    found, found_score = best, best_score
    for cand, s in zip(cands, score_batch(cands, "perturb"), strict=True):
        if s < found_score:
            found, found_score = cand, s
    return found, found_score


def greedy_chain(start: Arch, space: SpaceConfig, rng: np.random.Generator, steps: int,
                 score: ScoreFn, rate: float = 0.05) -> tuple[Arch, float]:
    """Walk from `start`, moving to a neighbour whenever it scores better."""
    return _climb(start, score(start, "chain"), space, rng, steps, score, rate)


def _best_neighbour(best: Arch, best_score: float, space: SpaceConfig, rng: np.random.Generator,
                    n: int, score: ScoreFn, rate: float = 0.05) -> tuple[Arch, float]:
    """Perturbation from an already scored arch, so a strategy need not pay for it twice."""
    found, found_score = best, best_score
    for _ in range(n):
        cand = mutate(best, space, rng, rate)
        s = score(cand, "perturb")
        if s < found_score:
            found, found_score = cand, s
    return found, found_score


def _climb(start: Arch, start_score: float, space: SpaceConfig, rng: np.random.Generator,
           steps: int, score: ScoreFn, rate: float = 0.05) -> tuple[Arch, float]:
    current, current_score = start, start_score
    for _ in range(steps):
        cand = mutate(current, space, rng, rate)
        s = score(cand, "chain")
        if s < current_score:
            current, current_score = cand, s
    return current, current_score


# ---------------------------------------------------------------- strategies

def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(msg)


@dataclass(frozen=True)
class SmashSearch:
    """Brock et al.: random sampling, then perturb the best, then a greedy chain from there."""

    name: ClassVar[str] = "smash"
    random_fraction: float = 0.7
    """Share of the budget spent on random sampling; the rest is split between the two
    local stages (perturbation gets the smaller half)."""

    def __post_init__(self) -> None:
        _check(0 <= self.random_fraction <= 1,
               f"smash: random_fraction = {self.random_fraction}; allowed [0, 1]")

    def run(self, space: SpaceConfig, rng: np.random.Generator, score: ScoreFn,
            size: SizeFn, budget: int) -> list[Evaluated]:
        ledger = _Ledger(score, budget)
        # At least one random arch, so the local stages have a start.
        n_random = min(budget, max(1, round(self.random_fraction * budget)))
        for arch in random_archs(space, rng, n_random):
            ledger(arch, "random")
        if not ledger.log:
            return ledger.log
        best = best_of(ledger.log)
        n_perturb = ledger.left // 2
        top, top_score = _best_neighbour(best.arch, best.score, space, rng, n_perturb, ledger)
        _climb(top, top_score, space, rng, ledger.left, ledger)
        return ledger.log


@dataclass(frozen=True)
class RegularizedEvolution:
    """Aging evolution (Real et al. 2019): tournament selection, mutation, oldest dies.

    Removing the oldest rather than the worst keeps a lucky early score from ruling
    the population forever, which matters because SMASH scores are noisy.
    """

    name: ClassVar[str] = "evolution"
    population: int = 20
    tournament: int = 5
    """Members drawn per cycle; the best becomes the parent. 1 removes selection pressure."""

    def __post_init__(self) -> None:
        _check(self.population >= 1, f"evolution: population = {self.population}; must be >= 1")
        _check(1 <= self.tournament <= self.population,
               f"evolution: tournament = {self.tournament}; allowed 1..population ({self.population})")

    def run(self, space: SpaceConfig, rng: np.random.Generator, score: ScoreFn,
            size: SizeFn, budget: int) -> list[Evaluated]:
        ledger = _Ledger(score, budget)
        pop: deque[Evaluated] = deque()
        while len(pop) < self.population and ledger.left:
            pop.append(ledger.evaluate(ledger.fresh(lambda: sample_arch(space, rng)), self.name))
        while ledger.left:
            picks = rng.choice(len(pop), size=min(self.tournament, len(pop)), replace=False)
            parent = best_of([pop[int(i)] for i in picks]).arch
            child = ledger.fresh(lambda p=parent: mutate(p, space, rng))
            pop.append(ledger.evaluate(child, self.name))
            pop.popleft()
        return ledger.log


@dataclass(frozen=True)
class ParetoSearch:
    """Archive search for the front of SMASH score against size, both minimised.

    Each step mutates a random archive member, or with probability `explore` samples a
    fresh arch so the archive can reach regions its members' neighbours do not.
    """

    name: ClassVar[str] = "pareto"
    initial: int = 10
    """Random archs scored before mutation starts."""
    explore: float = 0.1

    def __post_init__(self) -> None:
        _check(self.initial >= 1, f"pareto: initial = {self.initial}; must be >= 1")
        _check(0 <= self.explore <= 1, f"pareto: explore = {self.explore}; allowed [0, 1]")

    def run(self, space: SpaceConfig, rng: np.random.Generator, score: ScoreFn,
            size: SizeFn, budget: int) -> list[Evaluated]:
        ledger = _Ledger(score, budget)
        archive: list[tuple[Point, Evaluated]] = []
        while ledger.left:
            if len(ledger.log) < self.initial or rng.random() < self.explore:
                arch = ledger.fresh(lambda: sample_arch(space, rng))
            else:
                parent = archive[int(rng.integers(len(archive)))][1].arch
                arch = ledger.fresh(lambda p=parent: mutate(p, space, rng))
            ev = ledger.evaluate(arch, self.name)
            archive = update_archive(archive, (ev.score, float(size(arch))), ev)
        return ledger.log


STRATEGIES: dict[str, type] = {cls.name: cls for cls in (SmashSearch, RegularizedEvolution, ParetoSearch)}


def get_strategy(name: str, **options: object) -> Strategy:
    """The named strategy with `options` set; errors name what is allowed."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown search strategy {name!r}; allowed: {', '.join(sorted(STRATEGIES))}")
    cls = STRATEGIES[name]
    allowed = sorted(f.name for f in fields(cls))
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"search strategy {name!r} has no option {', '.join(unknown)}; "
                         f"allowed: {', '.join(allowed) or '(none)'}")
    return cls(**options)


def update_archive(archive: list[tuple[Point, Evaluated]], point: Point,
                   ev: Evaluated) -> list[tuple[Point, Evaluated]]:
    """The archive with `ev` added if nothing in it is as good on both objectives.

    A candidate equal to a member is dropped, so the archive holds one arch per point.
    """
    if any(p[0] <= point[0] and p[1] <= point[1] for p, _ in archive):
        return archive
    return [(p, e) for p, e in archive if not dominates(point, p)] + [(point, ev)]


def pareto_archive(evaluated: list[Evaluated], size: SizeFn) -> list[Evaluated]:
    """The non-dominated evaluations (score, size), in order of score: what a front plot shows."""
    points = [(e.score, float(size(e.arch))) for e in evaluated]
    return [evaluated[i] for i in pareto_front(points)]
