"""core/metric.py: the default indifference zones are the truth ladder's, and scores read as documented."""

import json
import math
from pathlib import Path

from core.metric import DELTAS, format_score, run_metric

LADDER = Path(__file__).resolve().parents[2] / "docs" / "fidelity-ladder.json"


def test_default_deltas_are_the_truth_ladders():
    """DELTAS are set by the rule in docs/correlation.md from the committed ladder, not by hand:
    refreshing docs/fidelity-ladder.json without resetting them fails here."""
    zone = json.loads(LADDER.read_text())["delta"]
    assert zone["archs"] >= 10
    assert DELTAS == {metric: zone[metric]["delta"] for metric in DELTAS}
    for metric, value in DELTAS.items():
        lo, hi = zone[metric]["delta_ci"]
        assert lo <= value <= hi


def test_run_metric_and_format():
    assert run_metric(None) == "error"
    assert run_metric({"score": {"metric": "loss"}}) == "loss"
    assert run_metric({"score": {"metric": "nonsense"}}) == "error"
    assert format_score(0.1234, "error") == "12.34%"
    assert format_score(0.1234, "loss") == "0.1234"
    assert format_score(math.nan) == "–"
