"""core/metric.py: the default indifference zones are the truth ladder's, and scores read as documented."""

import json
import math
from pathlib import Path

from core.metric import DELTAS, format_score, run_metric

STUDY_JSON = Path(__file__).resolve().parents[2] / "docs" / "fidelity.json"


def test_default_deltas_are_the_truth_ladders():
    """DELTAS are set by the rule in docs/correlation.md from the committed ladder, not by hand:
    refreshing docs/fidelity.json without resetting them fails here."""
    zone = json.loads(STUDY_JSON.read_text())["delta"]
    assert zone["archs"] >= 10
    assert DELTAS == {metric: zone[metric]["delta"] for metric in DELTAS}
    for metric, value in DELTAS.items():
        lo, hi = zone[metric]["delta_ci"]
        assert lo <= value <= hi


STUDY_KEYS = {"run_id", "study_id", "n_archs", "sample", "truth", "hypernet_steps", "k", "score", "smash", "params",
              "flops", "naswot", "ceiling", "ceiling_ci", "ceiling_of_mean", "stability", "smash_2_hypernets",
              "hypernets", "rewards", "loss_vs_error", "ablations", "seconds"}


def test_the_committed_study_is_the_ladder_with_the_400_step_truth_beside_it():
    """docs/fidelity.json keeps every key the 400-step study had and gains the ladder's rungs,
    cheapest first, the short truth earlier studies used among them."""
    study = json.loads(STUDY_JSON.read_text())
    assert STUDY_KEYS | {"rungs", "partial", "best_sort", "delta"} <= set(study)
    names = [rung["name"] for rung in study["rungs"]]
    assert names == ["400 steps", "1 epoch", "2 epochs", "4 epochs", "8 epochs"]
    assert [rung["steps"] for rung in study["rungs"]] == sorted(rung["steps"] for rung in study["rungs"])
    assert all(rung["n"] == study["n_archs"] for rung in study["rungs"])
    assert study["truth"]["rung"] == names[-1] and study["smash"] == study["rungs"][-1]["predictors"]["smash"]


def test_run_metric_and_format():
    assert run_metric(None) == "error"
    assert run_metric({"score": {"metric": "loss"}}) == "loss"
    assert run_metric({"score": {"metric": "nonsense"}}) == "error"
    assert format_score(0.1234, "error") == "12.34%"
    assert format_score(0.1234, "loss") == "0.1234"
    assert format_score(math.nan) == "–"
