"""The `smash` command end to end, in real subprocesses."""

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_smash, tiny_config, write_config

FASHION = Path("/usr/share/datasets/fashion-mnist")


def last_json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist (scripts/setup.sh)")
def test_smoke_pipeline_train_score_retrain_export(tmp_path):
    w = str(tmp_path / "w")
    smoke = str(ROOT / "configs" / "smoke.toml")
    train = last_json(run_smash("train", "--config", smoke, "--workdir", w, "--quiet", "--json"))
    assert train["steps"] == 40
    score = last_json(run_smash("score", "--workdir", w, "--quiet", "--json"))
    assert score["scored"] >= 8 and 0 <= score["best_score"] <= 1
    retrain = last_json(run_smash("retrain", "--workdir", w, "--arch", "best", "--quiet", "--json"))
    assert retrain["arch_id"] == score["best_arch"] and 0 <= retrain["test_error"] <= 1
    assert 0 <= retrain["val_error"] <= 1
    for fmt, name in [("json", "a.json"), ("state_dict", "a.pt"), ("torchscript", "a.ts"), ("onnx", "a.onnx")]:
        out = last_json(run_smash("export", "--workdir", w, "--arch", "best", "--format", fmt,
                                  "--out", str(tmp_path / name), "--json"))
        assert Path(out["out"]).stat().st_size > 0
    arch = json.loads((tmp_path / "a.json").read_text())
    assert arch["blocks"]


def test_tiny_pipeline_and_export_checks(tmp_path):
    cfg = write_config(tmp_path / "tiny.toml", tiny_config())
    w = str(tmp_path / "w")
    last_json(run_smash("train", "--config", str(cfg), "--workdir", w, "--quiet", "--json"))
    last_json(run_smash("score", "--workdir", w, "--quiet", "--json", "--archs", "3"))
    # No trained model yet: a clear error, exit 2.
    proc = run_smash("export", "--workdir", w, "--format", "onnx", "--out", str(tmp_path / "x.onnx"))
    assert proc.returncode == 2 and "retrain" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, needle", [
    (["train", "--config", "missing.toml"], "config file not found"),
    (["score", "--workdir", "{w}"], "no runs in"),
    (["retrain", "--workdir", "{w}", "--arch", "deadbeef"], "no runs in"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    (tmp_path / "w").mkdir()
    args = [a.replace("{w}", str(tmp_path / "w")) for a in args]
    proc = run_smash(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_bad_config_value_is_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[space]\ngroups = [1, 3]\n")
    proc = run_smash("train", "--config", str(bad), "--workdir", str(tmp_path / "w"))
    assert proc.returncode == 2 and "[space].groups" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_data_is_one_line(tmp_path):
    cfg = tiny_config(data={"dataset": "npz", "root": str(tmp_path / "nope.npz")})
    proc = run_smash("train", "--config", str(write_config(tmp_path / "c.toml", cfg)),
                     "--workdir", str(tmp_path / "w"))
    assert proc.returncode == 2 and "nope.npz" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_arch_json_file_is_one_line(tmp_path):
    cfg = write_config(tmp_path / "tiny.toml", tiny_config())
    w = str(tmp_path / "w")
    last_json(run_smash("train", "--config", str(cfg), "--workdir", w, "--quiet", "--json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"unit": 4, "bottleneck": 4, "stem_channels": 8, "blocks": [{"bank_units": 1}]}))
    proc = run_smash("retrain", "--workdir", w, "--arch", str(bad))
    assert proc.returncode == 2 and "malformed arch JSON" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_correlate_retrains_a_spread_and_stores_the_study(tmp_path):
    cfg = write_config(tmp_path / "tiny.toml", tiny_config(retrain={"epochs": 1, "max_steps_per_epoch": 3}))
    w = str(tmp_path / "w")
    last_json(run_smash("train", "--config", str(cfg), "--workdir", w, "--quiet", "--json"))
    last_json(run_smash("score", "--workdir", w, "--quiet", "--json", "--archs", "6"))
    args = ("correlate", "--workdir", w, "--k", "4", "--epochs", "1", "--seeds", "2",
            "--predictors", "smash,params,naswot", "--json", "--quiet")
    out = last_json(run_smash(*args, "--jobs", "2"))
    assert out["retrained"] == 4 and out["failed"] == 0 and out["seeds"] == [0, 1]
    metrics = out["metrics"]
    assert metrics["truth"] == "val_error" and set(metrics["predictors"]) == {"smash", "params", "naswot"}
    names = [m["metric"] for m in metrics["predictors"]["smash"]]
    assert names[:3] == ["Spearman rho", "Kendall tau", "Pearson r"]
    assert -1 <= metrics["ceiling"]["spearman"] <= 1
    from store import Store, store_path
    study = Store(store_path(w)).get_study(out["study_id"])
    assert study["status"] == "done" and len(study["arch_ids"]) == 4 and study["metrics"] == metrics
    again = last_json(run_smash(*args))
    assert again["queued"] == 0 and again["study_id"] == out["study_id"]


def test_queued_score_job_carries_halving_and_runs_it(tmp_path):
    """`smash queue score --halving-min` reaches the job, and the job scores with halving."""
    from engine.jobs.runner import JobContext, run_job
    from engine.train.hypernet import train_hypernet
    from store import Store, store_path

    cfg = tiny_config(score={"archs": 6, "perturb": 0, "chain": 0, "val_images": 60, "batch_size": 30})
    store = Store(store_path(tmp_path))
    run_id = train_hypernet(cfg, tmp_path, store=store)["run_id"]
    out = last_json(run_smash("queue", "score", "--workdir", str(tmp_path), "--archs", "6",
                              "--halving-min", "20", "--json"))
    job = store.get_job(out["job_id"])
    assert job["params"] == {"archs": 6, "halving_min": 20}

    with JobContext(store, job["job_id"]) as ctx:
        summary = run_job(tmp_path, store, job, ctx)
    assert summary["scored"] == 6
    counts = store.leaderboard(run_id, limit=10)["val_images"].value_counts().to_dict()
    assert counts == {20: 4, 60: 2}  # rungs 20 -> 60: the best third (2 of 6) on all images


def test_a_queued_train_job_trains_the_config_as_it_was_when_queued(tmp_path):
    """`smash queue train` keeps a snapshot of the config: editing the file afterwards
    changes nothing the job does."""
    from cli.main import main
    from core.config import Config
    from core.ids import run_id_for
    from engine.jobs.runner import JobContext, run_job
    from store import Store, store_path

    cfg = tiny_config()
    path = write_config(tmp_path / "c.toml", cfg)
    w = tmp_path / "w"
    assert main(["queue", "train", "--config", str(path), "--workdir", str(w), "--quiet"]) == 0
    write_config(path, cfg.replace(train={"steps": 3}, seed=7))  # edited after queueing
    store = Store(store_path(w))
    job = store.claim_job("test", kinds=["train"])
    with JobContext(store, job["job_id"]) as ctx:
        summary = run_job(w, store, job, ctx)
    assert summary["run_id"] == run_id_for(cfg) and summary["steps"] == cfg.train.steps
    assert Config.from_stored(store.get_run(summary["run_id"])["config"]) == cfg
