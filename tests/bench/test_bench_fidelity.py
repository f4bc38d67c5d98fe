"""bench/fidelity.py: the ranking study end to end at smoke size, and its ceiling arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.fidelity import VARIANTS, ceilings, metric_pairs, variant_config
from core.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_ceiling_of_the_seed_mean_follows_spearman_brown():
    metrics = {"ceiling": {"spearman": 0.5, "spearman_ci": [0.2, 0.7]}}
    out = ceilings(metrics, 2)
    assert out["ceiling"] == 0.5 and out["ceiling_ci"] == [0.2, 0.7]
    assert out["ceiling_of_mean"] == pytest.approx((2 * 0.5 / 1.5) ** 0.5, abs=1e-3)
    assert "ceiling_of_mean" not in ceilings({"ceiling": {"spearman": -0.1, "spearman_ci": [-0.5, 0.3]}}, 2)
    assert ceilings({"ceiling": None}, 1) == {"ceiling": None, "ceiling_ci": None}


def test_metric_pairs_compare_loss_and_error_hypernet_by_hypernet():
    truth = np.arange(8.0)
    error = [truth[::-1].copy(), truth.copy()]  # the first HyperNet's error ranks backwards
    loss = [truth.copy(), truth.copy()]
    out = metric_pairs({"error": error, "loss": loss}, truth)
    assert out["hypernets"] == 2 and out["loss_better"] == 1
    assert out["gains"] == [2.0, 0.0] and out["mean_gain"] == 1.0


def test_variants_multiply_the_steps_or_change_the_config():
    cfg = load_config(ROOT / "configs" / "smoke.toml")
    assert variant_config(cfg, {"steps_x": 8}).train.steps == 8 * cfg.train.steps
    larger = variant_config(cfg, {"seed": 1, "hypernet": {"growth": [16, 16, 16], "layers": [6, 8, 4]}})
    assert larger.seed == 1 and larger.hypernet.growth == (16, 16, 16) and larger.train == cfg.train


@pytest.mark.slow
def test_the_study_runs_at_smoke_size_and_writes_every_figure(tmp_path):
    out = tmp_path / "fidelity.json"
    cmd = [sys.executable, str(ROOT / "bench" / "fidelity.py"), "--workdir", str(tmp_path / "w"),
           "--config", str(ROOT / "configs" / "smoke.toml"), "--k", "6", "--sample", "10", "--steps", "12",
           "--epochs", "1", "--steps-per-epoch", "3", "--score-draws", "3", "--finetune-steps", "2", "--workers", "2",
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["n_archs"] == 6 and result["score"]["draws"] == 3
    for name in ("smash", "params", "flops", "naswot", "smash_2_hypernets"):
        assert set(result[name]) >= {"spearman", "spearman_ci", "kendall", "topk_precision"}, name
    assert result["ceiling"] is not None and "stability" in result
    rows = [(row["variant"], row["metric"]) for row in result["ablations"]]
    assert rows[:2] == [("as built, 3 draws", "error"), ("as built, 3 draws", "loss")]
    assert rows[2][0].startswith("as the search scored them")
    assert [m for v, m in rows if "recalibrated" in v] == ["error", "loss"]
    # seed 1 and every variant, each by both metrics
    hypernets = 1 + 1 + len(VARIANTS)
    assert [v for v, _ in rows if "fine-tuned" in v] == ["as built, fine-tuned 2 steps on each arch before scoring"]
    assert len(rows) == 6 + 2 * (hypernets - 1) and sum("twice as long" in v for v, _ in rows) == 2
    assert result["score"]["metric"] in ("error", "loss")
    assert result["hypernets"]["n"] == hypernets and -1 <= result["hypernets"]["pairwise_spearman_mean"] <= 1
    pairs = result["loss_vs_error"]
    assert pairs["hypernets"] == hypernets and len(pairs["gains"]) == hypernets
    assert 0 <= pairs["loss_better"] <= hypernets
    assert {"flops", "params", "convs"} <= set(result["rewards"])
    assert all(set(r) == {"truth", "smash_consensus"} for r in result["rewards"].values())
    # A second run resumes every stage and gives the same figures.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads(out.read_text())
    assert {k: v for k, v in rerun.items() if k != "seconds"} == {k: v for k, v in result.items() if k != "seconds"}
