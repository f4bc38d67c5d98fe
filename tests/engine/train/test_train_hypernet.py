import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from core.config import Config
from core.control import Control
from core.errors import Cancelled
from core.ids import run_id_for
from engine.runtime.workdir import checkpoint_dir
from engine.train.hypernet import train_hypernet
from store import Store, store_path
from tests.conftest import ROOT, tiny_config, write_config


def metrics(workdir, run_id) -> pd.DataFrame:
    return Store(store_path(workdir)).train_metrics(run_id)[["step", "loss", "error"]].reset_index(drop=True)


def test_training_logs_checkpoints_and_finishes(tmp_path, cfg):
    summary = train_hypernet(cfg, tmp_path, store=Store(store_path(tmp_path)))
    store = Store(store_path(tmp_path))
    run = store.get_run(summary["run_id"])
    assert run["status"] == "done" and run["step"] == cfg.train.steps
    assert Config.from_dict(run["config"]) == cfg
    assert list(store.checkpoints(summary["run_id"])["step"]) == [6, 12]
    m = metrics(tmp_path, summary["run_id"])
    assert list(m["step"]) == [3, 6, 9, 12]
    assert m["loss"].notna().all() and (m["error"].between(0, 1)).all()


def test_resume_follows_the_uninterrupted_trajectory(tmp_path, cfg):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    train_hypernet(cfg, a, store=Store(store_path(a)))
    calls = {"n": 0}

    def stop_after_first_checkpoint() -> bool:
        calls["n"] += 1
        return calls["n"] > 7  # the check runs before each step: stop at step 7

    with pytest.raises(Cancelled):
        train_hypernet(cfg, b, store=Store(store_path(b)), control=Control(should_stop=stop_after_first_checkpoint))
    summary = train_hypernet(cfg, b, store=Store(store_path(b)))
    assert summary["resumed_from"] == 7
    run_id = run_id_for(cfg)
    pd.testing.assert_frame_equal(metrics(a, run_id), metrics(b, run_id), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_kill_9_then_rerun_resumes(tmp_path):
    cfg = tiny_config(train={"steps": 40, "checkpoint_every": 10, "log_every": 5})
    conf = write_config(tmp_path / "tiny.toml", cfg)
    ref, work = tmp_path / "ref", tmp_path / "work"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "cli", "train", "--config", str(conf), "--quiet", "--workdir"]
    subprocess.run(cmd + [str(ref)], check=True, env=env, capture_output=True, timeout=300)
    proc = subprocess.Popen(cmd + [str(work)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = checkpoint_dir(work, run_id_for(cfg))
    deadline = time.time() + 240
    while time.time() < deadline and not (folder / "step_00000020.pt").exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # killed mid-run, not finished before the kill
    assert (folder / "step_00000020.pt").exists()
    done = subprocess.run(cmd + [str(work), "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0 < summary["resumed_from"] < summary["steps"] == 40  # a restart from zero fails here
    run_id = run_id_for(cfg)
    pd.testing.assert_frame_equal(metrics(ref, run_id), metrics(work, run_id), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("generate", ["bottleneck+ops", "none"])
def test_trains_with_every_generation_setting(tmp_path, generate):
    cfg = tiny_config(hypernet={"generate": generate}, train={"steps": 4, "checkpoint_every": 4})
    summary = train_hypernet(cfg, tmp_path, store=Store(store_path(tmp_path)))
    assert summary["steps"] == 4 and summary["last_loss"] == summary["last_loss"]


LEARNING = {"steps": 100, "batch_size": 32, "lr": 0.01, "log_every": 20, "checkpoint_every": 100}
"""A tiny run that learns visibly: its loss falls from chance (2.30) to about 2.11-2.14
in fp32 and bf16 alike, in a few seconds."""


def test_bf16_training_on_the_cpu_still_learns(tmp_path):
    cfg = tiny_config(precision="bf16", train=LEARNING)
    summary = train_hypernet(cfg, tmp_path, store=Store(store_path(tmp_path)))
    assert summary["precision"] == "bf16"  # the run says what it ran in
    loss = metrics(tmp_path, summary["run_id"])["loss"]
    assert loss.notna().all()
    # Measured: 2.306 -> 2.114 in bf16 (2.308 -> 2.136 in fp32); a run that does not
    # learn stays within a percent of chance.
    assert loss.iloc[-1] < 0.96 * loss.iloc[0], list(loss)
