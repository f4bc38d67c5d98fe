"""How ids are made: archs, runs, retrains and studies, each derived from what defines it,
so the same thing gets the same id on every machine and a repeated request finds its
earlier result. (Job ids are the store's own random queue keys, made where jobs are queued.)"""

from __future__ import annotations

import hashlib
import json
import re

from core.config import Config
from core.errors import BadRequest

RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class RunIdError(BadRequest):
    """A run id that would name a path outside the workdir."""


def check_run_id(run_id: str) -> str:
    """`run_id` if it names one folder directly inside a workdir (no slash, no `..`)."""
    if not RUN_ID_RE.fullmatch(run_id or "") or ".." in run_id:
        raise RunIdError(f"run id {run_id!r} is not allowed; use letters, digits, '_', '.' and '-' "
                         "(at most 128, not starting with '.' or '-', no '..')")
    return run_id


def arch_id_for(arch_json: str) -> str:
    """An arch's id from its canonical JSON (`Arch.to_json`): equal archs share it."""
    return hashlib.sha256(arch_json.encode()).hexdigest()[:16]


ID_NEUTRAL = {"score": {"metric": "error", "delta": None}}
"""Settings added after run ids were in use, left out of the id while they hold these
values: a config that does not use a new setting keeps the id (and so resumes the run) it
had before the setting existed."""


def run_id_for(cfg: Config) -> str:
    raw = cfg.to_dict()
    for section, neutral in ID_NEUTRAL.items():
        for key, value in neutral.items():
            if raw.get(section, {}).get(key, value) == value:
                raw.get(section, {}).pop(key, None)
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-zA-Z0-9_.-]+", "-", cfg.name).strip("-") or "run"
    return f"{slug}-{digest}"


def retrain_id_for(run_id: str, arch_id: str, epochs: int, seed: int, max_steps_per_epoch: int = 0) -> str:
    """Same run, arch and training budget, same id: a repeated request resumes, never duplicates."""
    cap = f".m{max_steps_per_epoch}" if max_steps_per_epoch else ""
    return f"{run_id}.{arch_id}.e{epochs}.s{seed}{cap}"


def study_id_for(run_id: str, arch_ids: list[str], epochs: int, seed: int, seeds: int = 1,
                 max_steps_per_epoch: int = 0) -> str:
    digest = hashlib.sha256(f"{run_id}|{epochs}|{seed}|{','.join(sorted(arch_ids))}".encode()).hexdigest()
    return (f"study-{digest[:10]}" + (f"-m{max_steps_per_epoch}" if max_steps_per_epoch else "")
            + (f"-x{seeds}" if seeds > 1 else ""))
