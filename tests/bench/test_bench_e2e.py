"""bench/e2e.py's settings for the command it measures: threads and CPU pinning."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

import pytest

from bench.e2e import command_env, cpu_set, seconds_to_end


def test_command_env_passes_threads_only_when_asked(monkeypatch):
    monkeypatch.setenv("SMASH_THREADS", "5")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    env = command_env(None)
    assert "SMASH_THREADS" not in env and "OMP_NUM_THREADS" not in env
    assert command_env(1)["SMASH_THREADS"] == "1"


def test_cpu_set_takes_cpus_this_process_may_use():
    allowed = os.sched_getaffinity(0)
    assert cpu_set(None) is None
    one = cpu_set(1)
    assert len(one) == 1 and one <= allowed
    assert cpu_set(len(allowed)) == allowed
    for bad in (0, len(allowed) + 1):
        with pytest.raises(SystemExit, match="--cores"):
            cpu_set(bad)


def test_all_scored_counts_to_the_jobs_recorded_end():
    started = datetime(2026, 12, 6, 8, 0, 0)
    job = {"finished_at": started + timedelta(seconds=349.04)}
    assert seconds_to_end(job, started, time.monotonic()) == 349.0
    # No recorded end: the time the bench saw the job ended, from its own clock.
    assert 9.9 <= seconds_to_end({"finished_at": None}, started, time.monotonic() - 10) <= 11
