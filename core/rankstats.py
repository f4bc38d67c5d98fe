"""Does the SMASH score rank architectures like their true error? Numbers that answer it.

SMASH is only useful if a cheap score (validation error with HyperNet weights) orders
architectures the way their error after full training does. Rank correlations say how
well the whole order agrees; top-k precision and regret say what a user who retrains
only the k best-scored candidates loses. Lower is better for both score and truth.

Retrained samples are small (tens of archs), so every number comes with a percentile
bootstrap interval over (score, truth) pairs. numpy and scipy only: the dashboard
imports this module and must not pull in torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

Metric = Callable[[np.ndarray, np.ndarray], float]


def _pairs(score: Sequence[float], truth: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(score, dtype=float).ravel()
    t = np.asarray(truth, dtype=float).ravel()
    if s.shape != t.shape:
        raise ValueError(f"score and truth differ in length ({s.size} vs {t.size})")
    return s, t


def _degenerate(s: np.ndarray, t: np.ndarray) -> bool:
    """A correlation is undefined with fewer than 2 pairs or a constant side."""
    return s.size < 2 or np.ptp(s) == 0 or np.ptp(t) == 0


def spearman(score: Sequence[float], truth: Sequence[float]) -> float:
    s, t = _pairs(score, truth)
    return float("nan") if _degenerate(s, t) else float(stats.spearmanr(s, t).statistic)


def kendall(score: Sequence[float], truth: Sequence[float]) -> float:
    """Kendall's tau-b, which corrects for the ties that coarse error rates produce."""
    s, t = _pairs(score, truth)
    return float("nan") if _degenerate(s, t) else float(stats.kendalltau(s, t).statistic)


def pearson(score: Sequence[float], truth: Sequence[float]) -> float:
    # Computed directly rather than through scipy: the bootstrap calls it thousands of times.
    s, t = _pairs(score, truth)
    if _degenerate(s, t):
        return float("nan")
    sc, tc = s - s.mean(), t - t.mean()
    return float(np.clip((sc @ tc) / np.sqrt((sc @ sc) * (tc @ tc)), -1.0, 1.0))


def _best(values: np.ndarray, k: int) -> np.ndarray:
    # Stable sort so ties break by position, the same way every call.
    return np.argsort(values, kind="stable")[:k]


def _check_k(k: int, n: int) -> int:
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    return min(k, n)


def top_k_precision(score: Sequence[float], truth: Sequence[float], k: int) -> float:
    """Fraction of the k best by score that are also among the k best by truth."""
    s, t = _pairs(score, truth)
    if s.size == 0:
        return float("nan")
    k = _check_k(k, s.size)
    return len(set(_best(s, k).tolist()) & set(_best(t, k).tolist())) / k


def regret(score: Sequence[float], truth: Sequence[float], k: int) -> float:
    """Best truth among the k best by score, minus the best truth overall (0 is perfect).

    What retraining only the k top-scored candidates costs compared with retraining all.
    """
    s, t = _pairs(score, truth)
    if s.size == 0:
        return float("nan")
    k = _check_k(k, s.size)
    return float(t[_best(s, k)].min() - t.min())


def bootstrap_ci(fn: Metric, score: Sequence[float], truth: Sequence[float], n_boot: int = 1000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(estimate on the data, lower, upper): a percentile bootstrap resampling pairs.

    Resamples where the metric is undefined (all pairs equal) are dropped; if none is
    defined, the interval is (nan, nan).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    s, t = _pairs(score, truth)
    return _percentile(fn, (s, t), 2, n_boot, level, seed)


def _percentile(fn: Callable[..., float], columns: tuple[np.ndarray, ...], least: int, n_boot: int,
                level: float, seed: int) -> tuple[float, float, float]:
    """(fn on the columns, lower, upper): a percentile bootstrap resampling rows of the
    columns together; no interval under `least` rows, and resamples where fn is undefined
    are dropped."""
    n = columns[0].size
    estimate = float(fn(*columns)) if n else float("nan")
    if n < least:
        return estimate, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    draws = np.array([fn(*(c[i] for c in columns)) for i in idx], dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return estimate, float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    return estimate, float(lo), float(hi)


def correlation_table(score: Sequence[float], truth: Sequence[float], k: int, n_boot: int = 1000,
                      level: float = 0.95, seed: int = 0) -> list[dict]:
    """One row per metric: name, estimate, interval, sample size and which way is better."""
    s, t = _pairs(score, truth)
    k = max(1, min(k, s.size)) if s.size else k
    metrics: list[tuple[str, Metric, str]] = [
        ("Spearman rho", spearman, "higher"),
        ("Kendall tau", kendall, "higher"),
        ("Pearson r", pearson, "higher"),
        (f"top-{k} precision", lambda a, b: top_k_precision(a, b, k), "higher"),
        (f"regret@{k}", lambda a, b: regret(a, b, k), "lower"),
    ]
    rows = []
    for name, fn, better in metrics:
        est, lo, hi = bootstrap_ci(fn, s, t, n_boot=n_boot, level=level, seed=seed)
        rows.append({"metric": name, "estimate": est, "ci_low": lo, "ci_high": hi,
                     "n": int(s.size), "better": better})
    return rows


def rank_stability(steps: Sequence[int], arch_ids: Sequence[str], scores: Sequence[float]) -> list[dict]:
    """Kendall tau of the probe set's ranking between each checkpoint and the one before.

    Rows are (checkpoint step, arch, score) in any order; only archs scored at both
    checkpoints are compared.
    """
    by_step: dict[int, dict[str, float]] = {}
    for step, arch, score in zip(steps, arch_ids, scores, strict=True):
        by_step.setdefault(int(step), {})[str(arch)] = float(score)
    ordered = sorted(by_step)
    out = []
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        common = sorted(set(by_step[prev]) & set(by_step[cur]))
        tau = kendall([by_step[prev][a] for a in common], [by_step[cur][a] for a in common]) \
            if len(common) >= 2 else float("nan")
        out.append({"step": cur, "previous_step": prev, "kendall_tau": tau, "n": len(common)})
    return out


def ceiling_of_mean(r: float, seeds: int) -> float | None:
    """The Spearman a perfect predictor can expect against the mean of `seeds` seeds of a
    truth whose seed-to-seed Spearman is `r`: the square root of the mean's reliability
    (Spearman-Brown, seeds * r / (1 + (seeds - 1) * r)). None where r is not positive."""
    if not np.isfinite(r) or r <= 0 or seeds < 1:
        return None
    return float(np.sqrt(seeds * r / (1 + (seeds - 1) * r)))


def mean_interval(mean: float, std: float, n: int, level: float = 0.95,
                  bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float | None, float | None]:
    """Student-t interval of a mean of `n` draws with sample spread `std` (None for n < 2),
    clipped to `bounds` (an error rate cannot leave [0, 1], however few the draws)."""
    if n < 2 or not np.isfinite(std):
        return None, None
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / np.sqrt(n)
    return max(mean - half, bounds[0]), min(mean + half, bounds[1])


def partial_spearman(score: Sequence[float], truth: Sequence[float], given: Sequence[float]) -> float:
    """Spearman of score with truth once `given` is held fixed: the Pearson partial
    correlation of the three rank vectors. What a score says about the truth beyond what
    `given` (FLOPs, params) already says; 0 when it adds nothing."""
    s, t = _pairs(score, truth)
    g = np.asarray(given, dtype=float).ravel()
    if g.shape != s.shape:
        raise ValueError(f"given differs in length from score ({g.size} vs {s.size})")
    if _degenerate(s, t) or np.ptp(g) == 0:
        return float("nan")
    r_st, r_sg, r_tg = spearman(s, t), spearman(s, g), spearman(t, g)
    denom = np.sqrt((1 - r_sg**2) * (1 - r_tg**2))
    return float((r_st - r_sg * r_tg) / denom) if denom > 1e-6 else float("nan")


def bootstrap_partial(score: Sequence[float], truth: Sequence[float], given: Sequence[float],
                      n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """partial_spearman with a percentile bootstrap interval over (score, truth, given) triples."""
    s, t = _pairs(score, truth)
    g = np.asarray(given, dtype=float).ravel()
    if g.shape != s.shape:
        raise ValueError(f"given differs in length from score ({g.size} vs {s.size})")
    return _percentile(partial_spearman, (s, t, g), 3, n_boot, level, seed)


def rank_average(*predictors: Sequence[float]) -> np.ndarray:
    """The mean of the predictors' ranks (each oriented lower-is-better): a predictor that
    weighs each of them alike whatever its units."""
    if not predictors:
        raise ValueError("rank_average needs at least one predictor")
    return np.mean([stats.rankdata(np.asarray(p, dtype=float)) for p in predictors], axis=0)
