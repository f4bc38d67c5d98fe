"""Correlation studies: predictors beside the SMASH score, the truth's ceiling, the job kind."""

import numpy as np
import pandas as pd
import pytest

from core.jobs import CorrelateError, CorrelateJob, ScoreJob
from engine.study import pick_archs, predictor_values, study_metrics
from store import Store, store_path


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


def test_partial_scores_are_not_picked_unless_asked(tmp_path):
    st = Store(store_path(tmp_path))
    st.add_archs([{"run_id": "r", "arch_id": f"a{i}"} for i in range(6)])
    st.add_scores([{"run_id": "r", "arch_id": f"a{i}", "checkpoint_step": 1, "stage": "random",
                    "score_mean": i / 10, "val_images": 10 if i < 2 else 90, "partial": i < 2}
                   for i in range(6)])
    assert set(pick_archs(st, "r", 4)) == {"a2", "a3", "a4", "a5"}
    assert len(set(pick_archs(st, "r", 6, include_partial=True))) == 6
    with pytest.raises(CorrelateError, match="4 fully scored"):
        pick_archs(st, "r", 5)


@pytest.mark.slow
def test_a_queued_correlate_job_runs_the_study_in_the_engine(tmp_path):
    """The Score vs truth form queues this job kind; the engine's runner runs it to a stored study."""
    from engine.jobs.runner import JobContext, run_job
    from engine.search import score_run
    from engine.train.hypernet import train_hypernet
    from tests.conftest import tiny_config

    cfg = tiny_config(retrain={"epochs": 1, "max_steps_per_epoch": 2})
    st = Store(store_path(tmp_path))
    run_id = train_hypernet(cfg, tmp_path, store=st)["run_id"]
    score_run(tmp_path, st, run_id, ScoreJob(archs=5, perturb=0, chain=0))
    job_id = st.enqueue_job("correlate", {"k": 3, "epochs": 1, "seeds": 2, "score_draws": 4,
                                          "predictors": ["smash", "flops", "naswot"]}, run_id=run_id)
    with JobContext(st, job_id) as ctx:
        out = run_job(tmp_path, st, st.get_job(job_id), ctx)
    study = st.get_study(out["study_id"])
    assert study["status"] == "done" and set(study["metrics"]["predictors"]) == {"smash", "flops", "naswot"}
    assert study["metrics"]["score_draws"] == 4, "the SMASH scores were refined to 4 draws first"
    with pytest.raises(CorrelateError, match="--score-draws"):
        CorrelateJob(k=3, epochs=1, seeds=2, score_draws=-1)
    assert len(st.studies(run_id)) == 1, "a refused study records nothing"
    retrains = st.retrains(run_id)
    assert len(retrains) == 6 and (retrains["status"] == "done").all()
    assert retrains["val_error"].notna().all()
