"""bench/fidelity.py: the ranking study end to end at smoke size, and its ceiling arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fidelity import ceilings

ROOT = Path(__file__).resolve().parents[2]


def test_ceiling_of_the_seed_mean_follows_spearman_brown():
    metrics = {"ceiling": {"spearman": 0.5, "spearman_ci": [0.2, 0.7]}}
    out = ceilings(metrics, 2)
    assert out["ceiling"] == 0.5 and out["ceiling_ci"] == [0.2, 0.7]
    assert out["ceiling_of_mean"] == pytest.approx((2 * 0.5 / 1.5) ** 0.5, abs=1e-3)
    assert "ceiling_of_mean" not in ceilings({"ceiling": {"spearman": -0.1, "spearman_ci": [-0.5, 0.3]}}, 2)
    assert ceilings({"ceiling": None}, 1) == {"ceiling": None, "ceiling_ci": None}


@pytest.mark.slow
def test_the_study_runs_at_smoke_size_and_writes_every_figure(tmp_path):
    out = tmp_path / "fidelity.json"
    cmd = [sys.executable, str(ROOT / "bench" / "fidelity.py"), "--workdir", str(tmp_path / "w"),
           "--config", str(ROOT / "configs" / "smoke.toml"), "--k", "6", "--sample", "10", "--steps", "12",
           "--epochs", "1", "--steps-per-epoch", "3", "--score-draws", "3", "--workers", "2",
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["n_archs"] == 6 and result["score"]["draws"] == 3
    for name in ("smash", "params", "flops", "naswot", "smash_2_hypernets"):
        assert set(result[name]) >= {"spearman", "spearman_ci", "kendall", "topk_precision"}, name
    assert result["ceiling"] is not None and "stability" in result
    variants = [row["variant"] for row in result["ablations"]]
    assert variants[:2] == ["as built: error, 3 draws", "as built: loss, 3 draws"]
    assert variants[2].startswith("as the search scored them")
    assert len(variants) == 7 and any("twice as long" in v for v in variants)
    assert result["score"]["metric"] in ("error", "loss")
    assert result["hypernets"]["n"] == 6 and -1 <= result["hypernets"]["pairwise_spearman_mean"] <= 1
    # A second run resumes every stage and gives the same figures.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads(out.read_text())
    assert {k: v for k, v in rerun.items() if k != "seconds"} == {k: v for k, v in result.items() if k != "seconds"}
