"""How many NVIDIA GPUs the driver shows, without loading torch: what `smash up` and
`smash queue train` check a config's `device` against before queueing work that needs
one (the job's own process checks again with torch, engine/runtime/device.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from core.config import DEVICE_RE, ConfigError

DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")


def driver_gpu_count(root: Path = DRIVER_GPUS) -> int:
    """GPUs the NVIDIA driver lists (one folder each); 0 without the driver."""
    try:
        return len([p for p in root.iterdir() if p.is_dir()])
    except OSError:
        return 0


def check_device_named(pref: str, count: int | None = None) -> None:
    """ConfigError if `pref` names a CUDA device this machine lacks ("auto" always passes)."""
    if not DEVICE_RE.fullmatch(pref):
        raise ConfigError(f"device = {pref!r}; allowed: auto, cpu, cuda, cuda:N")
    if not pref.startswith("cuda") or os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return  # visibility rules are the job's to apply, with torch
    count = driver_gpu_count() if count is None else count
    index = int(pref.split(":")[1]) if ":" in pref else 0
    if count == 0:
        raise ConfigError(f"device = {pref!r} but CUDA is not available on this machine; "
                          "use \"auto\" or \"cpu\"")
    if index >= count:
        raise ConfigError(f"device = {pref!r} but this machine has {count} CUDA device(s)")
