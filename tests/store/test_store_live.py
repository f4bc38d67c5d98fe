"""The store under the real engine: `smash score` streaming while readers poll, and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.train.hypernet import train_hypernet
from store import Store, store_path
from tests.conftest import ROOT, tiny_config

pytestmark = pytest.mark.slow

READER = """
import json, sys, time
from store import Store
st, run, stop = Store(sys.argv[1]), sys.argv[2], sys.argv[3]
import os
errors, counts = [], []
while not os.path.exists(stop):
    try:
        counts.append(st.score_count(run))
        st.leaderboard(run, limit=20)
        st.leaderboard(run, sort="params", descending=True, params=(0, None), limit=20)
    except Exception as exc:
        errors.append(repr(exc))
    time.sleep(0.05)
counts.append(st.score_count(run))
print(json.dumps({"errors": errors, "counts": counts}))
"""


@pytest.fixture
def trained(tmp_path):
    cfg = tiny_config(score={"archs": 150, "perturb": 0, "chain": 0, "draws": 2, "val_images": 50})
    store = Store(store_path(tmp_path))
    run_id = train_hypernet(cfg, tmp_path, store=store)["run_id"]
    return tmp_path, store, run_id


def smash(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_real_scoring_streams_while_two_readers_poll(trained):
    workdir, store, run_id = trained
    stop = workdir / "stop"
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(store_path(workdir)), run_id, str(stop)],
                                env=ENV, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        proc = subprocess.run(smash("score", "--workdir", str(workdir), "--quiet", "--json"), env=ENV,
                              capture_output=True, text=True, timeout=300)
        time.sleep(0.5)
    finally:
        stop.touch()  # the readers end on it, whatever happened to the scoring run
    assert proc.returncode == 0, proc.stderr
    scored = json.loads(proc.stdout.strip().splitlines()[-1])["scored"]
    for r in readers:
        out = json.loads(r.communicate(timeout=120)[0].strip().splitlines()[-1])
        assert out["errors"] == []
        assert out["counts"] == sorted(out["counts"]), "a reader saw a committed row disappear"
        assert out["counts"][-1] == scored == store.score_count(run_id)
        assert len(set(out["counts"])) > 2, "readers saw the rows arrive while scoring ran"


def test_kill_9_mid_scoring_then_resume_has_no_duplicates(trained):
    workdir, store, run_id = trained
    proc = subprocess.Popen(smash("score", "--workdir", str(workdir), "--quiet"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and store.score_count(run_id) < 8:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = store.score_count(run_id)
    assert 8 <= before < 150
    board = store.leaderboard(run_id, limit=1000)
    assert board["arch_id"].is_unique and board["score_mean"].notna().all()
    done = subprocess.run(smash("score", "--workdir", str(workdir), "--quiet", "--json"), env=ENV,
                          capture_output=True, text=True, timeout=300)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["reused"] == before and summary["scored"] + before == store.score_count(run_id)
    board = store.leaderboard(run_id, limit=1000)
    assert board["arch_id"].is_unique and len(board) == store.score_count(run_id)
