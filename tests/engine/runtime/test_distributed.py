"""Data-parallel HyperNet training under torchrun (DDP over gloo on the CPU)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.config import ConfigError
from engine.runtime import distributed
from engine.train.hypernet import train_hypernet
from store import Store, store_path
from tests.conftest import ROOT, tiny_config

FASHION = Path("/usr/share/datasets/fashion-mnist")
TORCHRUN = Path(sys.executable).parent / "torchrun"


def test_batch_must_split_over_the_ranks():
    assert distributed.shard_size(32, 2) == 16
    assert distributed.shard_rows(32, 1, 2) == slice(16, 32)
    with pytest.raises(ConfigError, match=r"batch_size = 30 does not split over 4 torchrun"):
        distributed.shard_size(30, 4)


def test_mismatch_fails_before_joining_a_process_group(tmp_path, monkeypatch):
    for k, v in {"WORLD_SIZE": "3", "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match="multiple of 3"):
        train_hypernet(tiny_config(), tmp_path, store=None)
    assert not distributed.active()


def test_no_torchrun_means_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.env_world_size() == 1 and not distributed.launched()
    assert distributed.is_main()


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist (scripts/setup.sh)")
@pytest.mark.skipif(not TORCHRUN.is_file(), reason="no torchrun next to the Python interpreter")
def test_torchrun_two_ranks_train_in_lockstep(tmp_path):
    conf = tmp_path / "smoke.toml"
    smoke = (ROOT / "configs" / "smoke.toml").read_text()
    assert "batch_size = 32" in smoke  # splits over 2 ranks
    conf.write_text('device = "cpu"\n' + smoke)  # gloo, even where CUDA is present
    work, dump = tmp_path / "w", tmp_path / "dump"
    proc, summaries = torchrun_train(conf, work, dump)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert len(summaries) == 2 and all(s["world_size"] == 2 for s in summaries)

    store = Store(store_path(work))
    run_id = summaries[0]["run_id"]
    run = store.get_run(run_id)
    assert run["status"] == "done" and run["step"] == 40
    ckpts = store.checkpoints(run_id)
    assert list(ckpts["step"]) == [20, 40]
    m = store.train_metrics(run_id)
    assert list(m["step"]) == [10, 20, 30, 40]
    assert m["loss"].notna().all() and m["error"].between(0, 1).all()

    r0 = torch.load(dump / "rank0.pt", weights_only=True)
    r1 = torch.load(dump / "rank1.pt", weights_only=True)
    final = torch.load(ckpts["path"].iloc[-1], weights_only=True)
    for part in ("hyper", "net"):
        assert r0[part].keys() == r1[part].keys() == final[part].keys()
        for k, v in r0[part].items():
            assert torch.equal(v, r1[part][k]), f"ranks differ at {part}.{k}"
            assert torch.equal(v, final[part][k].cpu()), f"checkpoint differs at {part}.{k}"

    # Lose the last checkpoint: both ranks resume from step 20 and end where they did.
    Path(ckpts["path"].iloc[-1]).unlink()
    proc, summaries = torchrun_train(conf, work, tmp_path / "dump2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert [s["resumed_from"] for s in summaries] == [20, 20]
    for r in (0, 1):
        again = torch.load(tmp_path / "dump2" / f"rank{r}.pt", weights_only=True)
        for part in ("hyper", "net"):
            assert all(torch.equal(v, again[part][k]) for k, v in r0[part].items())


def torchrun_train(conf: Path, work: Path, dump: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """`torchrun -m cli train` with 2 CPU ranks; each dumps its final weights into `dump`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "SMASH_THREADS": "1",
           distributed.DUMP_ENV: str(dump)}
    proc = subprocess.run(
        [str(TORCHRUN), "--standalone", "--nproc-per-node=2", "-m", "cli", "train",
         "--config", str(conf), "--workdir", str(work), "--quiet", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    # Both ranks print a summary to the same pipe, not always on lines of their own.
    return proc, [json.loads(obj) for obj in re.findall(r"\{[^{}]*\}", proc.stdout)]
