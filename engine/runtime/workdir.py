"""Workdir layout and run identity.

A workdir holds one store (`smash.duckdb`) and one folder per run with its
checkpoints, logs and retrained models. A run's id is derived from its config, so
running the same command again continues the same run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from core.errors import BadRequest
from core.ids import check_run_id

PACKAGE_VERSION = "0.1.0"


def run_dir(workdir: Path, run_id: str) -> Path:
    return Path(workdir) / check_run_id(run_id)


class RunBusyError(BadRequest):
    """Another process is already training this run."""


@contextlib.contextmanager
def run_lock(workdir: Path, run_id: str) -> Iterator[None]:
    """Hold the run's lock while training it: two trainers would interleave checkpoints."""
    folder = run_dir(workdir, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise RunBusyError(f"run {run_id} is already being trained (pid {holder}); "
                               "wait for it or stop it first") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


def checkpoint_dir(workdir: Path, run_id: str) -> Path:
    return run_dir(workdir, run_id) / "checkpoints"


def retrain_dir(workdir: Path, retrain_id: str) -> Path:
    return Path(workdir) / "retrains" / retrain_id


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit of the source tree when there is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5)
            flag = "+dirty" if dirty.stdout.strip() else ""
            return f"{PACKAGE_VERSION}+g{out.stdout.strip()}{flag}"
    except (OSError, subprocess.SubprocessError):
        pass
    return PACKAGE_VERSION
