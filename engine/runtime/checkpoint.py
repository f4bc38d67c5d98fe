"""Checkpoints: plain dicts of tensors and JSON-able values, written atomically.

Nothing is pickled beyond what `torch.load(weights_only=True)` accepts, so loading a
checkpoint a user hands us can run no code. Each checkpoint carries its config.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import torch

from core.errors import BadRequest, DiskFull

FORMAT = 1
"""The version of the checkpoint layout, stored in every file as "format"."""
CKPT_RE = re.compile(r"step_(\d+)\.pt$")


class CheckpointError(BadRequest):
    """A checkpoint file is missing, unreadable or not one of ours."""


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write to a temporary file, fsync, then rename: a kill -9 never leaves half a file.

    The temporary name is unique to this write, so two writers never share one, and it
    is removed if the write fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as a RuntimeError
        if getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc) or (
                "file write failed" in str(exc) and _free_bytes(path.parent) < 1 << 20):
            raise DiskFull(f"the disk holding {path.parent} is full; the checkpoint was not written "
                                  "(the previous one is kept): free some space and run the same command "
                                  "again to resume") from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    if not Path(path).is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from exc
    if not isinstance(obj, dict) or "format" not in obj:
        raise CheckpointError(f"{path}: not a SMASH Explorer checkpoint")
    return obj


def step_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete step checkpoint in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = CKPT_RE.search(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def newest_loadable(found: list[tuple[int, Path]], map_location: str | torch.device = "cpu"
                    ) -> tuple[int, Path, dict[str, Any]]:
    """The newest of `found` (step, path) pairs that loads, saying which were skipped."""
    for step, path in reversed(found):
        try:
            return step, path, load(path, map_location)
        except CheckpointError as exc:
            print(f"warning: {exc}; falling back to an older checkpoint", file=sys.stderr, flush=True)
    raise CheckpointError(f"no readable checkpoint among {len(found)} in {found[0][1].parent}"
                          if found else "no checkpoint found")


def step_path(folder: Path, step: int) -> Path:
    return folder / f"step_{step:08d}.pt"
