"""What a SMASH score measures, and how it is shown.

A score is the mean over draws of one metric of an architecture with generated weights,
on validation images: `error` (the fraction misclassified, the authors' SMASH score) or
`loss` (mean cross-entropy in nats, which moves with every image's confidence rather than
only with the argmax, so its draws are less noisy and it separates archs whose error rates
tie). Lower is better for both. The run's config ([score] metric) says which; runs stored
before the setting existed are `error`.
"""

from __future__ import annotations

import math
from typing import Any

SCORE_METRICS = ("error", "loss")

BOUNDS = {"error": (0.0, 1.0), "loss": (0.0, math.inf)}
"""Where a score can lie: an interval over draws is clipped to these."""

LABELS = {"error": "validation error, generated weights", "loss": "validation loss, generated weights"}

DELTAS = {"error": 0.0432, "loss": 0.0832}
"""Each metric's default indifference zone ([score].delta): the score difference not worth
resolving. A user settles a choice by retraining the candidates once each, and two single
retrains tell archs apart (at 95%) only when their true errors differ by more than
1.96 x sqrt(2) x the truth's seed-to-seed standard deviation; the same share of the SMASH
score's spread (the ratio of the scores' and the truths' interquartile ranges over a
study's archs) is delta. These are the truth ladder's figures at its top rung
(docs/fidelity.json `delta`, computed by core/study.py indifference_zone;
docs/correlation.md, "The indifference zone"), and tests/core/test_metric.py keeps the
two equal when the ladder is refreshed."""


def run_metric(config: dict[str, Any] | None) -> str:
    """The score metric of a stored run config (a dict as the store returns it)."""
    metric = ((config or {}).get("score") or {}).get("metric") or "error"
    return metric if metric in SCORE_METRICS else "error"


def format_score(value: float | None, metric: str = "error") -> str:
    """A score for people: a percentage for error, nats to 4 places for loss."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):.2%}" if metric == "error" else f"{float(value):.4f}"


def plotly_format(metric: str = "error") -> str:
    """d3 number format for a score axis or hover label."""
    return ".1%" if metric == "error" else ".3f"
