"""bench/chaos.py at a small size: processes killed at random while `smash up` trains and
scores; the end must equal a run that saw no kill."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import FASHION, ROOT

pytestmark = pytest.mark.slow


def test_random_kills_lose_nothing_and_change_nothing(tmp_path):
    if not FASHION.is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist (scripts/setup.sh)")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "chaos.py"), "--workdir", str(tmp_path),
                           "--min-gap", "3", "--max-gap", "8", "--steps", "200", "--archs", "12", "--kills", "3",
                           "--seed", "1", "--deadline", "900"], capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["kills_made"] >= 1, out
    assert not any(out["differences"].values()) and not any(out["rows_lost"].values()), out
    assert out["final_checkpoint_equal"] and out["smash_top_equal"], out
    assert not any(out["duplicates"].values()), out
    assert out["chaos_jobs"]["not_final"] == 0 and out["chaos_jobs"]["ended_without_reason"] == 0, out
    assert out["left_running"] == 0 and out["kills_survived"] == out["kills_made"]
    assert min(out["rows_compared"].values()) > 0
