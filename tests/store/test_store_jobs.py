"""The job queue: dedupe, claiming (also across real processes), cancel, staleness."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

import store
from store import Store


@pytest.fixture
def st(tmp_path: Path) -> Store:
    return Store(store.store_path(tmp_path))


def test_enqueue_dedupes_equal_requests(st):
    first = st.enqueue_job("retrain", {"epochs": 30, "seed": 1}, run_id="r", arch_id="a1")
    assert st.enqueue_job("retrain", {"seed": 1, "epochs": 30}, run_id="r", arch_id="a1") == first
    assert st.enqueue_job("retrain", {"epochs": 31, "seed": 1}, run_id="r", arch_id="a1") != first
    assert st.enqueue_job("retrain", {"epochs": 30, "seed": 1}, run_id="r", arch_id="a2") != first
    assert st.enqueue_job("score", {"epochs": 30, "seed": 1}, run_id="r", arch_id="a1") != first
    job = st.get_job(first)
    assert (job["kind"], job["status"], job["params"], job["attempts"]) == (
        "retrain",
        "queued",
        {"epochs": 30, "seed": 1},
        0,
    )
    # Running still dedupes; once finished, the same request is a new job.
    assert st.claim_job("w", kinds=["retrain"])["job_id"] == first
    assert st.enqueue_job("retrain", {"epochs": 30, "seed": 1}, run_id="r", arch_id="a1") == first
    st.finish_job(first, "done")
    assert st.enqueue_job("retrain", {"epochs": 30, "seed": 1}, run_id="r", arch_id="a1") != first
    with pytest.raises(ValueError, match="kind must be one of train, score, retrain, correlate"):
        st.enqueue_job("deploy", {})


def test_claim_takes_oldest_of_the_wanted_kinds(st):
    ids = [
        st.enqueue_job(kind, {"n": i})
        for i, kind in enumerate(["train", "score", "score", "retrain"])
    ]
    claimed = st.claim_job("worker-1", kinds=["score", "retrain"])
    assert claimed["job_id"] == ids[1]
    assert (claimed["status"], claimed["worker"], claimed["attempts"]) == ("running", "worker-1", 1)
    assert claimed["params"] == {"n": 1}
    assert claimed["started_at"] == claimed["heartbeat_at"] is not None
    assert st.claim_job("worker-1")["job_id"] == ids[0]
    assert st.claim_job("worker-1", kinds=["retrain"])["job_id"] == ids[3]
    assert st.claim_job("worker-1", kinds=["train"]) is None
    assert st.claim_job("worker-1")["job_id"] == ids[2]
    assert st.claim_job("worker-1") is None


def test_heartbeat_and_finish(st):
    job_id = st.enqueue_job("train", {"steps": 10})
    st.claim_job("w")
    before = st.get_job(job_id)["heartbeat_at"]
    assert (
        st.heartbeat(job_id, progress=0.5, message="step 5", pid=4242, log_path="/w/log.txt")
        is False
    )
    job = st.get_job(job_id)
    assert (job["progress"], job["message"], job["pid"], job["log_path"]) == (
        0.5,
        "step 5",
        4242,
        "/w/log.txt",
    )
    assert job["heartbeat_at"] >= before
    st.heartbeat(job_id)  # beats keep what they do not mention
    assert st.get_job(job_id)["message"] == "step 5"
    st.finish_job(job_id, "done", result={"run_id": "r7"})
    job = st.get_job(job_id)
    assert (job["status"], job["progress"], job["result"], job["error"]) == (
        "done",
        1.0,
        {"run_id": "r7"},
        None,
    )
    assert job["finished_at"] is not None
    with pytest.raises(ValueError, match="status must be one of done, failed, cancelled"):
        st.finish_job(job_id, "running")
    with pytest.raises(KeyError):
        st.heartbeat("missing")
    with pytest.raises(KeyError):
        st.finish_job("missing", "failed")
    assert st.get_job("missing") is None


def test_failed_job_keeps_its_error(st):
    job_id = st.enqueue_job("score", {})
    st.claim_job("w")
    st.finish_job(job_id, "failed", error="CUDA out of memory")
    job = st.get_job(job_id)
    assert (job["status"], job["error"]) == ("failed", "CUDA out of memory")


def test_cancel_queued_and_running(st):
    queued = st.enqueue_job("score", {"n": 1})
    running = st.enqueue_job("score", {"n": 2})
    st.claim_job("w")  # takes `queued`, the oldest
    queued, running = running, queued
    assert st.request_cancel(queued) == "cancelled"
    assert st.get_job(queued)["finished_at"] is not None
    assert st.claim_job("w") is None
    assert st.cancel_requested(running) is False
    assert st.request_cancel(running) == "running"
    assert st.cancel_requested(running) is True
    assert st.heartbeat(running, progress=0.2) is True
    st.finish_job(running, "cancelled")
    assert st.request_cancel(running) == "cancelled"  # harmless on a finished job
    with pytest.raises(KeyError):
        st.request_cancel("missing")
    with pytest.raises(KeyError):
        st.cancel_requested("missing")




def test_requeue_interrupted_jobs(st):
    a = st.enqueue_job("score", {"n": 1})
    b = st.enqueue_job("score", {"n": 2})
    done = st.enqueue_job("score", {"n": 3})
    for _ in range(3):
        st.claim_job("w")
    st.finish_job(done, "done")
    st.request_cancel(b)
    assert st.requeue_jobs([a, b, done, "missing"]) == [a]
    assert (st.get_job(a)["status"], st.get_job(a)["worker"], st.get_job(a)["heartbeat_at"]) == (
        "queued",
        None,
        None,
    )
    assert st.get_job(b)["status"] == "cancelled"
    assert st.get_job(done)["status"] == "done"
    again = st.claim_job("w2")
    assert again["job_id"] == a and again["attempts"] == 2


def test_jobs_listing(st):
    ids = [st.enqueue_job("score", {"n": i}) for i in range(4)]
    st.claim_job("w")
    st.request_cancel(ids[3])
    frame = st.jobs()
    assert frame["job_id"].tolist() == ids[::-1]
    age = frame.set_index("job_id")["heartbeat_age_s"]
    assert 0 <= age[ids[0]] < 5 and age.drop(ids[0]).isna().all()
    assert st.jobs(status="queued")["job_id"].tolist() == [ids[2], ids[1]]
    assert set(st.jobs(status=["running", "cancelled"])["job_id"]) == {ids[0], ids[3]}
    assert len(st.jobs(limit=2)) == 2
    with pytest.raises(ValueError, match="status must be one of"):
        st.jobs(status="stuck")


# --- across processes -------------------------------------------------------------


def _claim_all(path: str, worker: str, start, out) -> None:
    st = Store(path)
    start.wait()
    claimed = []
    while (job := st.claim_job(worker)) is not None:
        claimed.append(job["job_id"])
    out.put((worker, claimed))


def _enqueue_all(path: str, n: int, start, out) -> None:
    st = Store(path)
    start.wait()
    out.put([st.enqueue_job("retrain", {"seed": i}, run_id="r", arch_id="a") for i in range(n)])


def _run_processes(target, args_list):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(len(args_list))  # all start together, after their slow imports
    procs = [ctx.Process(target=target, args=(*args, start, out)) for args in args_list]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return results


def test_two_processes_never_claim_the_same_job(st):
    ids = {st.enqueue_job("score", {"n": i}) for i in range(40)}
    results = dict(_run_processes(_claim_all, [(str(st.path), "w1"), (str(st.path), "w2")]))
    w1, w2 = set(results["w1"]), set(results["w2"])
    assert len(results["w1"]) == len(w1) and len(results["w2"]) == len(w2)
    assert not w1 & w2
    assert w1 | w2 == ids
    assert all(j["attempts"] == 1 for j in (st.get_job(i) for i in ids))


def test_two_processes_enqueuing_at_once_make_one_job_each(st):
    first, second = _run_processes(_enqueue_all, [(str(st.path), 25), (str(st.path), 25)])
    assert first == second
    assert st.row_counts()["jobs"] == 25


def test_a_try_the_engine_interrupted_does_not_count_against_the_job(st):
    """Stopped or orphaned by its engine, a job keeps its attempts; killed or stale, it spends one."""
    job = st.enqueue_job("train", {"n": 1})
    st.claim_job("w")
    assert st.get_job(job)["attempts"] == 1
    st.requeue_jobs([job], count_attempt=False)
    assert st.get_job(job)["attempts"] == 0
    for _ in range(3):
        st.claim_job("w")
        requeued, failed = st.requeue_interrupted_jobs([job], max_attempts=3, reason="killed")
    assert failed == [job] and "killed; gave up after 3 attempts" in st.get_job(job)["error"]
