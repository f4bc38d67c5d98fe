"""How many CPU threads a job's math gets: measured once per machine and model size, not assumed.

More threads are not always faster. At the demo size one SMASH step is a few hundred small
convolutions; a second thread speeds it up by a few percent on a quiet machine, and when
another process is busy on the machine, OpenMP's threads spin-wait on the busy core and
the step gets 3x slower (docs/performance.md). So a process about to run a workload on
the CPU times a few passes of it at 1, 2, 4, ... threads (up to what it may use), keeps
the smallest count whose next doubling is not worth it, and remembers the choice in the
workdir (threads.json), keyed by machine and workload, so the measurement runs once.

Who decides, first match wins: SMASH_THREADS (the user's, passed through by the engine);
then the measured choice, capped by SMASH_MAX_THREADS (the engine's share of the cores
for this job) and by the cores this process may use.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from engine.runtime import allocator

MIN_SPEEDUP = 1.3
"""A doubling of threads is kept only when it makes the workload at least this much faster.

Not 1.0: an extra thread that adds little on a quiet machine costs a lot on a busy one
(OpenMP threads spin-wait on cores another process holds), and the cores it takes could
run another job (scoring beside training) at full speed instead."""

CACHE_FILE = "threads.json"
TIMED_PASSES = 2
"""Passes timed per thread count, after one untimed warm-up pass (oneDNN builds its kernels
for a shape, per thread count, the first time it meets it). At the demo size a pass is two
training steps, so 1 and 2 threads are measured in about a second."""


def user_threads() -> int | None:
    """SMASH_THREADS, when the user (or a caller such as a test) set it to a number
    (never more than the cores this process may use: oversubscribed threads only spin)."""
    try:
        value = int(os.environ["SMASH_THREADS"])
    except (KeyError, ValueError):
        return None
    return max(1, min(value, len(os.sched_getaffinity(0))))


def allowed_threads() -> int:
    """The most threads this process may use: its cores, capped by SMASH_MAX_THREADS."""
    cores = max(1, len(os.sched_getaffinity(0)))
    try:
        return max(1, min(cores, int(os.environ.get("SMASH_MAX_THREADS", cores))))
    except ValueError:
        return cores


def candidates(most: int) -> list[int]:
    """Thread counts worth timing: 1, 2, 4, ... and `most` itself."""
    out, n = [], 1
    while n < most:
        out.append(n)
        n *= 2
    return [*out, most]


def choose_threads(seconds: Mapping[int, float], min_speedup: float = MIN_SPEEDUP) -> int:
    """The thread count to use, from the measured seconds of one workload at each count.

    Walks up from the fewest threads and takes the next count only while it is at least
    `min_speedup` times faster than the count kept so far; the first step that is not
    worth it ends the walk (more threads past a flat step rarely recover)."""
    if not seconds:
        raise ValueError("choose_threads: no timings")
    counts = sorted(seconds)
    best = counts[0]
    for n in counts[1:]:
        if seconds[best] / max(seconds[n], 1e-12) < min_speedup:
            break
        best = n
    return best


def measure(workload: Callable[[], None], counts: list[int]) -> dict[int, float]:
    """Seconds of TIMED_PASSES passes of `workload` at each of `counts` threads, stopping as
    soon as the choice cannot move further up (so a flat second thread costs one timing)."""
    before = torch.get_num_threads()
    seconds: dict[int, float] = {}
    try:
        for n in counts:
            torch.set_num_threads(n)
            workload()  # warm-up: kernels for this thread count
            t0 = time.perf_counter()
            for _ in range(TIMED_PASSES):
                workload()
            seconds[n] = time.perf_counter() - t0
            if choose_threads(seconds) != n:
                break
    finally:
        torch.set_num_threads(before)
    return seconds


def machine_key() -> str:
    """This machine as the measurement saw it: host, CPU model, usable cores, torch, malloc."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"{platform.node()}|{cpu}|{len(os.sched_getaffinity(0))}|torch {torch.__version__}"
            f"|{allocator.loaded()}")


def cache_key(workload: Mapping[str, Any]) -> str:
    """One key per machine and workload description (kind, sizes, batch)."""
    text = json.dumps([machine_key(), workload], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_cache(workdir: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(workdir) / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_cache(workdir: Path, key: str, entry: dict[str, Any]) -> None:
    """Add one decision to the cache file (atomically: a reader never sees half a file; two
    writers at once lose at most one decision, which is measured again next time)."""
    path = Path(workdir) / CACHE_FILE
    data = {**read_cache(workdir), key: entry}
    tmp = path.with_name(f".{CACHE_FILE}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only means measuring again next time


def cached_choice(workdir: Path, workload: Mapping[str, Any], most: int | None = None) -> int | None:
    """The stored choice for `workload`, or None when there is none, or when it may have been
    held down by a smaller share than `most` (it took every thread it was allowed then)."""
    entry = read_cache(workdir).get(cache_key(workload))
    try:
        threads, allowed = int(entry["threads"]), int(entry.get("allowed", 0))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if most is not None and threads == allowed < most:
        return None
    return threads


def tuned_threads(workdir: Path, workload: Mapping[str, Any], run: Callable[[], None]) -> int:
    """Threads for `workload` on this machine (SMASH_THREADS wins; else the cached or newly
    measured choice, within this process's share); sets torch to it and returns it.

    `workload` describes what `run` does (it keys the cache); `run` does one pass of it.
    Nothing is measured when only one thread is allowed: the engine gave this job one core."""
    forced = user_threads()
    if forced is not None:
        torch.set_num_threads(forced)
        return forced
    most = allowed_threads()
    choice = cached_choice(workdir, workload, most)
    if choice is None and most > 1:
        seconds = measure(run, candidates(most))
        choice = choose_threads(seconds)
        write_cache(workdir, cache_key(workload), {
            "threads": choice, "allowed": most,
            "seconds": {str(k): round(v, 4) for k, v in seconds.items()},
            "workload": dict(workload), "machine": machine_key(), "min_speedup": MIN_SPEEDUP,
            "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")})
    threads = max(1, min(choice or most, most))
    torch.set_num_threads(threads)
    return threads
