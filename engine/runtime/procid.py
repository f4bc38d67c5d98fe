"""Process identity: a PID plus the host, the boot and the process's start time.

A PID alone names a process only until it exits: after a reboot, or on another machine
sharing the workdir, the same number is someone else's process. The kernel's boot id
and the process's start time (in clock ticks since boot) pin it down, so the engine
kills a stored PID only when all of them still match.
"""

from __future__ import annotations

import ctypes
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class ProcessId:
    pid: int
    host: str
    boot_id: str
    start: int | None

    def matches_live_process(self) -> bool:
        """True only if this very process still runs here (same host, boot and start time)."""
        return (self.start is not None and self.host == socket.gethostname()
                and self.boot_id == boot_id() and start_ticks(self.pid) == self.start)


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time after boot, in ticks), or None if gone."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def identify(pid: int) -> ProcessId:
    """The identity of live process `pid` on this machine."""
    return ProcessId(pid, socket.gethostname(), boot_id(), start_ticks(pid))


def from_row(job: dict) -> ProcessId | None:
    """The identity stored in a job row, or None when it lacks one."""
    pid = _int_or_none(job.get("pid"))
    if pid is None or pid <= 0:
        return None
    return ProcessId(pid, str(job.get("host") or ""), str(job.get("boot_id") or ""),
                     _int_or_none(job.get("proc_start")))


def _int_or_none(value: object) -> int | None:
    """An int from a row's value; None for None, NaN or pandas' NA."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if number != number else int(number)


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel to send this (child) process SIGTERM when its parent dies, so a killed
    `smash up` or engine leaves no service or job running on its own (Linux; elsewhere a no-op)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
