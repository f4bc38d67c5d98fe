"""BackgroundWriter, and threads of one process sharing a Store."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import store
from store import BackgroundWriter, Store

RUN = "run-1"


@pytest.fixture
def st(tmp_path: Path) -> Store:
    return Store(store.store_path(tmp_path))


def score_row(i: int, score: float, step: int) -> dict:
    return {
        "run_id": RUN,
        "arch_id": f"a{i:03d}",
        "checkpoint_step": step,
        "stage": "random",
        "score_mean": score,
    }


def test_background_writer_batches_and_flushes(st):
    with BackgroundWriter(st, interval=30.0) as writer:
        writer.put("archs", [{"run_id": RUN, "arch_id": "a001"}])
        writer.put("scores", [score_row(1, 0.5, step=1)])
        writer.put("train_metrics", [{"run_id": RUN, "step": s, "loss": 1.0} for s in range(100)])
        assert st.row_counts()["train_metrics"] == 0  # interval not reached, nothing written yet
        writer.flush()
        assert st.row_counts()["train_metrics"] == 100
        writer.put("retrain_metrics", [{"retrain_id": "r", "epoch": 1}])
        with pytest.raises(ValueError, match="row kind"):
            writer.put("runs", [{}])
    counts = st.row_counts()
    assert (counts["archs"], counts["scores"], counts["retrain_metrics"]) == (1, 1, 1)
    with pytest.raises(RuntimeError, match="closed"):
        writer.put("archs", [{"run_id": RUN, "arch_id": "a002"}])


def test_background_writer_writes_on_its_own(st):
    writer = BackgroundWriter(st, interval=0.05)
    writer.put("train_metrics", [{"run_id": RUN, "step": 1}])
    deadline = time.monotonic() + 5
    while st.row_counts()["train_metrics"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert st.row_counts()["train_metrics"] == 1
    writer.close()


def test_background_writer_reraises_thread_errors(st, monkeypatch):
    def broken(batches):
        raise store.StoreBusy("store x stayed locked for 30.0 s")

    monkeypatch.setattr(st, "_insert_rows", broken)
    writer = BackgroundWriter(st, interval=30.0)
    writer.put("train_metrics", [{"run_id": RUN, "step": 1}])
    with pytest.raises(store.StoreBusy):
        writer.flush()
    with pytest.raises(store.StoreBusy):
        writer.put("train_metrics", [{"run_id": RUN, "step": 2}])
    with pytest.raises(store.StoreBusy):
        writer.close()
    writer.close()  # a second close is quiet


def test_threads_may_read_while_the_writer_writes(st):
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_loop():
        while not stop.is_set():
            try:
                st.leaderboard(RUN, limit=5)
                st.score_count(RUN)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    readers = [threading.Thread(target=read_loop) for _ in range(3)]
    for t in readers:
        t.start()
    with BackgroundWriter(st, interval=0.01) as writer:
        for start in range(0, 400, 40):
            writer.put(
                "scores", [score_row(j, j / 400, step=start) for j in range(start, start + 40)]
            )
            writer.flush()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert st.row_counts()["scores"] == 400


def test_lock_wait_stats_count_calls(st):
    store.reset_lock_wait_stats()
    st.runs()
    st.add_rows({"train_metrics": [{"run_id": RUN, "step": 1}]})
    stats = store.lock_wait_stats()
    assert stats["count"] == 2 and 0 <= stats["p99_s"] <= stats["max_s"] < 5
