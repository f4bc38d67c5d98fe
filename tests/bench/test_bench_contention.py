"""bench/contention.py's own logic (the load, the settings, the table) and, at a tiny size,
its worker's use of the training loop."""

from __future__ import annotations

import time

import pytest
import torch

from bench.contention import (
    SETTINGS,
    Load,
    parse_load,
    parse_settings,
    start_load,
    stop_load,
    table,
    worker_env,
)
from bench.contention_worker import steps_in, trainer_for
from tests.conftest import ROOT


@pytest.mark.parametrize("text, load", [
    ("busy", Load(spinners=1)),
    ("busy:3", Load(spinners=3)),
    (" busy:1 ", Load(spinners=1)),
    ("stress-ng --cpu 1", Load(command="stress-ng --cpu 1")),
    ("python -c 'while True: pass'", Load(command="python -c 'while True: pass'")),
])
def test_parse_load(text, load):
    assert parse_load(text) == load


@pytest.mark.parametrize("text", ["", "  ", "busy:0", "busy:x", "busy:", "busy:-2"])
def test_parse_load_rejects_in_one_line(text):
    with pytest.raises(ValueError) as err:
        parse_load(text)
    assert "\n" not in str(err.value)


def test_parse_settings_keeps_the_order_and_names_the_choices():
    assert parse_settings("1,auto") == ["1", "auto"]
    assert parse_settings(",".join(SETTINGS)) == list(SETTINGS)
    with pytest.raises(ValueError, match="2passive"):
        parse_settings("3")


def test_worker_env_sets_only_the_setting(monkeypatch):
    monkeypatch.setenv("SMASH_THREADS", "7")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert "SMASH_THREADS" not in worker_env("auto") and "OMP_WAIT_POLICY" not in worker_env("auto")
    assert worker_env("1")["SMASH_THREADS"] == "1"
    env = worker_env("2passive")
    assert (env["SMASH_THREADS"], env["OMP_WAIT_POLICY"]) == ("2", "PASSIVE")


@pytest.mark.parametrize("load", [Load(spinners=2), Load(command="sleep 30 & sleep 30")])
def test_stop_load_ends_every_process_it_started(load):
    procs = start_load(load)
    assert len(procs) == max(1, load.spinners)
    time.sleep(0.2)
    assert all(p.poll() is None for p in procs)
    stop_load(procs)
    assert all(p.poll() is not None for p in procs)


def test_table_has_a_row_per_setting():
    rows = [{"label": "1 thread", "threads": 1, "quiet_steps": 40, "busy_steps": 30, "busy_over_quiet": 0.75},
            {"label": "cuda", "threads": None, "quiet_steps": 0, "busy_steps": 0, "busy_over_quiet": None}]
    lines = table(rows).splitlines()
    assert len(lines) == 4 and "75%" in lines[2] and lines[3].rstrip().endswith("-")


def test_the_worker_trains_with_the_training_loops_steps(monkeypatch, tmp_path):
    monkeypatch.setenv("SMASH_THREADS", "1")
    before = torch.get_num_threads()
    try:
        trainer = trainer_for(str(ROOT / "configs" / "smoke.toml"), tmp_path)
        steps, seconds = steps_in(trainer, 0.3)
    finally:
        torch.set_num_threads(before)
    assert seconds >= 0.3 and steps >= 0
    assert trainer.window["n"] == steps + 1  # every step went through train_step, the last one too
