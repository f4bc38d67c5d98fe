"""engine.rankstats: each metric against scipy or a hand count, and honest intervals."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from scipy import stats

from core import rankstats as rs


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    score = rng.normal(size=40)
    truth = 0.6 * score + rng.normal(scale=0.8, size=40)
    return score, truth


def test_correlations_match_scipy(data):
    score, truth = data
    assert rs.spearman(score, truth) == pytest.approx(stats.spearmanr(score, truth).statistic)
    assert rs.kendall(score, truth) == pytest.approx(stats.kendalltau(score, truth).statistic)
    assert rs.pearson(score, truth) == pytest.approx(stats.pearsonr(score, truth).statistic)


def test_correlations_with_ties_match_scipy():
    score = [0.1, 0.1, 0.3, 0.2, 0.5, 0.5]
    truth = [0.2, 0.3, 0.3, 0.1, 0.6, 0.4]
    assert rs.spearman(score, truth) == pytest.approx(stats.spearmanr(score, truth).statistic)
    assert rs.kendall(score, truth) == pytest.approx(stats.kendalltau(score, truth).statistic)


def test_undefined_correlations_are_nan():
    assert math.isnan(rs.spearman([1.0], [2.0]))
    assert math.isnan(rs.pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(rs.kendall([1.0, 2.0], [3.0, 3.0]))


def test_top_k_precision_counts_overlap():
    score = [0.1, 0.2, 0.3, 0.4, 0.5]
    truth = [0.1, 0.5, 0.2, 0.3, 0.4]  # best by truth: 0, 2, 3
    assert rs.top_k_precision(score, truth, 1) == 1.0
    assert rs.top_k_precision(score, truth, 2) == 0.5  # {0,1} vs {0,2}
    assert rs.top_k_precision(score, truth, 3) == pytest.approx(2 / 3)
    assert rs.top_k_precision(score, truth, 10) == 1.0  # k clipped to n


def test_regret_is_best_truth_in_top_k_minus_best():
    score = [0.1, 0.2, 0.3, 0.4]
    truth = [0.5, 0.4, 0.1, 0.3]
    assert rs.regret(score, truth, 1) == pytest.approx(0.4)
    assert rs.regret(score, truth, 2) == pytest.approx(0.3)
    assert rs.regret(score, truth, 3) == pytest.approx(0.0)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="length"):
        rs.spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="k must"):
        rs.top_k_precision([1, 2], [1, 2], 0)
    with pytest.raises(ValueError, match="level"):
        rs.bootstrap_ci(rs.pearson, [1, 2, 3], [1, 2, 3], level=1.5)


def test_bootstrap_is_seeded_and_brackets_estimate(data):
    score, truth = data
    a = rs.bootstrap_ci(rs.spearman, score, truth, n_boot=300, seed=3)
    b = rs.bootstrap_ci(rs.spearman, score, truth, n_boot=300, seed=3)
    assert a == b
    est, lo, hi = a
    assert lo <= est <= hi
    assert est == pytest.approx(rs.spearman(score, truth))


def test_bootstrap_of_tiny_sample_has_no_interval():
    est, lo, hi = rs.bootstrap_ci(rs.spearman, [0.3], [0.2])
    assert math.isnan(est) and math.isnan(lo) and math.isnan(hi)


def test_intervals_cover_true_rho_at_nominal_rate():
    """200 seeded samples of 50 pairs with Pearson rho 0.6: the 95% interval should
    cover 0.6 about 95% of the time (percentile bootstraps run a little under)."""
    rho, n, trials = 0.6, 50, 200
    rng = np.random.default_rng(2024)
    cov = [[1.0, rho], [rho, 1.0]]
    covered = 0
    for trial in range(trials):
        xy = rng.multivariate_normal([0.0, 0.0], cov, size=n)
        _, lo, hi = rs.bootstrap_ci(rs.pearson, xy[:, 0], xy[:, 1], n_boot=200, seed=trial)
        covered += lo <= rho <= hi
    rate = covered / trials
    print(f"coverage {rate:.3f}", file=sys.stderr)
    assert 0.88 <= rate <= 0.99


def test_correlation_table_rows(data):
    score, truth = data
    rows = rs.correlation_table(score, truth, k=5, n_boot=100)
    names = [r["metric"] for r in rows]
    assert names == ["Spearman rho", "Kendall tau", "Pearson r", "top-5 precision", "regret@5"]
    for row in rows:
        assert row["n"] == 40
        assert row["ci_low"] <= row["estimate"] <= row["ci_high"] or row["metric"].startswith("regret")
    empty = rs.correlation_table([], [], k=5, n_boot=10)
    assert all(math.isnan(r["estimate"]) for r in empty)


def test_rank_stability_compares_consecutive_checkpoints():
    steps = [10, 10, 10, 20, 20, 20, 30, 30]
    archs = ["a", "b", "c", "a", "b", "c", "a", "c"]
    scores = [0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.4, 0.3]
    rows = rs.rank_stability(steps, archs, scores)
    assert [(r["previous_step"], r["step"], r["n"]) for r in rows] == [(10, 20, 3), (20, 30, 2)]
    assert rows[0]["kendall_tau"] == pytest.approx(1.0)
    assert rows[1]["kendall_tau"] == pytest.approx(-1.0)  # a and c swapped order


def test_mean_interval_is_student_t_and_clipped_to_bounds():
    from core.rankstats import mean_interval

    lo, hi = mean_interval(0.3, 0.02, 3)
    assert (lo, hi) == pytest.approx((0.3 - 4.303 * 0.02 / 3**0.5, 0.3 + 4.303 * 0.02 / 3**0.5), abs=1e-4)
    assert mean_interval(0.3, 0.02, 1) == (None, None)
    assert mean_interval(0.05, 0.2, 2, bounds=(0.0, 1.0))[0] == 0.0


def test_ceiling_of_the_seed_mean_is_spearman_brown():
    assert rs.ceiling_of_mean(0.5, 2) == pytest.approx((2 * 0.5 / 1.5) ** 0.5)
    assert rs.ceiling_of_mean(0.5, 1) == pytest.approx(0.5 ** 0.5)
    assert rs.ceiling_of_mean(1.0, 3) == pytest.approx(1.0)
    assert rs.ceiling_of_mean(-0.1, 2) is None and rs.ceiling_of_mean(float("nan"), 2) is None


def test_partial_spearman_removes_what_the_covariate_explains():
    """Score and truth both follow size: a strong raw Spearman, a partial near 0. Once the
    score also carries what the truth has beyond size, the partial is clearly positive."""
    from core.rankstats import bootstrap_partial, partial_spearman, spearman

    rng = np.random.default_rng(0)
    size = rng.normal(size=400)
    own = rng.normal(size=400)  # what the truth has beyond size
    truth = size + own
    only_size = size + 0.3 * rng.normal(size=400)
    assert spearman(only_size, truth) > 0.5
    assert abs(partial_spearman(only_size, truth, size)) < 0.15
    knows_more = size + own + 0.3 * rng.normal(size=400)
    est, lo, hi = bootstrap_partial(knows_more, truth, size, n_boot=300)
    assert est > 0.8 and lo > 0.7 and lo <= est <= hi
    # Exact case: with the covariate's ranks equal to the score's, nothing is left to explain.
    assert np.isnan(partial_spearman(size, truth, size))


def test_rank_average_weighs_predictors_alike():
    from core.rankstats import rank_average

    a, b = [1.0, 2.0, 3.0, 4.0], [400.0, 300.0, 200.0, 100.0]
    assert rank_average(a, b).tolist() == [2.5, 2.5, 2.5, 2.5]
    assert rank_average(a, a).tolist() == [1.0, 2.0, 3.0, 4.0]
