"""Faults: kills, corrupt files, concurrent trainers and engines, ignored cancels, suspends.

Each test makes the fault happen for real (a SIGKILL, a truncated checkpoint, a second
process) and checks that nothing is lost, nothing unrelated is killed, and the user gets
one clear line where they did something the project refuses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
import torch

from core.control import Control
from core.errors import Cancelled
from core.ids import run_id_for
from core.jobs import RetrainJob
from engine.jobs.supervisor import Child, Engine
from engine.runtime import checkpoint as ckpt
from engine.runtime import procid
from engine.runtime.checkpoint import step_checkpoints
from engine.runtime.workdir import checkpoint_dir, run_lock
from engine.train.final import retrain_arch
from engine.train.hypernet import train_hypernet
from store import Store, store_path
from tests.conftest import ROOT, run_smash, tiny_config, write_config


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _wait(fn, timeout: float = 60.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def _sleeper() -> subprocess.Popen:
    """An unrelated process in its own group, standing in for whoever reuses a PID."""
    return subprocess.Popen(["sleep", "300"], start_new_session=True)


def _running_job(store: Store, kind: str = "score") -> str:
    job_id = store.enqueue_job(kind, {"n": time.monotonic_ns()}, run_id="r")
    store.claim_job("test")
    return job_id


# ------------------------------------------------------------------ training

# kill -9 mid-training: tests/test_train_hypernet.py::test_kill_9_then_rerun_resumes asserts
# the SIGKILL exit code and 0 < resumed_from < total, and the trajectory of the resumed run.


def test_corrupt_newest_checkpoint_resumes_from_the_previous(tmp_path, capfd):
    cfg = tiny_config()  # 12 steps, checkpoints at 6 and 12
    store = Store(store_path(tmp_path))
    run_id = train_hypernet(cfg, tmp_path, store=store)["run_id"]
    found = step_checkpoints(checkpoint_dir(tmp_path, run_id))
    assert [s for s, _ in found] == [6, 12]
    whole = ckpt.load(found[-1][1])  # what the uninterrupted run ended with
    trajectory = store.train_metrics(run_id)
    found[-1][1].write_bytes(found[-1][1].read_bytes()[:100])  # a torn write
    again = train_hypernet(cfg, tmp_path, store=store)
    assert again["resumed_from"] == 6 and again["steps"] == 12
    assert "falling back to an older checkpoint" in capfd.readouterr().err
    assert store.get_run(run_id)["status"] == "done"
    # The rerun of steps 7-12 followed the same trajectory: the same metrics, the same weights.
    redone = ckpt.load(found[-1][1])
    for part in ("hyper", "net"):
        assert all(torch.equal(redone[part][k], whole[part][k]) for k in whole[part]), part
    pd.testing.assert_frame_equal(store.train_metrics(run_id)[["step", "loss", "error", "lr"]],
                                  trajectory[["step", "loss", "error", "lr"]], check_exact=True)


def test_second_trainer_on_one_run_is_refused(tmp_path):
    cfg = tiny_config()
    path = write_config(tmp_path / "c.toml", cfg)
    w = tmp_path / "w"
    with run_lock(w, run_id_for(cfg)):
        proc = run_smash("train", "--config", str(path), "--workdir", str(w))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "already being trained" in lines[0], proc.stderr


def test_stopped_training_and_retrain_rows_are_not_left_running(tmp_path):
    cfg = tiny_config()
    store = Store(store_path(tmp_path))
    with pytest.raises(Cancelled):
        train_hypernet(cfg, tmp_path, store=store, control=Control(should_stop=lambda: True))
    assert store.get_run(run_id_for(cfg))["status"] == "cancelled"
    train_hypernet(cfg, tmp_path, store=store)
    from core.space import sample_arch
    from engine.runtime.rng import step_rng

    arch = sample_arch(cfg.space, step_rng(0, 0, 1))
    with pytest.raises(Cancelled):
        retrain_arch(cfg, arch, tmp_path, store, RetrainJob(), Control(should_stop=lambda: True), run_id=run_id_for(cfg))
    rows = store.retrains(run_id_for(cfg))
    assert list(rows["status"]) == ["cancelled"]


# ------------------------------------------------------------------ the engine

def test_recovery_never_kills_a_process_that_is_not_the_jobs(tmp_path):
    engine = Engine(tmp_path)
    me = procid.identify(os.getpid())
    others = [_sleeper() for _ in range(3)]
    victims = {
        "other boot": dict(boot_id="not-this-boot"),
        "other start": dict(proc_start=None),  # filled below: a start time off by one
        "other host": dict(host="elsewhere.example"),
    }
    jobs = []
    for proc, (why, change) in zip(others, victims.items(), strict=True):
        ident = procid.identify(proc.pid)
        fields = dict(pid=proc.pid, host=ident.host, boot_id=ident.boot_id, proc_start=ident.start)
        fields.update(change)
        if why == "other start":
            fields["proc_start"] = ident.start + 1
        job_id = _running_job(engine.store)
        engine.store.record_process(job_id, **fields)
        jobs.append(job_id)
    own = _sleeper()
    own_job = _running_job(engine.store)
    ident = procid.identify(own.pid)
    engine.store.record_process(own_job, pid=own.pid, host=ident.host, boot_id=ident.boot_id,
                                proc_start=ident.start)
    try:
        assert sorted(engine.recover()) == sorted([*jobs, own_job])
        time.sleep(0.2)
        assert all(p.poll() is None for p in others), "an unrelated process was killed"
        assert own.wait(timeout=10) == -signal.SIGKILL  # the job's own process still is
        assert all(engine.store.get_job(j)["status"] == "queued" for j in jobs)
        assert me.matches_live_process()
    finally:
        for p in [*others, own]:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_job_that_ignores_cancel_is_killed_after_the_grace_period(tmp_path):
    engine = Engine(tmp_path, cancel_grace_s=0.5)
    job_id = _running_job(engine.store)
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                               "print('ready', flush=True); time.sleep(300)"],
        start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline().strip() == "ready"
    engine.children[job_id] = Child(job_id, stubborn, tmp_path / "x.log")
    try:
        engine.store.request_cancel(job_id)
        t0 = time.monotonic()
        _wait(lambda: (engine.enforce(), engine.reap(), stubborn.poll() is not None)[-1], timeout=10)
        assert 0.5 <= time.monotonic() - t0 < 10
        assert stubborn.returncode == -signal.SIGKILL
        assert engine.store.get_job(job_id)["status"] == "cancelled"
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
            stubborn.wait()


def test_a_job_killed_by_a_signal_is_requeued_to_resume(tmp_path):
    """A kill -9 (or the out-of-memory killer) ends no work: the job goes back in the queue
    and resumes from its checkpoints, its run still running."""
    engine = Engine(tmp_path)
    engine.store.create_run("r1", name="r", config={}, seed=0, code_version="t", dataset="d",
                            num_classes=2, image_shape=[1, 4, 4], steps_total=10, status="running")
    job_id = engine.store.enqueue_job("train", {"config": "x.toml"})
    engine.store.claim_job("test")
    engine.store.attach_run(job_id, "r1")
    victim = _sleeper()
    engine.children[job_id] = Child(job_id, victim, tmp_path / "x.log")
    victim.kill()
    victim.wait()
    engine.reap()
    assert engine.store.get_job(job_id)["status"] == "queued"
    assert engine.store.get_run("r1")["status"] == "running"


def test_a_train_job_killed_by_a_signal_leaves_its_run_failed(tmp_path):
    """Once it has had its tries, a job killed again fails, and its run with it."""
    engine = Engine(tmp_path, max_attempts=1)
    engine.store.create_run("r1", name="r", config={}, seed=0, code_version="t", dataset="d",
                            num_classes=2, image_shape=[1, 4, 4], steps_total=10)
    job_id = engine.store.enqueue_job("train", {"config": "x.toml"})
    engine.store.claim_job("test")
    engine.store.attach_run(job_id, "r1")
    victim = _sleeper()
    engine.children[job_id] = Child(job_id, victim, tmp_path / "x.log")
    victim.kill()
    victim.wait()
    engine.reap()
    assert "signal 9" in engine.store.get_job(job_id)["error"]
    assert engine.store.get_run("r1")["status"] == "failed"


def test_second_engine_gets_one_line_and_exit_2(tmp_path):
    first = Engine(tmp_path)
    first.acquire()
    try:
        proc = run_smash("engine", "--workdir", str(tmp_path))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert "already serving" in lines[0] and str(os.getpid()) in lines[0]
        assert (tmp_path / "engine.lock").read_text().strip() == str(os.getpid())
    finally:
        first.shutdown()


def test_stale_jobs_are_requeued_until_the_attempt_cap(tmp_path):
    engine = Engine(tmp_path, stale_after_s=0.3, max_attempts=2)
    job_id = _running_job(engine.store)
    time.sleep(0.5)
    engine.enforce()
    assert engine.store.get_job(job_id)["status"] == "queued"
    engine.store.claim_job("test")  # the second attempt
    time.sleep(0.5)
    engine.enforce()
    job = engine.store.get_job(job_id)
    assert job["status"] == "failed" and "2 attempts" in job["error"]


def test_no_job_is_judged_stale_right_after_the_engine_was_suspended(tmp_path):
    engine = Engine(tmp_path, stale_after_s=0.3, poll_s=0.1)
    job_id = _running_job(engine.store)
    time.sleep(0.5)
    engine._last_tick = time.time() - 120  # the engine did not run for two minutes (a suspend)
    engine.enforce()
    assert engine.store.get_job(job_id)["status"] == "running"
    time.sleep(0.4)
    engine.enforce()  # awake for a whole stale period, and still no heartbeat
    assert engine.store.get_job(job_id)["status"] == "queued"


# ------------------------------------------------------------------ smash up

@pytest.mark.slow
def test_smash_up_starts_serves_and_stops_cleanly(tmp_path):
    from cli.dashboard import free_port

    cfg = write_config(tmp_path / "c.toml", tiny_config(train={"steps": 6}))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "up", "--workdir", str(tmp_path / "w"),
                             "--config", str(cfg), "--port", str(port), "--archs", "2", "--json"],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait(lambda: _health(port), timeout=120, every=0.5)
        log = tmp_path / "w" / "logs" / "dashboard.log"
        assert log.is_file()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["url"].endswith(str(port)) and summary["dashboard_exit"] is not None
    assert not _health(port)


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False

