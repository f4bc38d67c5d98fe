"""A run's SMASH scores as the pages write them: in the run's score metric (core.metric).

An error score is a fraction shown as a percentage; a loss score is nats, shown as a
plain number. Each page reads its run's metric once (`Store.score_metric`) and hands it
down; everything here defaults to "error", so runs from before the setting look as they did.
Interval text and row marks are the shell's too: core/board.py.
"""

from __future__ import annotations

from core.metric import format_score


def with_spread(mean, std, metric: str = "error") -> str:
    """Mean ± spread over draws, both in the metric's units."""
    return f"{format_score(mean, metric)} ± {format_score(std or 0, metric)}"


def help_text(metric: str = "error") -> str:
    """What a score column holds, for its tooltip."""
    if metric == "error":
        return "Validation error with generated weights (lower is better)"
    return "Validation loss with generated weights: mean cross-entropy in nats (lower is better)"
