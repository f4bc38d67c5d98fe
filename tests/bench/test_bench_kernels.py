"""bench/kernels.py: kernels built per step of a real schedule, read from oneDNN's own log."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.kernels import MARK, parse, windows
from tests.conftest import ROOT

LOG = f"""onednn_verbose,v1,info,oneDNN v3
onednn_verbose,v1,primitive,create:cache_miss,cpu,convolution,brg,forward,src:bf16,,,mb50ic8oc8,0.5
onednn_verbose,v1,primitive,create:cache_hit,cpu,convolution,brg,forward,src:bf16,,,mb50ic8oc8,0.001
onednn_verbose,v1,primitive,create:cache_miss,cpu,reorder,jit,undef,src:f32,,,8x8,0.25
{MARK},0,0.100000
onednn_verbose,v1,primitive,create:cache_hit,cpu,convolution,brg,forward,src:bf16,,,mb50ic8oc8,0.001
{MARK},1,0.050000
onednn_verbose,v1,primitive,create:cache_miss,cpu,convolution,brg,backward,src:bf16,,,mb50ic8oc8,1.25
{MARK},2,0.060000
{MARK},total,0.300000
"""


def test_each_step_gets_the_kernels_built_before_its_marker_and_only_misses_count():
    steps, total = parse(LOG)
    assert total == pytest.approx(0.3)
    assert [(r["step"], r["built"], r["create_ms"]) for r in steps] == [(0, 2, 0.75), (1, 0, 0.0), (2, 1, 1.25)]
    w = windows(steps, 2)
    assert [x["steps"] for x in w] == ["0-0", "1-1", "2-2"]  # 3 steps in windows of 1
    assert w[0]["create_share"] == pytest.approx(0.75 / 100, abs=1e-4)
    w = windows(steps, 1)[0]
    assert w["built_per_step"] == 1.0 and w["step_ms"] == pytest.approx(70.0)


@pytest.mark.slow
def test_a_smoke_run_logs_kernels_and_times_the_warm_up_thread():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "kernels.py"), "--config", "configs/smoke.toml",
                           "--image", "1,12,12", "--steps", "6", "--of", "12", "--windows", "2", "--warm-next",
                           "--rounds", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [w["steps"] for w in out["windows"]] == ["0-2", "3-5"]
    # a fresh process builds kernels for its first step's shapes: the log is really read
    assert out["windows"][0]["built_per_step"] > 0 and out["built"] > 0
    assert 0 < out["create_share"] < 1
    assert set(out["steps_per_s"]) == {"plain", "warm"} and out["warm_next_speedup"] > 0

