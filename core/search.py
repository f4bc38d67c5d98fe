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

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import ClassVar, Protocol

import numpy as np

from core.arch import Arch
from core.config import SpaceConfig
from core.pareto import Point, dominates
from core.space import mutate, sample_arch

ScoreFn = Callable[[Arch, str], float]
"""Score an Arch found by the named stage; lower is better. +inf: the arch has no full
score (successive halving stopped it early), so it is never the best nor a move target."""

BatchScoreFn = Callable[[list[Arch], str], list[float]]
"""Score independent Archs of one stage at once (in parallel, on a cluster); the scores
come back in the order of the list."""

SizeFn = Callable[[Arch], float]
"""Cost of an Arch (params or FLOPs); lower is better. Not counted against the budget."""

StageRng = Callable[[str], np.random.Generator]
"""The random stream of a named stage, for a caller that seeds each stage on its own."""

Rng = np.random.Generator | StageRng
"""One Generator that every stage draws from in turn, or a stream per stage."""

REDRAWS = 8
"""Proposals tried for an arch not yet scored before spending budget on a repeat."""


def stage_rng(rng: Rng) -> StageRng:
    """`rng` as a function of the stage name; a single Generator serves every stage.

    Call it once per stage: a caller's function may make a fresh stream at every call."""
    if isinstance(rng, np.random.Generator):
        return lambda _stage: rng
    return rng


@dataclass(frozen=True)
class Evaluated:
    """One score call a strategy made."""

    arch: Arch
    score: float
    stage: str


class Strategy(Protocol):
    """A search strategy; options are constructor arguments, so configs stay serialisable."""

    name: ClassVar[str]
    stages: ClassVar[tuple[str, ...]]
    """The stage names its scores are stored under."""

    def run(self, space: SpaceConfig, rng: Rng, score: ScoreFn, size: SizeFn, budget: int,
            batch: BatchScoreFn | None = None) -> list[Evaluated]:
        """Make at most `budget` score calls; return them in call order.

        `batch`, when given, scores candidates that do not depend on each other's scores
        all at once; the result must be the same as scoring them one by one."""
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

    def evaluate_all(self, archs: list[Arch], stage: str,
                     batch: BatchScoreFn | None = None) -> list[Evaluated]:
        """Score independent `archs`, with `batch` when given, else one by one."""
        if batch is None:
            return [self.evaluate(arch, stage) for arch in archs]
        if len(archs) > self.left:
            raise RuntimeError("search strategy overran its score budget")  # a bug, not bad input
        self.left -= len(archs)
        found = [Evaluated(arch, float(s), stage)
                 for arch, s in zip(archs, batch(archs, stage), strict=True)]
        self.log += found
        self.seen.update((ev.arch, ev.score) for ev in found)
        return found

    def batch_fn(self, batch: BatchScoreFn | None) -> BatchScoreFn | None:
        """`batch` with its calls counted and recorded here (None stays None)."""
        if batch is None:
            return None
        return lambda archs, stage: [ev.score for ev in self.evaluate_all(archs, stage, batch)]

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
            rate: float = 0.05, best_score: float | None = None) -> tuple[Arch, float]:
    """Score `n` neighbours of `best`; return the best of them (or `best` itself).

    `best` is scored first, as stage "perturb", unless `best_score` is given. The
    neighbours do not depend on each other's scores, so `score_batch`, when given, scores
    them all at once (in parallel); the result is the same either way.
    """
    found_score = score(best, "perturb") if best_score is None else best_score
    found = best
    cands = [mutate(best, space, rng, rate) for _ in range(n)]  # scoring draws nothing from rng
    scores = score_batch(cands, "perturb") if score_batch else [score(c, "perturb") for c in cands]
    for cand, s in zip(cands, scores, strict=True):
        if s < found_score:
            found, found_score = cand, s
    return found, found_score


def greedy_chain(start: Arch, space: SpaceConfig, rng: np.random.Generator, steps: int,
                 score: ScoreFn, rate: float = 0.05,
                 start_score: float | None = None) -> tuple[Arch, float]:
    """Walk from `start`, moving to a neighbour whenever it scores better.

    `start` is scored first, as stage "chain", unless `start_score` is given."""
    current_score = score(start, "chain") if start_score is None else start_score
    current = start
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
    """Brock et al.: random sampling, then perturb the best, then a greedy chain from there.

    Each stage draws from its own stream when `rng` gives one per stage ("random",
    "perturb", "chain"). The random sample is scored as one batch, and so are the
    perturbation's neighbours; the best of the sample is the best full score."""

    name: ClassVar[str] = "smash"
    stages: ClassVar[tuple[str, ...]] = ("random", "perturb", "chain")
    random_fraction: float = 0.7
    """Share of the budget spent on random sampling; the rest is split between the two
    local stages (perturbation gets the smaller half)."""
    n_random: int | None = None
    """Random archs; None: `random_fraction` of the budget."""
    n_perturb: int | None = None
    """Neighbours of the best; None: the smaller half of what the random stage leaves."""
    n_chain: int | None = None
    """Steps of the greedy chain; None: the rest of the budget."""
    mutation_rate: float = 0.05
    rescore_starts: bool = False
    """Score each local stage's start again under that stage's name, as `perturb` and
    `greedy_chain` do on their own (two calls of the budget). score_run asks for it and
    answers both from the store, so its summary counts them as reused."""

    def __post_init__(self) -> None:
        _check(0 <= self.random_fraction <= 1,
               f"smash: random_fraction = {self.random_fraction}; allowed [0, 1]")
        for field in ("n_random", "n_perturb", "n_chain"):
            n = getattr(self, field)
            _check(n is None or n >= 0, f"smash: {field} = {n}; must be >= 0")

    def plan(self, budget: int) -> tuple[int, int, int]:
        """Archs for the random stage, neighbours to perturb, steps of the chain."""
        # At least one random arch, so the local stages have a start.
        n_random = self.n_random if self.n_random is not None else min(
            budget, max(1, round(self.random_fraction * budget)))
        rest = max(0, budget - n_random - 2 * self.rescore_starts)
        n_perturb = self.n_perturb if self.n_perturb is not None else rest // 2
        n_chain = self.n_chain if self.n_chain is not None else rest - n_perturb
        return n_random, n_perturb, n_chain

    def run(self, space: SpaceConfig, rng: Rng, score: ScoreFn, size: SizeFn, budget: int,
            batch: BatchScoreFn | None = None) -> list[Evaluated]:
        ledger = _Ledger(score, budget)
        rngs = stage_rng(rng)
        n_random, n_perturb, n_chain = self.plan(budget)
        sample = list(random_archs(space, rngs("random"), n_random))
        full = [ev for ev in ledger.evaluate_all(sample, "random", batch) if math.isfinite(ev.score)]
        if not full or not (n_perturb or n_chain):
            return ledger.log
        best = best_of(full)
        top, top_score = perturb(best.arch, space, rngs("perturb"), n_perturb, ledger,
                                 ledger.batch_fn(batch), self.mutation_rate,
                                 best_score=None if self.rescore_starts else best.score)
        greedy_chain(top, space, rngs("chain"), n_chain, ledger, self.mutation_rate,
                     start_score=None if self.rescore_starts else top_score)
        return ledger.log


@dataclass(frozen=True)
class RegularizedEvolution:
    """Aging evolution (Real et al. 2019): tournament selection, mutation, oldest dies.

    Removing the oldest rather than the worst keeps a lucky early score from ruling
    the population forever, which matters because SMASH scores are noisy.
    """

    name: ClassVar[str] = "evolution"
    stages: ClassVar[tuple[str, ...]] = ("evolution",)
    population: int = 20
    tournament: int = 5
    """Members drawn per cycle; the best becomes the parent. 1 removes selection pressure."""

    def __post_init__(self) -> None:
        _check(self.population >= 1, f"evolution: population = {self.population}; must be >= 1")
        _check(1 <= self.tournament <= self.population,
               f"evolution: tournament = {self.tournament}; allowed 1..population ({self.population})")

    def run(self, space: SpaceConfig, rng: Rng, score: ScoreFn, size: SizeFn, budget: int,
            batch: BatchScoreFn | None = None) -> list[Evaluated]:
        # Each child depends on the scores before it: nothing to batch.
        rng = stage_rng(rng)(self.name)
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
    stages: ClassVar[tuple[str, ...]] = ("pareto",)
    initial: int = 10
    """Random archs scored before mutation starts."""
    explore: float = 0.1

    def __post_init__(self) -> None:
        _check(self.initial >= 1, f"pareto: initial = {self.initial}; must be >= 1")
        _check(0 <= self.explore <= 1, f"pareto: explore = {self.explore}; allowed [0, 1]")

    def run(self, space: SpaceConfig, rng: Rng, score: ScoreFn, size: SizeFn, budget: int,
            batch: BatchScoreFn | None = None) -> list[Evaluated]:
        # Each step depends on the archive so far: nothing to batch.
        rng = stage_rng(rng)(self.name)
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
"""Every search strategy by name; a new one is one entry here, and its stages follow."""

PROBE_STAGE = "probe"
"""The probe set's stage: fixed archs scored at every checkpoint (engine/scoring/probe.py)."""
SEARCH_STAGES = tuple(dict.fromkeys(stage for cls in STRATEGIES.values() for stage in cls.stages))
"""The stages a search writes scores under, from the registered strategies."""
STAGES = (*SEARCH_STAGES, PROBE_STAGE)
"""Every stage a score can carry: the store accepts these, the views filter by them."""


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

