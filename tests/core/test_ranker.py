"""The learned ranker on synthetic runs whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.ranker import MIN_RETRAINS, fit_ranker, suggest_retrains
from core.rankstats import spearman


def synthetic(n: int, smash_noise: float, seed: int = 0, size_matters: bool = True) -> pd.DataFrame:
    """Archs whose true error falls with FLOPs (when `size_matters`) plus an own part; the
    SMASH score sees the truth through `smash_noise`."""
    rng = np.random.default_rng(seed)
    flops = np.exp(rng.uniform(14, 18, n))
    params = flops / rng.uniform(100, 400, n)
    own = rng.normal(0, 0.01, n)
    truth = 0.2 + own - (0.02 * (np.log(flops) - 16) if size_matters else 0)
    score = truth + rng.normal(0, smash_noise, n)
    return pd.DataFrame({"arch_id": [f"a{i:03d}" for i in range(n)], "score_mean": score,
                         "params": params, "flops": flops, "val_error": truth})


def test_it_learns_what_size_says_and_beats_a_noisy_score():
    frame = synthetic(24, smash_noise=0.05)
    fit = fit_ranker(frame, n_boot=200)
    assert fit.n == 24 and fit.offered, fit.reason
    assert fit.loo[0] > fit.single["smash"][0] + 0.2
    assert fit.loo[0] > 0.7 and "beats" in fit.reason and fit.label == "learned from 24 retrains"
    fresh = synthetic(200, smash_noise=0.05, seed=1)  # archs it never saw
    assert spearman(fit.predict(fresh), fresh["val_error"]) > 0.7


def test_it_is_not_offered_where_it_does_not_beat_the_score():
    """Size says nothing and the score is nearly exact: nothing to learn beyond the score."""
    frame = synthetic(24, smash_noise=0.0005, size_matters=False)
    fit = fit_ranker(frame, n_boot=200)
    assert not fit.offered and "does not beat" in fit.reason
    assert fit.single["smash"][0] > 0.9


def test_too_few_retrains_is_said_plainly():
    fit = fit_ranker(synthetic(MIN_RETRAINS - 1, 0.05), n_boot=50)
    assert not fit.offered and f"at least {MIN_RETRAINS}" in fit.reason and fit.model is None


def test_suggestions_spread_away_from_what_was_retrained():
    frame = synthetic(200, smash_noise=0.05, seed=2)
    retrained = list(frame.nsmallest(5, "score_mean")["arch_id"])  # the top was retrained
    picks = suggest_retrains(frame, retrained, k=3)
    assert len(picks) == len(set(picks)) == 3 and not set(picks) & set(retrained)
    ranks = frame.set_index("arch_id")["score_mean"].rank(pct=True)
    assert max(ranks[p] for p in picks) > 0.8, "one suggestion comes from the far end of the scores"
    assert suggest_retrains(frame, [], k=1) == [frame.loc[frame["score_mean"].idxmin(), "arch_id"]]
