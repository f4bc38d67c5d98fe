"""The engine service with real processes: jobs run, fail, cancel and survive restarts."""

import os
import signal
import subprocess
import sys
import time

import pytest

from core.ids import retrain_id_for
from core.jobs import ScoreJob
from engine.runtime import allocator
from engine.search import score_run
from engine.train.hypernet import train_hypernet
from store import Store, store_path
from tests.conftest import ROOT, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture
def scored(tmp_path):
    """A workdir with a trained tiny run and a few scored archs."""
    cfg = tiny_config(retrain={"epochs": 2, "max_steps_per_epoch": 3})
    store = Store(store_path(tmp_path))
    run_id = train_hypernet(cfg, tmp_path, store=store)["run_id"]
    score_run(tmp_path, store, run_id, ScoreJob(archs=3, perturb=0, chain=0))
    arch_id = str(store.leaderboard(run_id, limit=1).iloc[0]["arch_id"])
    return tmp_path, store, run_id, arch_id


def start_engine(workdir) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "cli", "engine", "--workdir", str(workdir),
                             "--poll", "0.2", "--stale-after", "30"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(fn, timeout=120.0, every=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def test_queued_retrain_runs_to_a_true_error(scored):
    workdir, store, run_id, arch_id = scored
    engine = start_engine(workdir)
    try:
        job_id = store.enqueue_job("retrain", {"epochs": 2, "seed": 0}, run_id=run_id, arch_id=arch_id)
        job = wait_for(lambda: (j := store.get_job(job_id))["status"] in ("done", "failed") and j)
        assert job["status"] == "done", job["error"]
        assert job["progress"] == pytest.approx(1.0) and 0 <= job["result"]["test_error"] <= 1
        # the engine starts jobs on the allocator SMASH_ALLOCATOR asks for (tcmalloc where installed)
        assert job["result"]["allocator"] == allocator.choose()[0]
        truth = store.score_vs_truth(run_id)
        assert arch_id in set(truth["arch_id"]) and truth["test_error"].between(0, 1).all()
        assert truth["val_error"].between(0, 1).all()
    finally:
        stop(engine)


def test_a_killed_job_process_is_rerun_and_the_engine_keeps_serving(scored):
    """kill -9 of a job's process: the engine re-queues it and a new process resumes it."""
    workdir, store, run_id, arch_id = scored
    engine = start_engine(workdir)
    try:
        long = store.enqueue_job("retrain", {"epochs": 400, "seed": 1}, run_id=run_id, arch_id=arch_id)
        job = wait_for(lambda: (j := store.get_job(long))["status"] == "running" and j.get("pid") and j)
        wait_for(lambda: (store.get_job(long)["progress"] or 0) > 0, timeout=60)
        os.kill(int(job["pid"]), signal.SIGKILL)
        again = wait_for(lambda: (j := store.get_job(long))["status"] == "running" and j.get("pid")
                         and j["pid"] != job["pid"] and j)
        assert again["attempts"] == job["attempts"] + 1
        store.request_cancel(long)
        assert wait_for(lambda: store.get_job(long)["status"] == "cancelled")
        short = store.enqueue_job("retrain", {"epochs": 1, "seed": 2}, run_id=run_id, arch_id=arch_id)
        assert wait_for(lambda: store.get_job(short)["status"] == "done")
    finally:
        stop(engine)


def test_cancel_stops_a_running_job_within_seconds(scored):
    workdir, store, run_id, arch_id = scored
    engine = start_engine(workdir)
    try:
        job_id = store.enqueue_job("retrain", {"epochs": 400, "seed": 3}, run_id=run_id, arch_id=arch_id)
        wait_for(lambda: (store.get_job(job_id)["progress"] or 0) > 0, timeout=90)
        t0 = time.time()
        store.request_cancel(job_id)
        wait_for(lambda: store.get_job(job_id)["status"] == "cancelled", timeout=15)
        assert time.time() - t0 < 15
    finally:
        stop(engine)


def test_engine_killed_mid_job_resumes_after_restart(scored):
    workdir, store, run_id, arch_id = scored
    engine = start_engine(workdir)
    epochs = 30
    job_id = store.enqueue_job("retrain", {"epochs": epochs, "seed": 4}, run_id=run_id, arch_id=arch_id)
    rid = retrain_id_for(run_id, arch_id, epochs, 4, max_steps_per_epoch=3)  # tiny config caps epochs at 3 steps
    try:
        wait_for(lambda: len(store.retrain_metrics(rid)) >= 3, timeout=120)
        engine.kill()  # SIGKILL: the engine gets no chance to clean up
        engine.wait()
        time.sleep(1.0)
        assert store.get_job(job_id)["status"] == "running"
        engine = start_engine(workdir)
        job = wait_for(lambda: (j := store.get_job(job_id))["status"] in ("done", "failed") and j, timeout=180)
        assert job["status"] == "done", job["error"]
        # Its engine went away: the try it lost is no fault of the job's and does not count
        # against its attempts; the second try resumed from the first one's checkpoint.
        assert job["attempts"] == 1
        assert job["result"]["resumed_from"] >= 3
        epochs_seen = list(store.retrain_metrics(rid)["epoch"])
        assert epochs_seen == list(range(1, epochs + 1))  # nothing lost, nothing duplicated
    finally:
        stop(engine)
