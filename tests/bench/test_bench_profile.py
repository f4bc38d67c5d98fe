"""bench/peak.py and bench/profile.py: the machine's plain-convolution rate, and where a step goes."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_peak_and_profile_run_and_name_where_the_step_goes():
    """The plain-convolution rate and the grouped profile table, at a tiny size."""
    peak = subprocess.run([sys.executable, str(ROOT / "bench" / "peak.py"), "--threads", "1", "--reps", "2"],
                          capture_output=True, text=True, timeout=600)
    assert peak.returncode == 0, peak.stderr[-2000:]
    rates = json.loads(peak.stdout.strip().splitlines()[-1])
    assert set(rates["peak_gflops"]) == {"fp32", "bf16"} and all(v > 0 for v in rates["gflops"].values())
    prof = subprocess.run([sys.executable, str(ROOT / "bench" / "profile.py"), "--config",
                           str(ROOT / "configs" / "smoke.toml"), "--image", "1,16,16", "--batch", "8",
                           "--steps", "2", "--warmup", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=600)
    assert prof.returncode == 0, prof.stderr[-2000:]
    out = json.loads(prof.stdout.strip().splitlines()[-1])
    assert any(k.startswith("conv") for k in out["smash_ms"]) and "batch norm" in out["smash_ms"]
    assert "HyperNet (forward)" in out["smash_ms"] and 0 < out["fraction_of_peak"] < 1.5
    assert "HyperNet (backward convolutions)" in out["smash_ms"]  # batch 1: not the network's
    assert "HyperNet (backward convolutions)" not in out["static_ms"]
    assert out["hyper_gflop"] > 0 and out["floor_ratio"] > 1
    assert "limit: plain 3x3 conv" in prof.stdout


def test_step_times_smash_against_static_as_a_fraction_of_the_machine():
    """bench/step.py at a tiny size: both regimes, the SMASH over static ratios, and each
    rate as a fraction of bench/peak.py's on this machine."""
    step = subprocess.run([sys.executable, str(ROOT / "bench" / "step.py"), "--config",
                           str(ROOT / "configs" / "smoke.toml"), "--image", "1,16,16", "--batch", "8",
                           "--archs", "1", "--reps", "1", "--warmup", "1", "--threads", "1",
                           "--precision", "fp32"], capture_output=True, text=True, timeout=600)
    assert step.returncode == 0, step.stderr[-2000:]
    out = json.loads(step.stdout.strip().splitlines()[-1])
    for regime in ("early", "annealed"):
        assert out[f"{regime}_smash_step_s"] > 0 and out[f"{regime}_static_step_s"] > 0
        ratio = out[f"{regime}_smash_step_s"] / out[f"{regime}_static_step_s"]  # from the rounded times
        assert abs(out[f"{regime}_ratio"] - ratio) < 0.02 * ratio
    assert any(k.endswith("fraction_of_peak") and 0 < v < 1.5 for k, v in out.items())
    for regime in ("early", "annealed"):  # the HyperNet's share of the work, and the ratio it implies
        assert out[f"{regime}_hyper_gflop"] > 0
        assert out[f"{regime}_floor_ratio"] > 1
        assert abs(out[f"{regime}_floor_ratio"] - 1 - out[f"{regime}_hyper_share"]) < 2e-4
        assert out[f"{regime}_smash_with_hyper_gflops"] > out[f"{regime}_smash_gflops"]
    assert "limit: plain 3x3 conv" in step.stdout
