"""A run's SMASH scores as the pages write them: in the run's score metric (core.metric).

An error score is a fraction shown as a percentage; a loss score is nats, shown as a
plain number. Each page reads its run's metric once (`page_metric`) and hands it down;
everything here defaults to "error", so runs from before the setting look as they did.
"""

from __future__ import annotations

import pandas as pd

from core.metric import format_score, plotly_format, run_metric
from store import Store

MISSING = "–"


def page_metric(store: Store, run_id: str) -> str:
    """The score metric of a stored run ("error" for a run the store does not know)."""
    return run_metric((store.get_run(run_id) or {}).get("config"))


def interval(lo, hi, metric: str = "error", sep: str = " – ") -> str:
    """A score interval, one place coarser than the score itself: 85.1% – 88.9%, or 0.912 – 0.951."""
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return MISSING
    spec = plotly_format(metric)  # ".1%" or ".3f": valid Python format specs as well
    return f"{float(lo):{spec}}{sep}{float(hi):{spec}}"


def with_spread(mean, std, metric: str = "error") -> str:
    """Mean ± spread over draws, both in the metric's units."""
    return f"{format_score(mean, metric)} ± {format_score(std or 0, metric)}"


def help_text(metric: str = "error") -> str:
    """What a score column holds, for its tooltip."""
    if metric == "error":
        return "Validation error with generated weights (lower is better)"
    return "Validation loss with generated weights: mean cross-entropy in nats (lower is better)"
