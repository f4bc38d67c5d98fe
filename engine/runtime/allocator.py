"""Which malloc the engine's processes run on: tcmalloc where it is installed.

PyTorch on the CPU allocates and frees activation-sized buffers many times a step. glibc's
malloc hands buffers above its mmap threshold straight back to the kernel, so each step
faults the same memory in again, page by page. tcmalloc keeps freed memory for reuse: at
the cifar10 size it made the SMASH step 1.2x faster and its peak memory 19% smaller
(docs/performance.md). jemalloc saved as much memory but no time.

A process cannot change its malloc once it runs; the library must be preloaded when the
process starts. So `smash train`, `score`, `retrain` and `correlate` re-execute themselves
once with LD_PRELOAD set (`reexec`, before torch is imported; cli/boot.py), and the engine
starts every job with it (`preload_env`). Nothing here imports torch.

SMASH_ALLOCATOR chooses: "auto" (the default: tcmalloc if installed, else the system's),
"tcmalloc", "jemalloc" or "system". Debian: `apt-get install libtcmalloc-minimal4`
(scripts/setup.sh does).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from core.errors import BadRequest

CHOICES = ("auto", "tcmalloc", "jemalloc", "system")
LIBRARIES = {"tcmalloc": "libtcmalloc_minimal.so.4", "jemalloc": "libjemalloc.so.2"}
PACKAGES = {"tcmalloc": "libtcmalloc-minimal4", "jemalloc": "libjemalloc2"}
LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
            "/usr/local/lib")
REEXEC_MARK = "SMASH_ALLOCATOR_PRELOADED"
"""The allocator a process was re-executed for, in its environment: it never re-executes
for the same one again, even where the library failed to load."""

# tcmalloc reports every allocation over 1 GiB on stderr; a big batch may make one.
QUIET = {"tcmalloc": {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}}


class AllocatorError(BadRequest):
    """SMASH_ALLOCATOR names something unknown, or an allocator that is not installed."""


def find(name: str, dirs: tuple[str, ...] = LIB_DIRS) -> str | None:
    """The path of allocator `name`'s shared library, or None if it is not installed."""
    for d in dirs:
        path = Path(d) / LIBRARIES[name]
        if path.is_file():
            return str(path)
    return None


def choose(env: Mapping[str, str] = os.environ, dirs: tuple[str, ...] = LIB_DIRS) -> tuple[str, str | None]:
    """(allocator, library path) that SMASH_ALLOCATOR in `env` asks for; path None for the system's."""
    want = env.get("SMASH_ALLOCATOR", "auto").strip().lower() or "auto"
    if want not in CHOICES:
        raise AllocatorError(f"SMASH_ALLOCATOR={env['SMASH_ALLOCATOR']!r}: want one of {', '.join(CHOICES)}")
    if want == "system" or sys.platform != "linux":
        return "system", None
    if want == "auto":
        path = find("tcmalloc", dirs)
        return ("tcmalloc", path) if path else ("system", None)
    path = find(want, dirs)
    if path is None:
        raise AllocatorError(f"SMASH_ALLOCATOR={want}: {LIBRARIES[want]} is not installed "
                             f"(apt-get install {PACKAGES[want]}), or set SMASH_ALLOCATOR=auto")
    return want, path


def preload_env(env: Mapping[str, str] = os.environ, dirs: tuple[str, ...] = LIB_DIRS) -> dict[str, str]:
    """`env` for a new process that should run on the chosen allocator: its library first in
    LD_PRELOAD (the other allocator's, if preloaded, taken out; SMASH_ALLOCATOR=system takes
    both out)."""
    name, path = choose(env, dirs)
    out = dict(env)
    kept = [p for p in out.get("LD_PRELOAD", "").replace(":", " ").split()
            if Path(p).name not in LIBRARIES.values()]
    out.pop("LD_PRELOAD", None)
    if path:
        kept.insert(0, path)
        for k, v in QUIET.get(name, {}).items():
            out.setdefault(k, v)
    if kept:
        out["LD_PRELOAD"] = " ".join(kept)
    return out


def loaded(maps: str | None = None) -> str:
    """The allocator this process runs on: "tcmalloc", "jemalloc" or "system" (from /proc/self/maps)."""
    if maps is None:
        try:
            maps = Path("/proc/self/maps").read_text()
        except OSError:
            return "system"
    for name, lib in LIBRARIES.items():
        if lib in maps:
            return name
    return "system"


def reexec() -> None:
    """Re-execute this very command line on the chosen allocator, unless it already runs on it.

    Call it first thing in an entry point, before torch is imported (nothing done before it
    survives). It runs at most once per command and allocator: the new process carries
    REEXEC_MARK. Where the allocator cannot be loaded, the command goes on with the system's."""
    if not getattr(sys, "orig_argv", None):
        return
    try:
        name, _ = choose()
    except AllocatorError as exc:
        print(f"smash: {exc}; using the system allocator", file=sys.stderr)
        return
    if loaded() == name or os.environ.get(REEXEC_MARK) == name:  # on it, or tried already
        return
    env = preload_env()
    env[REEXEC_MARK] = name
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, env)
    except OSError as exc:  # the command goes on, as it would have without us
        print(f"smash: could not restart on {name} ({exc}); using the system allocator", file=sys.stderr)
