"""Workdirs in odd places: a path with spaces and non-ASCII letters works end to end; a
read-only one, or one that cannot be created, is one line and exit 2, and nothing else."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import run_smash, tiny_config, tmpfs, write_config


@pytest.fixture
def read_only(tmp_path):
    """A read-only file system (a tmpfs mounted ro: even root cannot write to it)."""
    with tmpfs(tmp_path / "ro", "ro,size=1m", "a read-only file system") as mount:
        yield mount


def one_line(proc: subprocess.CompletedProcess, needle: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_workdir_with_spaces_and_non_ascii_letters_works_end_to_end(tmp_path):
    w = tmp_path / "my runs" / "Ünïcødé résultats"
    cfg = write_config(tmp_path / "c d.toml", tiny_config())
    for args in (["train", "--config", str(cfg)], ["score", "--archs", "3"],
                 ["retrain", "--arch", "best", "--epochs", "1"]):
        proc = run_smash(*args, "--workdir", str(w), "--quiet")
        assert proc.returncode == 0, proc.stderr
    top = json.loads(run_smash("top", "--workdir", str(w), "--json").stdout)
    assert top["total"] >= 3
    best = top["rows"][0]["arch_id"]
    assert best in run_smash("show", "best", "--workdir", str(w)).stdout
    out = tmp_path / "grafik ü.dot"
    assert run_smash("graph", "best", "--workdir", str(w), "--out", str(out)).returncode == 0 and out.exists()
    exported = tmp_path / "modèle.json"
    assert run_smash("export", "--workdir", str(w), "--out", str(exported)).returncode == 0
    assert json.loads(exported.read_text())["blocks"]


def test_a_read_only_workdir_is_one_line(tmp_path, read_only):
    cfg = str(write_config(tmp_path / "c.toml", tiny_config()))
    one_line(run_smash("train", "--config", cfg, "--workdir", str(read_only / "w")), "Read-only file system")
    one_line(run_smash("train", "--config", cfg, "--workdir", str(read_only)), "read-only")
    one_line(run_smash("queue", "train", "--config", cfg, "--workdir", str(read_only / "w")), "Read-only")
    one_line(run_smash("engine", "--workdir", str(read_only / "w")), "Read-only file system")
    assert list(read_only.iterdir()) == []


def test_a_workdir_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("in the way")
    cfg = str(write_config(tmp_path / "c.toml", tiny_config()))
    one_line(run_smash("train", "--config", cfg, "--workdir", str(blocker / "w")), "cannot create the workdir")
    one_line(run_smash("up", "--config", cfg, "--workdir", str(blocker / "w")), "cannot create the workdir")
    assert blocker.read_text() == "in the way"
