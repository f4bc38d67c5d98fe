"""Run-time device choice: CUDA when present (bf16 autocast), else the CPU with the threads it
may use (engine/runtime/threads.py narrows them to what a measured workload needs); channels_last on both."""

from __future__ import annotations

import contextlib
import os

import torch

from core.config import ConfigError
from engine.runtime.threads import allowed_threads, user_threads


def check_device(pref: str = "auto") -> torch.device:
    """The device `pref` names, or ConfigError if this machine does not have it."""
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(pref)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device = {pref!r} but CUDA is not available on this machine; "
                          "use \"auto\" or \"cpu\"")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device = {pref!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def pick_device(pref: str = "auto") -> torch.device:
    """`auto` picks CUDA when available; on the CPU, every thread this process may use until
    a measured workload says fewer are as fast (engine.runtime.threads.tuned_threads)."""
    device = check_device(pref)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads())
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def cpu_threads() -> int:
    """Threads for CPU math: SMASH_THREADS when set, else every core this process may use
    (SMASH_MAX_THREADS, the engine's share of the cores for one job, caps them)."""
    return user_threads() or allowed_threads()


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, fp32 on the CPU (exact results), unless `precision` says
    otherwise ("fp32" everywhere, or "bf16" on the CPU too)."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last everywhere: cuDNN's fast kernels want it, and oneDNN's CPU convolutions
    run their forward and backward about 1.5x faster with it than with NCHW (bench/step.py).
    SMASH_MEMORY_FORMAT=nchw turns it off, to measure the difference."""
    if os.environ.get("SMASH_MEMORY_FORMAT", "").lower() == "nchw":
        return torch.contiguous_format
    return torch.channels_last
