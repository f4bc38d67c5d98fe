"""How a study judges the SMASH score against the truth: torch-free arithmetic on a frame of
study archs, one row each.

engine/study.py fills the frame from the store (scores, sizes, each retrain seed's
validation error at each rung of the truth ladder); bench/fidelity.py fills it from its
CSV as well, so every figure can be rebuilt from the published per-arch numbers. Every
predictor is oriented so that lower predicts lower error; each figure comes with a
percentile bootstrap interval, and each rung with the truth's own seed-to-seed ceiling.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from core.jobs import CorrelateError, check_predictors
from core.ranker import fit_ranker
from core.rankstats import (
    bootstrap_ci,
    bootstrap_partial,
    ceiling_of_mean,
    correlation_table,
    rank_average,
    spearman,
)

COLUMNS = {"smash": ("score_mean", 1.0), "params": ("params", -1.0), "flops": ("flops", -1.0),
           "naswot": ("naswot", -1.0)}
"""Each predictor's column and the sign that makes lower predict lower error: the SMASH
score; minus params and minus FLOPs (bigger predicts better); minus the NASWOT
log-determinant, a training-free proxy (engine/scoring/proxy.py)."""
COMBINED = {"smash+flops": ("smash", "flops")}
"""Rank averages reported beside the single predictors (core.rankstats.rank_average)."""
GIVEN = ("flops", "params")
"""What the SMASH score's partial Spearman holds fixed: does it say more than size does?"""
LEARNED = "learned"


def predictor_values(frame: pd.DataFrame, names: list[str] | tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each named predictor's value per row of `frame`, lower predicting lower error."""
    check_predictors(names)
    out = {}
    for name in names:
        col, sign = COLUMNS[name]
        if col not in frame:
            raise CorrelateError(f"the {name} predictor needs a {col!r} column (for naswot: the run's data)")
        out[name] = sign * frame[col].to_numpy(float)
    return out


def study_metrics(frame: pd.DataFrame, predictors: dict[str, np.ndarray], seeds: list[int],
                  top_k: int | None = None, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Each predictor against the truth (`val_error`, the mean over seeds) with bootstrap 95%
    intervals, and the truth's own seed-to-seed Spearman (the ceiling any predictor faces)."""
    ok = frame["val_error"].notna().to_numpy()
    truth = frame["val_error"].to_numpy(float)[ok]
    k = top_k or max(1, int(ok.sum()) // 4)
    tables = {name: correlation_table(values[ok], truth, k=k, n_boot=n_boot, seed=seed)
              for name, values in predictors.items()}
    ceiling = None
    if len(seeds) >= 2:
        a = frame[f"val_error_s{seeds[0]}"].to_numpy(float)[ok]
        b = frame[f"val_error_s{seeds[1]}"].to_numpy(float)[ok]
        est, lo, hi = bootstrap_ci(spearman, a, b, n_boot=n_boot, seed=seed)
        ceiling = {"spearman": est, "spearman_ci": [lo, hi], "seeds": seeds[:2],
                   "of_mean": ceiling_of_mean(est, len(seeds))}
    return {"truth": "val_error", "n": int(ok.sum()), "k": k, "seeds": seeds,
            "predictors": tables, "ceiling": ceiling}


def _r(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 3)


def compact(table: list[dict]) -> dict[str, Any]:
    """spearman, spearman_ci, kendall, kendall_ci, topk_precision from a correlation table."""
    by = {row["metric"].split()[0].lower(): row for row in table}
    topk = next(row for row in table if row["metric"].startswith("top-"))
    return {"spearman": _r(by["spearman"]["estimate"]),
            "spearman_ci": [_r(by["spearman"]["ci_low"]), _r(by["spearman"]["ci_high"])],
            "kendall": _r(by["kendall"]["estimate"]),
            "kendall_ci": [_r(by["kendall"]["ci_low"]), _r(by["kendall"]["ci_high"])],
            "topk_precision": _r(topk["estimate"]), "topk": topk["metric"]}


def rung_metrics(frame: pd.DataFrame, names: list[str] | tuple[str, ...], seeds: list[int],
                 top_k: int | None = None, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """One rung of a truth ladder, compact: every predictor (the singles, their rank
    averages, and the ranker learned from these very retrains, judged leave-one-out), the
    SMASH score's partial Spearman given each size, and the ceiling. `frame` holds the
    rung's truth as `val_error` (and `val_error_s{seed}`)."""
    frame = frame[frame["val_error"].notna()].reset_index(drop=True)
    values = predictor_values(frame, names)
    for combo, parts in COMBINED.items():
        if all(p in values for p in parts):
            values[combo] = rank_average(*(values[p] for p in parts))
    base = study_metrics(frame, values, seeds, top_k, n_boot, seed)
    out = {"n": base["n"], "k": base["k"],
           "predictors": {name: compact(table) for name, table in base["predictors"].items()}}
    truth = frame["val_error"].to_numpy(float)
    learned = fit_ranker(frame, n_boot, seed)
    if learned.n:
        lo_hi = [_r(learned.loo[1]), _r(learned.loo[2])]
        out["predictors"][LEARNED] = {"spearman": _r(learned.loo[0]), "spearman_ci": lo_hi,
                                      "features": list(learned.features)}
    if "smash" in values:
        out["partial"] = {}
        for given in GIVEN:
            if given in values:
                est, lo, hi = bootstrap_partial(values["smash"], truth, values[given], n_boot, seed=seed)
                out["partial"][f"smash | {given}"] = {"spearman": _r(est), "spearman_ci": [_r(lo), _r(hi)]}
    ceiling = base["ceiling"]
    out["ceiling"] = _r(ceiling["spearman"]) if ceiling else None
    out["ceiling_ci"] = [_r(v) for v in ceiling["spearman_ci"]] if ceiling else None
    out["ceiling_of_mean"] = _r(ceiling["of_mean"]) if ceiling and ceiling["of_mean"] is not None else None
    return out


def best_sort(rung: dict[str, Any]) -> tuple[str, float | None]:
    """The predictor with the highest Spearman at a rung, and that Spearman as a share of
    what a perfect predictor can expect against the truth (the ceiling of the seeds' mean)."""
    name, row = max(rung["predictors"].items(), key=lambda kv: kv[1].get("spearman") or -9)
    ceiling = rung.get("ceiling_of_mean")
    share = row["spearman"] / ceiling if ceiling and row.get("spearman") is not None else None
    return name, _r(share)


def ladder_text(rungs: list[dict[str, Any]], markdown: bool = False) -> str:
    """The ladder as a text table (or a Markdown one): one row per rung, each predictor's
    Spearman [95% interval], the SMASH score's partial Spearman given FLOPs, and the ceiling."""
    names = list(dict.fromkeys(p for r in rungs for p in r["predictors"]))
    cell = lambda row: "–" if not row or row.get("spearman") is None else (  # noqa: E731
        f"{row['spearman']:+.2f} [{row['spearman_ci'][0]:+.2f},{row['spearman_ci'][1]:+.2f}]"
        if None not in row["spearman_ci"] else f"{row['spearman']:+.2f}")
    head = ["truth", *names, "smash | flops", "ceiling"]
    rows = [[r["name"], *(cell(r["predictors"].get(n)) for n in names),
             cell((r.get("partial") or {}).get("smash | flops")),
             "–" if r.get("ceiling") is None else f"{r['ceiling']:+.2f}"] for r in rungs]
    if markdown:
        cells = [[str(x).replace("|", "\\|") for x in line] for line in [head, ["---"] * len(head), *rows]]
        return "\n".join("| " + " | ".join(line) + " |" for line in cells)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)) for line in [head, *rows])


def _iqr(values: np.ndarray) -> float:
    q75, q25 = np.percentile(values, [75, 25])
    return float(q75 - q25)


LSD_Z = 1.96
"""The two-sided 95% normal quantile: the least significant difference of two single
retrains is LSD_Z x sqrt(2) x the truth's seed sd (indifference_zone)."""


def _lsd(sd: float) -> float:
    """The least significant difference of two single retrains whose seed sd is `sd`."""
    return LSD_Z * math.sqrt(2) * sd


def indifference_zone(truth_by_seed: np.ndarray, scores: dict[str, np.ndarray], n_boot: int = 2000,
                      seed: int = 0) -> dict[str, Any]:
    """The score difference not worth resolving, per score metric (how core/metric.py's DELTAS
    are set), with a percentile bootstrap interval over archs.

    `truth_by_seed`: archs x seeds, each retrain's validation error at one rung (rows with a
    missing seed are left out); `scores`: metric -> each arch's mean score. The truth's noise
    is the pooled within-arch standard deviation over seeds. A user settles a choice by
    retraining the candidates, one seed each; two such retrains tell archs apart (at 95%)
    only when their true errors differ by more than LSD_Z x sqrt(2) x seed sd (the least
    significant difference of two single retrains), so a smaller difference is not worth a
    ranking's resolving either. It is put on the score's scale by the ratio of the two
    spreads (interquartile ranges over the archs):
    delta = LSD_Z x sqrt(2) x seed sd x IQR(score) / IQR(truth of the seed mean).
    """
    truth = np.asarray(truth_by_seed, float)
    if truth.ndim != 2 or truth.shape[1] < 2:
        raise CorrelateError("the indifference zone needs every arch's truth from at least two seeds")
    both = ~np.isnan(truth).any(axis=1)
    if both.sum() < 4:
        raise CorrelateError(f"the indifference zone needs at least 4 archs retrained with every seed, "
                             f"got {int(both.sum())}")
    truth = truth[both]

    def zone(rows: np.ndarray, values: np.ndarray) -> tuple[float, float, float, float | None]:
        sd = float(np.sqrt(np.mean(np.var(truth[rows], axis=1, ddof=1))))
        t_iqr, s_iqr = _iqr(truth[rows].mean(axis=1)), _iqr(values[rows])
        return sd, t_iqr, s_iqr, (_lsd(sd) * s_iqr / t_iqr if t_iqr > 0 else None)

    n = len(truth)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, n) for _ in range(n_boot)]
    everything = np.arange(n)
    sd, truth_iqr, _, _ = zone(everything, truth[:, 0])
    out: dict[str, Any] = {"archs": n, "seed_sd": round(sd, 5), "truth_iqr": round(truth_iqr, 5),
                           "truth_lsd": round(_lsd(sd), 5)}
    for metric, values in scores.items():
        values = np.asarray(values, float)[both]
        _, _, score_iqr, delta = zone(everything, values)
        boot = [d for rows in draws if (d := zone(rows, values)[3]) is not None and np.isfinite(d)]
        ci = [round(float(v), 4) for v in np.percentile(boot, [2.5, 97.5])] if boot else [None, None]
        out[metric] = {"score_iqr": round(score_iqr, 5), "delta": None if delta is None else round(delta, 4),
                       "delta_ci": ci}
    return out
