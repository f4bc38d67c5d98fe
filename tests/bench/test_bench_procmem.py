"""bench/procmem.py: the process tree and its peak memory, read on this very process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.procmem import (
    TreeWatcher,
    command_line,
    descendants,
    kind_of,
    parent_pids,
    peak_rss_mb,
    process_env,
)


@pytest.fixture
def child():
    """A process of ours that sleeps until the test ends it."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_descendants_walks_the_whole_tree_below_the_root_only():
    parents = {2: 1, 3: 2, 4: 3, 5: 1, 6: 99, 7: 6}
    assert descendants(2, parents) == {3, 4}
    assert descendants(1, parents) == {2, 3, 4, 5}
    assert descendants(4, parents) == set()


def test_a_child_of_this_process_is_found_with_its_memory_and_command(child):
    assert child.pid in descendants(os.getpid(), parent_pids())
    assert parent_pids()[child.pid] == os.getpid()
    assert "time.sleep(60)" in command_line(child.pid)
    assert peak_rss_mb(child.pid) > 1


def test_this_process_reads_its_own_peak_and_environment():
    assert peak_rss_mb(os.getpid()) > 10  # an interpreter with pytest loaded
    assert process_env(os.getpid()).get("PATH") == os.environ.get("PATH") or "PATH" not in os.environ


def test_a_process_that_is_gone_reads_as_none():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert peak_rss_mb(proc.pid) is None
    assert command_line(proc.pid) == ""
    assert process_env(proc.pid) == {}


@pytest.mark.parametrize("cmdline, kind", [
    ("/venv/bin/python -m engine.jobs.runner --workdir w --job j", "runner"),
    ("/venv/bin/python -m streamlit run app/main.py --server.port 8765", "dashboard"),
    ("/venv/bin/python -m cli engine --workdir w --jobs 1", "engine"),
    ("/venv/bin/python -m cli up --workdir w --config c", "up"),
    ("/usr/bin/sleep 60", "sleep"),
])
def test_kind_of_names_the_processes_smash_up_starts(cmdline, kind):
    assert kind_of(cmdline) == kind


def test_tree_watcher_keeps_a_peak_per_kind(child):
    with TreeWatcher(os.getpid(), every_s=0.05) as watcher:
        watcher.poll()
    kind = kind_of(command_line(child.pid))
    assert watcher.peaks[kind] > 1
    assert watcher.envs[kind].get("PATH") == os.environ.get("PATH")
