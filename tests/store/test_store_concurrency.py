"""Several real processes on one store file: streaming writes, polling readers, kill -9."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import duckdb
import pytest

import store
from store import BackgroundWriter, Store, StoreBusy

RUN = "run-c"
CTX = mp.get_context("spawn")


def _scores(batch: int, size: int) -> list[dict]:
    return [
        {
            "run_id": RUN,
            "arch_id": f"b{batch:04d}-{i:03d}",
            "checkpoint_step": 1,
            "stage": "random",
            "score_mean": (batch * size + i) % 97 / 97,
        }
        for i in range(size)
    ]


def _archs(batch: int, size: int) -> list[dict]:
    return [
        {
            "run_id": RUN,
            "arch_id": f"b{batch:04d}-{i:03d}",
            "params": 1000 + i,
            "arch": {"b": batch},
        }
        for i in range(size)
    ]


def _stream(path: str, batches: int, size: int, committed, done, start, out) -> None:
    st = Store(path)
    start.wait()
    with BackgroundWriter(st, interval=0.05) as writer:
        for b in range(batches):
            writer.put("archs", _archs(b, size))
            writer.put("scores", _scores(b, size))
            if b % 4 == 3:
                writer.flush()
                committed.value = (b + 1) * size
            time.sleep(0.02)
    committed.value = batches * size
    done.set()
    out.put(("writer", store.lock_wait_stats()))


def _poll(path: str, committed, done, start, out) -> None:
    st = Store(path)
    start.wait()
    errors, unseen, reads, seen = [], [], 0, 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        promised = committed.value  # read first: everything counted here is already committed
        try:
            seen = st.score_count(RUN)
            st.leaderboard(RUN, limit=20)
            st.leaderboard(RUN, params=(1005, 1010), sort="params", descending=True)
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            errors.append(repr(exc))
            continue
        reads += 1
        if seen < promised:
            unseen.append((seen, promised))
        if done.is_set() and seen >= committed.value:
            break
    out.put(
        (
            "reader",
            {
                "errors": errors,
                "unseen": unseen,
                "reads": reads,
                "seen": seen,
                "waits": store.lock_wait_stats(),
            },
        )
    )


def test_writer_and_two_readers_see_every_committed_row(tmp_path):
    path = str(store.store_path(tmp_path))
    Store(path)
    batches, size = 80, 25
    committed, done, start, out = CTX.Value("q", 0), CTX.Event(), CTX.Barrier(3), CTX.Queue()
    procs = [CTX.Process(target=_stream, args=(path, batches, size, committed, done, start, out))]
    procs += [CTX.Process(target=_poll, args=(path, committed, done, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    reports = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    readers = [r for kind, r in reports if kind == "reader"]
    writer_waits = next(r for kind, r in reports if kind == "writer")
    for r in readers:
        assert r["errors"] == []
        assert r["unseen"] == []
        assert r["seen"] == batches * size
        assert r["reads"] > 0
    # Readers poll in a tight loop; the writer must still get in far inside its deadline.
    assert writer_waits["max_s"] < 10
    assert Store(path).row_counts()["scores"] == batches * size


def _write_train_batches(path: str, first: int, last: int, size: int, interval: float) -> None:
    """Stream batch b as steps [b*size, (b+1)*size), each row marked with loss = b."""
    with BackgroundWriter(Store(path), interval=interval) as writer:
        for b in range(first, last):
            writer.put(
                "train_metrics",
                [{"run_id": RUN, "step": b * size + i, "loss": float(b)} for i in range(size)],
            )
            time.sleep(0.001)


def _check_whole_batches(st: Store, size: int) -> set[int]:
    frame = st.train_metrics(RUN)
    assert frame["step"].is_unique
    by_batch = frame.groupby(frame["step"] // size)
    assert (by_batch.size() == size).all(), "a batch was committed in part"
    assert all((group["loss"] == b).all() for b, group in by_batch)
    return set(by_batch.groups)


def test_kill_9_mid_stream_keeps_whole_batches_and_resumes(tmp_path):
    path = str(store.store_path(tmp_path))
    st = Store(path)
    batches, size = 100_000, 20
    child = CTX.Process(target=_write_train_batches, args=(path, 0, batches, size, 0.02))
    child.start()
    deadline = time.monotonic() + 60
    while st.row_counts()["train_metrics"] < 10 * size:
        assert time.monotonic() < deadline and child.is_alive()
        time.sleep(0.05)
    time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL

    survived = _check_whole_batches(Store(path), size)
    assert len(survived) >= 10
    resume_to = max(survived) + 30
    # Re-send everything from the start: idempotent writes make the overlap harmless.
    _write_train_batches(path, 0, resume_to, size, 0.02)
    assert _check_whole_batches(Store(path), size) == set(range(resume_to))
    assert Store(path).row_counts()["train_metrics"] == resume_to * size


def _hold_lock(path: str, held, release) -> None:
    con = duckdb.connect(path)
    held.set()
    release.wait(30)
    con.close()


def test_lock_held_too_long_raises_store_busy(tmp_path):
    path = store.store_path(tmp_path)
    st = Store(path, timeout=0.5)
    held, release = CTX.Event(), CTX.Event()
    holder = CTX.Process(target=_hold_lock, args=(str(path), held, release))
    holder.start()
    try:
        assert held.wait(30)
        began = time.monotonic()
        with pytest.raises(StoreBusy) as err:
            st.runs()
        assert 0.4 < time.monotonic() - began < 5
        message = str(err.value)
        assert "\n" not in message and str(path) in message and "lock" in message
        with pytest.raises(StoreBusy):
            st.add_rows({"train_metrics": [{"run_id": RUN, "step": 1}]})
    finally:
        release.set()
        holder.join(timeout=30)
    st.add_rows({"train_metrics": [{"run_id": RUN, "step": 1}]})  # usable again once released
    assert len(st.train_metrics(RUN)) == 1
    assert not Path(str(path) + ".writer-waiting").exists()


def _open_and_add_run(path: str, name: str, start, out) -> None:
    start.wait()
    st = Store(path)
    st.add_rows({"train_metrics": [{"run_id": name, "step": 1}]})
    out.put(name)


def test_processes_creating_one_store_at_once(tmp_path):
    path = str(store.store_path(tmp_path))
    start, out = CTX.Barrier(3), CTX.Queue()
    procs = [
        CTX.Process(target=_open_and_add_run, args=(path, f"p{i}", start, out)) for i in range(3)
    ]
    for p in procs:
        p.start()
    names = sorted(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert names == ["p0", "p1", "p2"]
    assert Store(path).row_counts()["train_metrics"] == 3
    assert sorted(os.listdir(tmp_path)) == ["smash.duckdb"]
