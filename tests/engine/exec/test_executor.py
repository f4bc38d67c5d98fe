"""Executors: settings, and the Ray executor on a local Ray against the local one."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from core.arch import Arch
from core.config import load_config
from core.control import Control
from core.executor import ExecutorError, ExecutorSpec, add_executor_args, spec_from_args
from core.jobs import RetrainJob
from engine.exec.ray import RayScoring, retrain_remote
from engine.search import score_run
from engine.train.final import retrain_arch
from engine.train.hypernet import train_hypernet
from store import Store, store_path
from tests.conftest import ROOT, run_smash

FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_bad_executor_settings_are_clear_errors():
    with pytest.raises(ExecutorError, match="unknown executor 'dask'"):
        ExecutorSpec(kind="dask")
    with pytest.raises(ExecutorError, match="cpus per task must be > 0"):
        ExecutorSpec(kind="ray", cpus_per_task=0)
    with pytest.raises(ExecutorError, match="gpus per task must be >= 0"):
        ExecutorSpec(kind="ray", gpus_per_task=-1)


@pytest.mark.parametrize("spec", [
    ExecutorSpec(),
    ExecutorSpec(kind="ray", address="10.0.0.1:6379", cpus_per_task=2, gpus_per_task=0.25, actors=3),
    ExecutorSpec(kind="ray"),
])
def test_spec_survives_the_command_line_the_engine_gives_its_jobs(spec):
    p = argparse.ArgumentParser()
    add_executor_args(p)
    assert spec_from_args(p.parse_args(spec.cli_args())) == spec


def test_scorer_actors_fit_the_cluster():
    fit = RayScoring.default_actors
    assert fit({"CPU": 16.0}, ExecutorSpec(kind="ray", cpus_per_task=2)) == 8
    assert fit({"CPU": 16.0, "GPU": 2.0}, ExecutorSpec(kind="ray", gpus_per_task=0.5)) == 4
    assert fit({"CPU": 1.0}, ExecutorSpec(kind="ray", cpus_per_task=4)) == 1
    with pytest.raises(ExecutorError, match="has 0 GPUs"):
        fit({"CPU": 16.0}, ExecutorSpec(kind="ray", gpus_per_task=1))


def test_cli_refuses_a_bad_ray_setting_in_one_line(tmp_path):
    out = run_smash("score", "--workdir", str(tmp_path), "--executor", "ray", "--ray-cpus", "0")
    assert out.returncode == 2
    assert out.stderr.strip() == "smash score: error: argument --ray-cpus: 0 is out of range; allowed (0, 4096]"


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    spec = ExecutorSpec(kind="ray", local_cpus=2, cpus_per_task=1, actors=2)
    yield spec
    ray.shutdown()


@pytest.fixture(scope="module")
def trained_dirs(tmp_path_factory):
    """One trained smoke run (configs/smoke.toml, on the CPU), copied into two workdirs:
    one per executor."""
    if not FASHION.is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist (scripts/setup.sh)")
    cfg = load_config(ROOT / "configs" / "smoke.toml").replace(device="cpu", score={"probe": 0})
    a = tmp_path_factory.mktemp("local")
    train_hypernet(cfg, a, store=Store(store_path(a)))
    b = tmp_path_factory.mktemp("ray") / "w"
    shutil.copytree(a, b)
    return cfg, a, b


@pytest.mark.slow
def test_ray_executor_scores_and_retrains_like_the_local_one(ray_local, trained_dirs, monkeypatch):
    # One thread per scorer on both sides, so every float is computed the same way.
    monkeypatch.setenv("SMASH_THREADS", "1")
    cfg, local_dir, ray_dir = trained_dirs
    stores = {"local": Store(store_path(local_dir)), "ray": Store(store_path(ray_dir))}
    run_id = stores["local"].runs()["run_id"].iloc[0]

    sums = {
        "local": score_run(local_dir, stores['local'], run_id),
        "ray": score_run(ray_dir, stores['ray'], run_id, executor=ray_local),
    }
    assert sums["ray"]["scored"] == sums["local"]["scored"] >= cfg.score.archs
    assert sums["ray"]["best_arch"] == sums["local"]["best_arch"]
    scores = {k: s.leaderboard(run_id, limit=100).set_index("arch_id").sort_index()
              for k, s in stores.items()}
    assert list(scores["ray"].index) == list(scores["local"].index)
    for col in ("score_mean", "score_std", "stage"):
        assert scores["ray"][col].tolist() == scores["local"][col].tolist(), col

    arch = Arch.from_dict(stores["local"].arch(run_id, sums["local"]["best_arch"])["arch"])
    seen = []
    res = {
        "local": retrain_arch(cfg, arch, local_dir, stores['local'], RetrainJob(epochs=2, max_steps_per_epoch=10), run_id=run_id),
        "ray": retrain_remote(ray_local, cfg, arch, ray_dir, stores["ray"], RetrainJob(epochs=2, max_steps_per_epoch=10),
                              Control(on_progress=lambda f, m: seen.append(f)), run_id=run_id, job_id=None),
    }
    assert res["ray"]["test_error"] == res["local"]["test_error"]
    assert seen == [0.5, 1.0]  # progress came back from the Ray task as it trained
    metrics = {k: s.retrain_metrics(res[k]["retrain_id"]) for k, s in stores.items()}
    assert metrics["ray"]["epoch"].tolist() == [1, 2]
    for col in ("train_loss", "test_error"):
        assert metrics["ray"][col].tolist() == metrics["local"][col].tolist(), col
    rec = stores["ray"].retrains(run_id).iloc[0]
    assert rec["status"] == "done" and rec["test_error"] == res["local"]["test_error"]
