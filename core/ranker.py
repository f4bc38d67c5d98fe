"""A ranker learned from a run's own retrains, offered only where it ranks better than SMASH.

Once a run has retrained a few architectures, their validation errors say how far the
SMASH score, and the sizes beside it, predict the truth on this data. The ranker is a
ridge regression (scikit-learn, standardised features, the penalty chosen by its own
cross-validation) from the features every scored arch has (the SMASH score, log params,
log FLOPs; NASWOT where the caller has it) to the retrained validation error. Its worth
is its leave-one-out Spearman: each retrained arch predicted by a ranker fitted without
it, set beside each single predictor's Spearman on the same archs. It is offered only
when that beats the SMASH score's; otherwise the reason says why.

What to retrain next: archs that teach the ranker most are those unlike every arch
already retrained, so the suggestion is a farthest-point pick in the ranked feature space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from core.rankstats import bootstrap_ci, spearman

MIN_RETRAINS = 8
"""Fewer retrained archs than this teach a four-feature ranker nothing it can be trusted with."""
ALPHAS = np.logspace(-2, 3, 11)
SINGLE = {"smash": ("score_mean", 1.0), "params": ("params", -1.0), "flops": ("flops", -1.0),
          "naswot": ("naswot", -1.0)}
"""Each single predictor: its column, and the sign that makes lower predict lower error."""


def features(frame: pd.DataFrame, use_naswot: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    """The ranker's inputs per row: SMASH score, log params, log FLOPs (and NASWOT)."""
    cols = {"smash score": frame["score_mean"].to_numpy(float),
            "log params": np.log(frame["params"].to_numpy(float).clip(1)),
            "log FLOPs": np.log(frame["flops"].to_numpy(float).clip(1))}
    if use_naswot:
        cols["NASWOT"] = frame["naswot"].to_numpy(float)
    return np.column_stack(list(cols.values())), tuple(cols)


@dataclass(frozen=True)
class RankerFit:
    """A ranker fitted on a run's retrains, with what it is worth."""

    n: int
    """Retrained archs it learned from."""
    features: tuple[str, ...]
    loo: tuple[float, float, float]
    """Its leave-one-out Spearman with the truth: (estimate, 95% interval low, high)."""
    single: dict[str, tuple[float, float, float]]
    """Each single predictor's Spearman on the same archs, with its interval."""
    offered: bool
    reason: str
    model: Pipeline | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"learned from {self.n} retrains"

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted validation error of each row (lower is better)."""
        if self.model is None:
            raise ValueError(self.reason)
        return self.model.predict(features(frame, "NASWOT" in self.features)[0])

    def summary(self) -> dict[str, Any]:
        """What a page or a JSON document shows: the figures, the decision and why."""
        return {"n": self.n, "features": list(self.features), "label": self.label,
                "loo_spearman": _plain(self.loo), "single_spearman": {k: _plain(v) for k, v in self.single.items()},
                "offered": self.offered, "reason": self.reason}


def _plain(values: Sequence[float]) -> list[float | None]:
    """JSON-ready numbers: NaN (a figure that could not be computed) as None."""
    return [float(v) if np.isfinite(v) else None for v in values]


def _usable(frame: pd.DataFrame) -> pd.DataFrame:
    need = ["score_mean", "params", "flops", "val_error"]
    ok = frame[need].notna().all(axis=1) & np.isfinite(frame[need].to_numpy(float)).all(axis=1)
    return frame[ok].reset_index(drop=True)


def fit_ranker(retrained: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> RankerFit:
    """Fit on `retrained` (one row per arch: score_mean, params, flops, val_error, and
    naswot if every row has it) and judge it by leave-one-out against the SMASH score."""
    frame = _usable(retrained)
    n = len(frame)
    if n < MIN_RETRAINS:
        return RankerFit(n, (), (np.nan,) * 3, {}, False,
                         f"needs at least {MIN_RETRAINS} retrained architectures; the run has {n}")
    use_naswot = "naswot" in frame and frame["naswot"].notna().all()
    x, names = features(frame, use_naswot)
    y = frame["val_error"].to_numpy(float)
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))
    held_out = cross_val_predict(model, x, y, cv=LeaveOneOut())
    loo = bootstrap_ci(spearman, held_out, y, n_boot=n_boot, seed=seed)
    single = {name: bootstrap_ci(spearman, sign * frame[col].to_numpy(float), y, n_boot=n_boot, seed=seed)
              for name, (col, sign) in SINGLE.items() if col in frame and frame[col].notna().all()}
    smash = single["smash"][0]
    offered = bool(np.isfinite(loo[0]) and loo[0] > smash)
    verdict = "beats" if offered else "does not beat"
    reason = (f"learned from {n} retrains: its leave-one-out Spearman {loo[0]:.2f} {verdict} "
              f"the SMASH score's {smash:.2f} on the same archs")
    return RankerFit(n, names, loo, single, offered, reason, model.fit(x, y))


def suggest_retrains(board: pd.DataFrame, retrained: Sequence[str], k: int = 3) -> list[str]:
    """`k` arch ids of `board` (score_mean, params, flops) to retrain next: each in turn the
    arch farthest, in ranks of SMASH score and log FLOPs, from every arch retrained or
    already suggested, so the retrains spread over the score and size ranges."""
    frame = board.dropna(subset=["score_mean", "flops"]).reset_index(drop=True)
    if frame.empty or k < 1:
        return []
    pts = np.column_stack([frame["score_mean"].rank(pct=True), np.log(frame["flops"].clip(1)).rank(pct=True)])
    taken = frame["arch_id"].isin(set(retrained)).to_numpy(copy=True)
    picks: list[str] = []
    for _ in range(min(k, int((~taken).sum()))):
        if taken.any():
            dist = np.min(np.linalg.norm(pts[:, None, :] - pts[taken][None, :, :], axis=2), axis=1)
        else:  # nothing retrained yet: start from the best-scored
            dist = -frame["score_mean"].rank().to_numpy(dtype=float, copy=True)
        dist[taken] = -np.inf
        best = int(np.argmax(dist))
        picks.append(str(frame.loc[best, "arch_id"]))
        taken[best] = True
    return picks


def rank_board(board: pd.DataFrame) -> tuple[RankerFit, pd.DataFrame]:
    """A ranker fitted on the board's retrained archs (`board`: Store.board_features), and
    the board with each arch's `predicted` error where the ranker is offered."""
    fit = fit_ranker(board[board["val_error"].notna()])
    return fit, board.assign(predicted=fit.predict(board)) if fit.offered else board


def learned_pick(fit: RankerFit, board: pd.DataFrame) -> dict[str, Any] | None:
    """The arch the offered ranker predicts best, with why (None where it is not offered)."""
    if not fit.offered or "predicted" not in board or board.empty:
        return None
    row = board.loc[board["predicted"].idxmin()]
    return {**row.to_dict(), "reason": f"best predicted error, {fit.label} (leave-one-out Spearman "
                                       f"{fit.loo[0]:.2f} against the SMASH score's {fit.single['smash'][0]:.2f})"}
