"""Domain errors and signals shared by every layer."""

from __future__ import annotations

import os
from pathlib import Path


class Cancelled(Exception):
    """The job was asked to stop; the last checkpoint is kept."""


class BadRequest(ValueError):
    """A request that cannot be carried out as given: the message says what is wrong. Every
    error a user can fix derives from it; the command line reports it as one line, exit 2."""


class DiskFull(BadRequest):
    """A write found no space left on its disk; what was written before it is kept."""


class NotFound(BadRequest):
    """A name given by the user (workdir, run, arch, job) matches nothing."""


def make_dir(path: str | os.PathLike[str], what: str = "workdir") -> None:
    """Create `path` (and its parents) or raise BadRequest saying why it cannot be: a
    read-only file system, no permission, a file in the way."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadRequest(f"cannot create the {what} {path}: {exc.strerror or exc}") from None
