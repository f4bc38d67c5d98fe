"""Search strategies over SMASH scores: the authors' random sampling, perturbation of the
best, and a greedy chain. Each is a plain function of a score function and an rng, so
the same strategies run against a synthetic score in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from engine.config import SpaceConfig
from engine.search_space import Arch, mutate, sample_arch

ScoreFn = Callable[[Arch, str], float]
"""Score an Arch found by the named stage; lower is better."""


def random_archs(space: SpaceConfig, rng: np.random.Generator, n: int) -> Iterator[Arch]:
    for _ in range(n):
        yield sample_arch(space, rng, progress=1.0)


def perturb(best: Arch, space: SpaceConfig, rng: np.random.Generator, n: int,
            score: ScoreFn) -> tuple[Arch, float]:
    """Score `n` neighbours of `best`; return the best of them (or `best` itself)."""
    found, found_score = best, score(best, "perturb")
    for _ in range(n):
        cand = mutate(best, space, rng)
        s = score(cand, "perturb")
        if s < found_score:
            found, found_score = cand, s
    return found, found_score


def greedy_chain(start: Arch, space: SpaceConfig, rng: np.random.Generator, steps: int,
                 score: ScoreFn) -> tuple[Arch, float]:
    """Walk from `start`, moving to a neighbour whenever it scores better."""
    current, current_score = start, score(start, "chain")
    for _ in range(steps):
        cand = mutate(current, space, rng)
        s = score(cand, "chain")
        if s < current_score:
            current, current_score = cand, s
    return current, current_score
