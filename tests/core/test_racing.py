"""Racing on a synthetic scorer with known noise: does it find the true best more often?"""

import math

import numpy as np
import pytest

from core.racing import Tally, race, tied_with_leader

TRUE = np.array([0.300, 0.310, 0.315, 0.330, 0.340, 0.360, 0.380, 0.400, 0.420, 0.450])
NOISE, BATCH = 0.04, 3


def draws(rng, i, n):
    return TRUE[i] + NOISE * rng.standard_normal(n)


def tally(values, first=0):
    return Tally(len(values), float(np.mean(values)), float(np.std(values, ddof=1)), first)


def one_trial(seed):
    """(racing picked the best, a single pass with the same evaluations picked it)."""
    rng = np.random.default_rng(seed)
    start = {str(i): tally(draws(rng, i, BATCH)) for i in range(len(TRUE))}
    used = [BATCH * len(TRUE)]

    def more(arch_id, first_draw):
        used[0] += BATCH
        return tally(draws(rng, int(arch_id), BATCH), first_draw)

    final = race(start, more, top=len(TRUE), max_draws=30)
    raced = min(final, key=lambda a: (final[a].mean, a)) == "0"
    per_arch = used[0] // len(TRUE)
    flat = [draws(rng, i, per_arch).mean() for i in range(len(TRUE))]
    return raced, int(np.argmin(flat)) == 0, used[0]


def test_racing_finds_the_true_best_more_often_than_a_single_pass_of_equal_cost():
    results = [one_trial(seed) for seed in range(300)]
    raced = np.mean([r for r, _, _ in results])
    flat = np.mean([f for _, f, _ in results])
    assert raced > flat + 0.05, (raced, flat)
    assert np.mean([u for _, _, u in results]) > BATCH * len(TRUE)  # it did race


def test_merge_pools_draws_exactly():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=5), rng.normal(size=7)
    merged = tally(a).merge(tally(b, first=5))
    both = np.concatenate([a, b])
    assert merged.n == 12 and merged.rounds == 1
    assert math.isclose(merged.mean, both.mean()) and math.isclose(merged.std, both.std(ddof=1))
    assert merged.next_draw == 12


def test_race_stops_when_the_leader_separates():
    far = {"a": Tally(3, 0.10, 0.001), "b": Tally(3, 0.50, 0.001)}
    calls = []
    out = race(far, lambda a, d: calls.append(a) or Tally(3, 0.1, 0.001), top=2, max_draws=12)
    assert calls == [] and out == far
    assert tied_with_leader(far, ["a", "b"]) == ["a"]


@pytest.mark.parametrize("max_draws", [6, 9])
def test_race_respects_the_draw_budget_and_resumes(max_draws):
    """Two archs that never separate stop at max_draws; a race resumed from its stored
    tallies ends where an uninterrupted one does."""
    same = {"a": Tally(3, 0.3, 0.05), "b": Tally(3, 0.3, 0.05)}

    def more(a, first):
        return Tally(3, 0.3, 0.05, first)

    full = race(same, more, top=2, max_draws=max_draws)
    assert all(t.n == max_draws for t in full.values())
    half = race(same, more, top=2, max_draws=6)
    assert race(half, more, top=2, max_draws=max_draws) == full
