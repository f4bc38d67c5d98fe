"""A study's arithmetic (core/study.py) on synthetic archs whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from core.jobs import CorrelateError
from core.study import (
    best_sort,
    indifference_zone,
    ladder_text,
    predictor_values,
    rung_metrics,
    study_metrics,
)


def synthetic_frame(n=40, seed=0):
    """Truth = a latent quality plus seed noise; the score tracks it, params do not."""
    rng = np.random.default_rng(seed)
    quality = rng.uniform(0.1, 0.4, n)
    return pd.DataFrame({
        "arch_id": [f"a{i}" for i in range(n)],
        "score_mean": quality + rng.normal(0, 0.02, n),
        "params": rng.integers(1000, 5000, n),
        "flops": rng.integers(10_000, 50_000, n),
        "val_error_s0": quality + rng.normal(0, 0.01, n),
        "val_error_s1": quality + rng.normal(0, 0.01, n),
    }).assign(val_error=lambda f: (f.val_error_s0 + f.val_error_s1) / 2)


def test_study_metrics_rank_each_predictor_and_measure_the_ceiling():
    frame = synthetic_frame()
    values = predictor_values(frame, ["smash", "params", "flops"])
    assert (values["params"] == -frame["params"]).all()  # bigger predicts better: negated
    m = study_metrics(frame, values, [0, 1], n_boot=200)
    rho = {name: table[0]["estimate"] for name, table in m["predictors"].items()}
    assert rho["smash"] > 0.8 and abs(rho["params"]) < 0.4
    assert m["ceiling"]["spearman"] > 0.8 and m["ceiling"]["spearman_ci"][0] < m["ceiling"]["spearman"]
    assert m["ceiling"]["spearman"] < m["ceiling"]["of_mean"] <= 1, "two seeds' mean is surer than one seed"
    assert m["n"] == 40 and m["truth"] == "val_error"
    assert study_metrics(frame, values, [0], n_boot=50)["ceiling"] is None


def test_unknown_predictor_is_a_clear_error():
    with pytest.raises(CorrelateError, match="unknown predictor 'oracle'"):
        predictor_values(synthetic_frame(), ["smash", "oracle"])




def sized_frame(n: int, beyond_size: float, seed: int = 0) -> pd.DataFrame:
    """Truth falls with FLOPs plus an own part; the score follows FLOPs and, with weight
    `beyond_size`, that own part: the partial Spearman given FLOPs is ~0 at weight 0."""
    rng = np.random.default_rng(seed)
    flops = np.exp(rng.uniform(14, 18, n))
    own = rng.normal(0, 1, n)
    quality = -(np.log(flops) - 16) + own
    score = -(np.log(flops) - 16) + beyond_size * own + 0.3 * rng.normal(0, 1, n)
    return pd.DataFrame({"arch_id": [f"a{i}" for i in range(n)], "score_mean": score, "flops": flops,
                         "params": flops / rng.uniform(100, 400, n),
                         "val_error_s0": quality + 0.2 * rng.normal(0, 1, n),
                         "val_error_s1": quality + 0.2 * rng.normal(0, 1, n)}
                        ).assign(val_error=lambda f: (f.val_error_s0 + f.val_error_s1) / 2)


def test_a_rung_reports_what_the_score_adds_beyond_size():
    blind = rung_metrics(sized_frame(150, 0.0), ["smash", "params", "flops"], [0, 1], n_boot=200)
    lo, hi = blind["partial"]["smash | flops"]["spearman_ci"]
    assert lo < 0.1 and abs(blind["partial"]["smash | flops"]["spearman"]) < 0.12
    sees = rung_metrics(sized_frame(150, 1.0), ["smash", "params", "flops"], [0, 1], n_boot=200)
    assert sees["partial"]["smash | flops"]["spearman_ci"][0] > 0.5
    assert set(sees["predictors"]) == {"smash", "params", "flops", "smash+flops", "learned"}
    assert sees["predictors"]["smash"]["spearman"] > sees["predictors"]["flops"]["spearman"]
    assert sees["ceiling"] > 0.9 and sees["ceiling_of_mean"] >= sees["ceiling"]
    name, share = best_sort(sees)
    assert name in sees["predictors"] and 0.5 < share <= 1.05
    text = ladder_text([{"name": "8 epochs", **sees}])
    assert "smash | flops" in text and "8 epochs" in text and "smash+flops" in text
    md = ladder_text([{"name": "8 epochs", **sees}], markdown=True).splitlines()
    assert md[0].startswith("| truth | smash |") and set(md[1].split(" | ")[1:-1]) == {"---"}
    assert md[2].startswith("| 8 epochs | +") and len(md) == 3
    assert "smash \\| flops" in md[0] and len({line.replace("\\|", "").count("|") for line in md}) == 1


def test_the_indifference_zone_maps_the_truths_seed_noise_onto_the_score():
    """A known answer: the score is the truth stretched 3x plus an offset, the seeds differ by
    a known noise, so delta is 3x the least significant difference of two single retrains,
    1.96 x sqrt(2) x the seed sd (to sampling error)."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.08, 0.12, 400)
    seeds = truth[:, None] + 0.002 * rng.standard_normal((400, 2))
    zone = indifference_zone(seeds, {"error": 0.5 + 3 * seeds.mean(axis=1), "loss": 9 * seeds.mean(axis=1)},
                             n_boot=300)
    lsd = 1.96 * np.sqrt(2) * 0.002
    assert zone["archs"] == 400 and zone["seed_sd"] == pytest.approx(0.002, rel=0.1)
    assert zone["truth_lsd"] == pytest.approx(lsd, rel=0.1)
    assert zone["error"]["delta"] == pytest.approx(3 * lsd, rel=0.1)
    assert zone["loss"]["delta"] == pytest.approx(9 * lsd, rel=0.1)
    lo, hi = zone["error"]["delta_ci"]
    assert lo < zone["error"]["delta"] < hi and 0.8 * 3 * lsd < lo and hi < 1.2 * 3 * lsd  # 400 archs: a narrow interval
    seeds[:3, 1] = np.nan  # an arch short of a seed is left out, not counted as noise
    assert indifference_zone(seeds, {"error": seeds[:, 0]}, n_boot=10)["archs"] == 397
    with pytest.raises(CorrelateError, match="two seeds"):
        indifference_zone(seeds[:, :1], {"error": seeds[:, 0]})
    with pytest.raises(CorrelateError, match="at least 4 archs"):
        indifference_zone(seeds[:5], {"error": seeds[:5, 0]})
