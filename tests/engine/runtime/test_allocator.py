"""engine/runtime/allocator.py: which malloc a process runs on, and the re-exec onto it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.runtime import allocator
from engine.runtime.allocator import REEXEC_MARK, AllocatorError, choose, loaded, preload_env
from tests.conftest import ROOT

TCMALLOC = allocator.find("tcmalloc")


@pytest.fixture
def libs(tmp_path):
    """A library folder holding (empty) files named like both allocators' libraries."""
    for name in allocator.LIBRARIES.values():
        (tmp_path / name).write_bytes(b"")
    return (str(tmp_path),)


def test_auto_picks_tcmalloc_where_installed_and_the_system_allocator_elsewhere(libs, tmp_path):
    assert choose({}, libs) == ("tcmalloc", f"{libs[0]}/libtcmalloc_minimal.so.4")
    assert choose({"SMASH_ALLOCATOR": "auto"}, libs)[0] == "tcmalloc"
    empty = tmp_path / "none"
    empty.mkdir()
    assert choose({}, (str(empty),)) == ("system", None)
    assert choose({"SMASH_ALLOCATOR": "system"}, libs) == ("system", None)
    assert choose({"SMASH_ALLOCATOR": "JeMalloc"}, libs) == ("jemalloc", f"{libs[0]}/libjemalloc.so.2")


def test_a_bad_or_missing_allocator_is_one_clear_line(tmp_path):
    with pytest.raises(AllocatorError, match="want one of auto, tcmalloc, jemalloc, system"):
        choose({"SMASH_ALLOCATOR": "mimalloc"})
    with pytest.raises(AllocatorError, match=r"libjemalloc\.so\.2 is not installed \(apt-get install libjemalloc2\)"):
        choose({"SMASH_ALLOCATOR": "jemalloc"}, (str(tmp_path),))


def test_preload_env_puts_the_chosen_library_first_and_keeps_other_preloads(libs):
    env = preload_env({"LD_PRELOAD": "/opt/libother.so /x/libjemalloc.so.2", "PATH": "/bin"}, libs)
    assert env["LD_PRELOAD"] == f"{libs[0]}/libtcmalloc_minimal.so.4 /opt/libother.so"
    assert env["PATH"] == "/bin" and int(env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]) >= 1 << 40
    assert preload_env(env, libs)["LD_PRELOAD"] == env["LD_PRELOAD"]  # idempotent
    system = preload_env({**env, "SMASH_ALLOCATOR": "system"}, libs)
    assert system["LD_PRELOAD"] == "/opt/libother.so"
    assert "LD_PRELOAD" not in preload_env({"LD_PRELOAD": env["LD_PRELOAD"].split()[0],
                                            "SMASH_ALLOCATOR": "system"}, libs)


def test_loaded_reads_the_process_maps():
    line = "7f00-7f10 r-xp 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/{}\n"
    assert loaded(line.format("libtcmalloc_minimal.so.4")) == "tcmalloc"
    assert loaded(line.format("libjemalloc.so.2")) == "jemalloc"
    assert loaded(line.format("libc.so.6")) == "system"


def run_reexec(**env: str) -> str:
    """A fresh process that calls reexec first thing, then says what it runs on."""
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", REEXEC_MARK, "SMASH_ALLOCATOR")}
    code = "from engine.runtime import allocator; allocator.reexec(); print(allocator.loaded())"
    proc = subprocess.run([sys.executable, "-c", code], env={**base, "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout.strip()


@pytest.mark.skipif(TCMALLOC is None, reason="libtcmalloc-minimal4 not installed (scripts/setup.sh installs it)")
def test_a_command_restarts_itself_once_on_tcmalloc_and_back_off_it_when_told():
    assert run_reexec() == "tcmalloc"
    assert run_reexec(SMASH_ALLOCATOR="system", LD_PRELOAD=TCMALLOC) == "system"
    # tried once already for tcmalloc: never again, whatever happened then
    assert run_reexec(**{REEXEC_MARK: "tcmalloc"}) == "system"


def test_a_bad_setting_runs_on_the_system_allocator_and_says_why():
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", REEXEC_MARK)}
    code = "from engine.runtime import allocator; allocator.reexec(); print(allocator.loaded())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**base, "PYTHONPATH": str(ROOT), "SMASH_ALLOCATOR": "mimalloc"})
    assert proc.returncode == 0 and proc.stdout.strip() == "system"
    assert proc.stderr.strip().splitlines() == [
        "smash: SMASH_ALLOCATOR='mimalloc': want one of auto, tcmalloc, jemalloc, system; using the system allocator"]


def test_the_engine_refuses_an_allocator_it_cannot_start_jobs_on(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SMASH_ALLOCATOR": "mimalloc"}
    proc = subprocess.run([sys.executable, "-m", "cli", "engine", "--workdir", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "smash engine: error: SMASH_ALLOCATOR='mimalloc': want one of auto, tcmalloc, jemalloc, system")
    assert not (tmp_path / "engine.lock").exists()


def test_only_the_commands_that_train_or_score_restart_on_the_allocator():
    from cli.boot import HEAVY, command_of

    assert command_of(["train", "--config", "c.toml"]) == "train"
    assert command_of(["--help"]) is None and command_of([]) is None
    assert {"train", "score", "retrain", "correlate"} == HEAVY
    assert not {"graph", "dashboard", "up", "engine"} & HEAVY  # the browser and Streamlit stay on the system's
