"""Correlation studies: predictors beside the SMASH score, the truth's ceiling, the job kind."""

import pytest

from core.jobs import CorrelateError, CorrelateJob, ScoreJob
from engine.study import pick_archs
from store import Store, store_path


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
    job_id = st.enqueue_job("correlate", {"k": 3, "epochs": 2, "rungs": [1, 2], "seeds": 2, "score_draws": 4,
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
