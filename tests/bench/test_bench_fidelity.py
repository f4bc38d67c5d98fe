"""bench/fidelity.py: the ranking study on a truth ladder at smoke size, its CSV, and the
figures rebuilt from that CSV alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.fidelity import VARIANTS, hypernet_figures, variant_config
from core.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def figures(study: dict) -> dict:
    """A study's figures, without the wall time its invocation took."""
    return {k: v for k, v in study.items() if k != "seconds"}


def test_loss_and_error_are_compared_hypernet_by_hypernet():
    truth = np.arange(8.0)
    frame = pd.DataFrame({"a|error|mean": truth[::-1], "a|loss|mean": truth,  # a's error ranks backwards
                          "b|error|mean": truth, "b|loss|mean": truth})
    out = hypernet_figures(frame, ["a"], truth, "loss", 2, 50)["loss_vs_error"]
    assert out == {"hypernets": 1, "loss_better": 1, "mean_gain": 2.0, "gains": [2.0]}


def test_variants_multiply_the_steps_or_change_the_config():
    cfg = load_config(ROOT / "configs" / "smoke.toml")
    assert variant_config(cfg, {"steps_x": 8}).train.steps == 8 * cfg.train.steps
    larger = variant_config(cfg, {"seed": 1, "hypernet": {"growth": [16, 16, 16], "layers": [6, 8, 4]}})
    assert larger.seed == 1 and larger.hypernet.growth == (16, 16, 16) and larger.train == cfg.train


@pytest.mark.slow
def test_the_ladder_study_at_smoke_size_and_its_figures_from_the_csv_alone(tmp_path):
    out, csv, again_out = tmp_path / "fidelity.json", tmp_path / "archs.csv", tmp_path / "again.json"
    cmd = [sys.executable, str(ROOT / "bench" / "fidelity.py"), "--workdir", str(tmp_path / "w"),
           "--config", str(ROOT / "configs" / "smoke.toml"), "--k", "8", "--every", "1", "--sample", "12",
           "--steps", "12", "--epochs", "1,2", "--short", "1x3", "--score-draws", "3", "--finetune-steps", "2",
           "--workers", "2", "--n-boot", "200", "--csv", str(csv), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["n_archs"] == 8 and result["score"]["draws"] == 3
    assert [r["name"] for r in result["rungs"]] == ["3 steps", "1 epoch", "2 epochs"]
    for rung in result["rungs"]:
        assert {"smash", "params", "flops", "naswot", "smash+flops", "learned"} <= set(rung["predictors"])
        assert set(rung["partial"]) == {"smash | flops", "smash | params"} and rung["seconds_per_retrain"] > 0
    assert result["truth"]["rung"] == "2 epochs" and result["smash"] == result["rungs"][-1]["predictors"]["smash"]
    assert result["delta"]["archs"] == 8 and {"error", "loss"} <= set(result["delta"])
    assert result["rungs"][1]["steps"] < result["rungs"][2]["steps"]
    hypernets = 1 + len(VARIANTS)
    assert result["hypernets"]["n"] == hypernets and result["loss_vs_error"]["hypernets"] == hypernets
    assert {"flops", "params", "convs"} <= set(result["rewards"])
    rows = [(row["variant"], row["metric"]) for row in result["ablations"]]
    assert ("as built, batch norm recalibrated", "loss") in rows and len(rows) == 2 * hypernets + 4
    frame = pd.read_csv(csv, skiprows=1)
    assert len(frame) == 8 and {"val_error_s0_e1", "val_error_s1_e2", "val_error_s0_short", "naswot",
                                "as built|loss|mean", "arch_json"} <= set(frame.columns)
    # Every figure again from the CSV alone, and a rerun of the study resumes every stage.
    rebuilt = subprocess.run([sys.executable, str(ROOT / "bench" / "fidelity.py"), "--from-csv", str(csv),
                              "--n-boot", "200", "--out", str(again_out)], capture_output=True, text=True,
                             timeout=600, cwd=ROOT)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert json.loads(again_out.read_text()) == result
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert figures(json.loads(out.read_text())) == figures(result)


@pytest.mark.slow
def test_the_committed_figures_rebuild_from_the_committed_csv(tmp_path):
    """Every figure in docs/fidelity.json (and so in docs/correlation.md) follows from the
    per-arch numbers in docs/fidelity-archs.csv alone."""
    out = tmp_path / "fidelity.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "fidelity.py"), "--from-csv",
                           str(ROOT / "docs" / "fidelity-archs.csv"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    committed = json.loads((ROOT / "docs" / "fidelity.json").read_text())
    assert figures(json.loads(out.read_text())) == figures(committed)
