"""`smash up` pipelined: training in one engine slot, each checkpoint scored in the other.

The pipelined run must end with exactly the scores the sequential one (train, then score,
in one job) writes, and the engine must split the cores between the jobs it runs at once.
"""

import os
import time

import pandas as pd
import pytest

from cli.up import queue_run
from core.jobs import ScoreJob, TrainJob
from core.search import random_archs
from core.status import FINISHED
from engine.jobs import supervisor
from engine.jobs.runner import JobContext, follow_up, run_job
from engine.jobs.supervisor import Child, Engine
from engine.runtime.rng import step_rng
from engine.search import score_run
from engine.search.passes import STAGE_STREAMS
from engine.train.hypernet import train_hypernet
from store import Store, store_path
from tests.conftest import ROOT, tiny_config, write_config


def serve_until_idle(workdir, slots: int, timeout_s: float = 240.0) -> pd.DataFrame:
    """Run an engine of `slots` slots in this process until every job in the workdir ended."""
    engine = Engine(workdir, concurrency=slots, poll_s=0.2)
    engine.acquire()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            engine.tick()
            jobs = engine.store.jobs()
            if not engine.children and jobs["status"].isin(FINISHED).all():
                return jobs
            time.sleep(0.2)
        raise AssertionError(f"jobs not finished after {timeout_s:.0f} s:\n{engine.store.jobs()}")
    finally:
        engine.shutdown()


def new_store(workdir) -> Store:
    workdir.mkdir(parents=True, exist_ok=True)
    return Store(store_path(workdir))


def final_scores(store: Store, run_id: str, step: int) -> pd.DataFrame:
    """Every score at the checkpoint as stored, racing's figures and halving's marks included."""
    frame = store.checkpoint_scores(run_id, step)
    return frame[["arch_id", "stage", "score_mean", "score_std", "score_lo", "score_hi", "draws", "val_images",
                  "partial", "race_rounds"]].sort_values(["stage", "arch_id"]).reset_index(drop=True)


@pytest.mark.slow
def test_pipelined_up_scores_like_the_sequential_path(tmp_path, monkeypatch):
    monkeypatch.setenv("SMASH_THREADS", "1")  # one thread everywhere: bit-equal float sums
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the engine's job processes import the project
    cfg = tiny_config(score={"probe": 3, "race_top": 3, "race_max_draws": 6, "halving_min": 25})
    config = write_config(tmp_path / "c.toml", cfg)
    results = {}
    for slots in (1, 2):
        workdir = tmp_path / f"w{slots}"
        store = new_store(workdir)
        train_id = queue_run(store, config, cfg, score_archs=4, slots=slots)
        jobs = serve_until_idle(workdir, slots)
        assert set(jobs["status"]) == {"done"}, jobs[["job_id", "status", "error"]]
        results[slots] = (store, store.get_job(train_id), jobs)
    (seq_store, seq_train, seq_jobs), (pipe_store, pipe_train, pipe_jobs) = results[1], results[2]
    assert len(seq_jobs) == 1 and seq_train["result"]["score"]["scored"] > 0
    run_id, last = pipe_train["result"]["run_id"], pipe_train["result"]["steps"]
    assert run_id == seq_train["result"]["run_id"]
    # The train job handed its scoring off: a probe job for the checkpoint at step 6, a
    # score job (probe set, then the archs) and its helper for the last; the Jobs page
    # lists them all.
    kinds = pipe_jobs.set_index("job_id")
    score_jobs = [ScoreJob.from_params(pipe_store.get_job(j)["params"]) for j in kinds.index
                  if kinds.loc[j, "kind"] == "score"]
    assert sorted((j.checkpoint, j.pass_mode) for j in score_jobs) == [
        (6, "probe"), (last, "helper"), (last, "pipelined")]
    assert "score" not in pipe_train["result"]
    final = pipe_store.get_job(pipe_train["result"]["score_job"])["result"]
    assert final["best_arch"] == seq_train["result"]["score"]["best_arch"]
    for step in (6, last):  # probe sets at every checkpoint, and the whole final ranking
        pd.testing.assert_frame_equal(final_scores(pipe_store, run_id, step),
                                      final_scores(seq_store, run_id, step), check_exact=True)
    assert final_scores(seq_store, run_id, last)["race_rounds"].max() > 0, "racing ran, and ran alike"
    assert final_scores(seq_store, run_id, last)["partial"].any(), "so did successive halving"
    assert pipe_store.leaderboard(run_id, limit=5)["arch_id"].tolist() == \
        seq_store.leaderboard(run_id, limit=5)["arch_id"].tolist()


def test_up_queues_a_pipelined_run_only_with_two_slots(tmp_path):
    cfg = tiny_config()
    config = write_config(tmp_path / "c.toml", cfg)
    store = new_store(tmp_path / "w")
    one = TrainJob.from_params(store.get_job(queue_run(store, config, cfg, 5, slots=1))["params"])
    assert not one.pipeline and one.score_archs == 5
    store = new_store(tmp_path / "w2")
    two = TrainJob.from_params(store.get_job(queue_run(store, config, cfg, 5, slots=2))["params"])
    assert two.pipeline and two.score_archs == 5


class _Alive:
    """Stands in for a child process that is still running."""

    pid = 0

    def poll(self):
        return None


def test_the_engine_splits_the_cores_between_jobs_that_run_together(tmp_path, monkeypatch):
    monkeypatch.setattr(supervisor.os, "sched_getaffinity", lambda _pid: {0, 1})
    engine = Engine(tmp_path, concurrency=2)
    assert engine.thread_share() == 2  # alone (training at the start, scoring at the end)
    train = engine.store.enqueue_job("train", {"config": "a.toml"})
    assert engine.thread_share() == 1  # another job waits for the second slot
    engine.store.claim_job("test")
    engine.children[train] = Child(train, _Alive(), tmp_path / "t.log")
    assert engine.thread_share() == 1  # training runs beside it
    engine.store.finish_job(train, "done")
    assert engine.thread_share() == 2  # a finished job whose process is still exiting
    assert Engine(tmp_path / "one", concurrency=1).thread_share() == 2
    monkeypatch.setattr(supervisor.os, "sched_getaffinity", lambda _pid: set(range(16)))
    many = Engine(tmp_path / "many", concurrency=4)
    for i in range(5):
        many.store.enqueue_job("score", {"i": i}, run_id="r")
    assert many.thread_share() == 4  # never split finer than the slots


def test_launch_passes_the_share_and_keeps_the_users_threads(tmp_path, monkeypatch):
    seen = {}

    class FakePopen:
        pid = 1

        def __init__(self, cmd, env, **kw):
            seen.update(env)

        def poll(self):
            return None

    monkeypatch.setattr(supervisor.subprocess, "Popen", FakePopen)
    identify = supervisor.procid.identify
    monkeypatch.setattr(supervisor.procid, "identify", lambda _pid: identify(os.getpid()))
    monkeypatch.setenv("SMASH_THREADS", "7")
    engine = Engine(tmp_path, concurrency=2)
    engine.store.enqueue_job("score", {"n": 1}, run_id="r")
    engine.launch(engine.store.claim_job("test"))
    assert seen["SMASH_THREADS"] == "7" and int(seen["SMASH_MAX_THREADS"]) >= 1
    engine.children.clear()


def test_a_pipelined_train_job_killed_before_its_hand_off_queues_it_when_run_again(tmp_path):
    cfg = tiny_config(score={"probe": 2})
    store = Store(store_path(tmp_path))
    params = TrainJob(config_data=cfg.to_dict(), score_archs=3, pipeline=True).to_params()

    def run_train_job() -> tuple[dict, JobContext]:
        job_id = store.enqueue_job("train", params)
        job = store.claim_job("test", kinds=["train"])  # the probe job it queued waits
        assert job["job_id"] == job_id
        ctx = JobContext(store, job_id)
        return run_job(tmp_path, store, job, ctx), ctx

    first, ctx = run_train_job()
    store.finish_job(ctx.job_id, "done", result=first)  # then killed: its follow-up never ran
    queued = [ScoreJob.from_params(store.get_job(j)["params"]) for j in store.jobs()["job_id"]
              if store.get_job(j)["kind"] == "score"]
    assert [(j.checkpoint, j.pass_mode) for j in queued] == [(6, "probe")]  # the probe, handed off
    assert "probe" not in set(store.checkpoint_scores(first["run_id"], 6)["stage"])  # not scored here
    again, ctx = run_train_job()
    assert again["resumed_from"] == again["steps"] == 12  # nothing left to train
    follow_up(store, ctx.job_id, ctx, again)
    result = store.get_job(ctx.job_id)["result"]
    final, helper = store.get_job(result["score_job"]), store.get_job(result["helper_job"])
    assert final["status"] == helper["status"] == "queued"
    assert final["run_id"] == helper["run_id"] == first["run_id"]
    assert ScoreJob.from_params(final["params"]) == ScoreJob(archs=3, checkpoint=12, mode="pipelined")
    assert ScoreJob.from_params(helper["params"]) == ScoreJob(archs=3, checkpoint=12, mode="helper")


def test_a_pass_takes_its_helpers_scores_and_ends_with_the_same_ranking(tmp_path):
    cfg = tiny_config(score={"probe": 2})
    scored = {}
    for name in ("alone", "helped"):
        workdir = tmp_path / name
        store = new_store(workdir)
        run_id = train_hypernet(cfg, workdir, store=store)["run_id"]
        if name == "helped":  # the helper gets the whole sample: the pass only reads it back
            helped = score_run(workdir, store, run_id, ScoreJob(archs=4, mode="helper"))
            frame = store.checkpoint_scores(run_id, 12)
            probe = set(frame[frame["stage"] == "probe"]["arch_id"])  # the helper leaves these be
            assert helped["helped"] == len({a.id for a in random_sample(cfg, 12, 4)} - probe) > 0
        summary = score_run(workdir, store, run_id, ScoreJob(archs=4, mode='pipelined' if name == 'helped' else None))
        scored[name] = (store, run_id, summary)
    (alone, run_id, plain), (helped_store, _, shared) = scored["alone"], scored["helped"]
    assert shared["best_arch"] == plain["best_arch"] and shared["reused"] > plain["reused"]
    pd.testing.assert_frame_equal(final_scores(helped_store, run_id, 12), final_scores(alone, run_id, 12),
                                  check_exact=True)


def random_sample(cfg, step: int, n: int) -> list:
    return list(random_archs(cfg.space, step_rng(cfg.seed, step, STAGE_STREAMS["random"]), n))
