"""Run-time device choice: CUDA when present, else the CPU with the threads it may use
(engine/runtime/threads.py narrows them to what a measured workload needs); channels_last on
both; bf16 autocast wherever the hardware does bf16 math natively (see resolve_precision)."""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

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


BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
"""CPU features with bf16 arithmetic in hardware, which oneDNN's bf16 kernels use."""


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (x86 AMX-BF16 or AVX512_BF16) and oneDNN is
    there to use it. Elsewhere oneDNN emulates bf16 with fp32 instructions, slower than fp32
    itself, so `auto` stays in fp32 there (as on other architectures, not measured yet)."""
    return torch.backends.mkldnn.is_available() and bool(BF16_CPU_FLAGS & cpu_flags())


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags: torch's own detection (cpuinfo, which also checks that the
    OS enables AMX), else the kernel's /proc/cpuinfo, else none."""
    caps = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.9
    if caps is not None:
        return frozenset(k for k, v in caps().items() if v is True)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


@functools.cache
def _cuda_bf16(index: int) -> bool:
    """bf16 tensor cores (Ampere on); older GPUs emulate bf16, slower than fp32."""
    with torch.cuda.device(index):
        return torch.cuda.is_bf16_supported(including_emulation=False)


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """What the config's `precision` means on `device`: "bf16" or "fp32".

    "auto" is bf16 autocast where the hardware does bf16 natively (CUDA from Ampere on,
    CPUs with AMX or avx512_bf16: 1.5-2.5x faster convolutions, docs/performance.md) and
    fp32 elsewhere; "fp32" and "bf16" are taken as they are (bf16 runs, slowly, even
    where it is emulated). The resolved value is what runs report, since "auto" can
    mean different things on different machines."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return "bf16" if _cuda_bf16(index) else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast where resolve_precision says bf16; nothing (fp32) otherwise."""
    if resolve_precision(device, precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last everywhere: cuDNN's fast kernels want it, and oneDNN's CPU convolutions
    run their forward and backward about 1.5x faster with it than with NCHW (bench/step.py).
    SMASH_MEMORY_FORMAT=nchw turns it off, to measure the difference."""
    if os.environ.get("SMASH_MEMORY_FORMAT", "").lower() == "nchw":
        return torch.contiguous_format
    return torch.channels_last
