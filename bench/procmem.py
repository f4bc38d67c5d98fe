"""Peak resident memory of a process tree, read from /proc (Linux), for the benchmarks.

A benchmark that starts `smash up` wants the peak memory of the processes the command
starts (the engine, each job's runner, the dashboard), not its own. The kernel keeps each
process's high-water mark of resident memory (VmHWM in /proc/<pid>/status), so polling
the tree every half second misses only what a process grows in its last half second.
TreeWatcher polls in a background thread and keeps the largest peak per kind of process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")

# Kind of a process, by a marker in its command line; the first that matches wins, so
# the runner (started by the engine, which `smash up` started) is told apart from both.
KINDS: tuple[tuple[str, str], ...] = (
    ("engine.jobs.runner", "runner"),
    ("streamlit", "dashboard"),
    ("cli engine", "engine"),
    ("cli up", "up"),
)


def parent_pids() -> dict[int, int]:
    """pid -> parent pid of every process now alive (those that vanish while read are left out)."""
    parents = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(root: int, parents: dict[int, int]) -> set[int]:
    """Every process below `root` in the tree `parents` (pid -> parent pid), not root itself."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory so far (VmHWM) in MB, or None if it is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # the kernel writes kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def command_line(pid: int) -> str:
    """The process's command line, arguments joined by spaces ("" if it is gone)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def process_env(pid: int) -> dict[str, str]:
    """The environment the process started with ({} if it is gone or not ours to read)."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
    return dict(pairs)


def kind_of(cmdline: str) -> str:
    """The kind of process a command line belongs to (KINDS), else its program's name."""
    for marker, kind in KINDS:
        if marker in cmdline:
            return kind
    program = cmdline.split(" ", 1)[0]
    return os.path.basename(program) or "unknown"


class TreeWatcher:
    """Polls `root` and the processes below it in a background thread; `peaks` holds the
    largest VmHWM seen per kind (MB), `envs` each kind's first readable environment."""

    def __init__(self, root: int, every_s: float = 0.5):
        self.root, self.every_s = root, every_s
        self.peaks: dict[str, float] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-watcher", daemon=True)

    def __enter__(self) -> TreeWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def poll(self) -> None:
        """One look at the tree: update the peaks (and the environments of kinds new to us)."""
        for pid in {self.root} | descendants(self.root, parent_pids()):
            peak, cmdline = peak_rss_mb(pid), command_line(pid)
            if peak is None or not cmdline:
                continue
            kind = kind_of(cmdline)
            self.peaks[kind] = max(peak, self.peaks.get(kind, 0.0))
            if not self.envs.get(kind):
                self.envs[kind] = process_env(pid)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.every_s)
