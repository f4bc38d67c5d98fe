"""A full disk: the work fails with one line naming the disk, nothing written before is lost,
and once space is freed the same command resumes and finishes.

The workdir lies on a small tmpfs the test mounts (root only); a filler file takes the
rest of its space while the work is under way."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runtime import checkpoint as ckpt
from engine.runtime.workdir import checkpoint_dir
from store import Store, store_path
from tests.conftest import ROOT, tiny_config, tmpfs, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / "disk", "size=32m", "a small file system") as mount:
        yield mount


def smash(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", *args, "--quiet"], cwd=ROOT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def fill(disk: Path) -> Path:
    """Take every byte left on `disk` with one file."""
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1 << 20))
                fh.flush()
        except OSError:
            pass
    return filler


def wait_until(cond, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def finished(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_scoring_onto_a_full_disk_fails_in_one_line_and_resumes(small_disk, tmp_path):
    w = small_disk / "w"
    cfg = write_config(tmp_path / "c.toml", tiny_config(score={
        "archs": 300, "perturb": 0, "chain": 0, "val_images": 20, "batch_size": 20}))
    assert finished(smash("train", "--config", str(cfg), "--workdir", str(w)))[0] == 0
    store = Store(store_path(w))
    run_id = store.latest_run_id()
    proc = smash("score", "--workdir", str(w), "--archs", "300")
    wait_until(lambda: store.score_count(run_id) >= 20 or proc.poll() is not None)
    filler = fill(small_disk)
    code, err = finished(proc)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "is full" in err and str(w) in err and "Traceback" not in err
    kept = store.score_count(run_id)
    assert 20 <= kept < 300, "every score committed before the disk filled is there"
    filler.unlink()
    code, err = finished(smash("score", "--workdir", str(w), "--archs", "300"))
    assert code == 0, err
    assert store.score_count(run_id) == len(store.leaderboard(run_id, limit=10**6)) > kept


def test_a_checkpoint_onto_a_full_disk_keeps_the_previous_one_newest(small_disk, tmp_path):
    w = small_disk / "w"
    cfg = write_config(tmp_path / "c.toml", tiny_config(train={"steps": 600, "batch_size": 16, "log_every": 10,
                                                                "checkpoint_every": 100}))
    proc = smash("train", "--config", str(cfg), "--workdir", str(w))
    folder = lambda: checkpoint_dir(w, next(p.name for p in w.iterdir() if p.name.startswith("tiny")))  # noqa: E731
    wait_until(lambda: w.is_dir() and any(p.name.startswith("tiny") for p in w.iterdir())
               and ckpt.step_checkpoints(folder()) or proc.poll() is not None)
    filler = fill(small_disk)
    code, err = finished(proc)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is full" in err, err
    step, _, state = ckpt.newest_loadable(ckpt.step_checkpoints(folder()))
    assert 100 <= step < 600 and int(state["step"]) == step
    filler.unlink()
    out = subprocess.run([sys.executable, "-m", "cli", "train", "--config", str(cfg), "--workdir", str(w),
                          "--json", "--quiet"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    import json

    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["resumed_from"] >= step and summary["steps"] == 600
