"""Short-lived DuckDB connections that wait politely for the file lock.

DuckDB lets one process open a file read-write, or any number open it read-only, and
while any process holds a connection no other process can open it in the other mode.
The dashboard, the trainer and the job worker are separate processes, so nobody may
keep a connection: every store call goes through `connect`, which opens, runs one
transaction and closes, retrying lock conflicts with jittered exponential backoff until
a deadline and then raising `StoreBusy`.

Two fairness measures keep writers from starving behind busy readers (read-only
connections overlap, so two dashboards polling in a loop can hold the file forever):

* across processes, a writer that finds the file locked touches a sidecar file
  `<db>.writer-waiting`; readers that see a fresh one (under a second old) wait instead
  of opening, so the readers drain and the writer gets in;
* within a process, a writer-preferring readers-writer lock serialises writers against
  readers. DuckDB refuses to open the same file twice in one process with different
  modes, so this lock is needed for correctness too, not only for fairness.

Every call records how long it waited (excluding the cost of the successful open
itself) in process-level statistics read by `lock_wait_stats`.
"""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from core.errors import DiskFull

from .errors import StoreBusy, StoreError

# Never let opening a file reach the network: DuckDB would otherwise try to download
# the sqlite extension when handed a SQLite file.
_CONFIG = {"autoload_known_extensions": False, "autoinstall_known_extensions": False}
_LOCK_MESSAGES = ("could not set lock", "conflicting lock")
_FIRST_DELAY_S = 0.002
_MAX_DELAY_S = {True: 0.05, False: 0.1}  # writers retry more eagerly than readers
_INTENT_FRESH_S = 1.0


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire(self, write: bool, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            if write:
                self._writers_waiting += 1
                try:
                    ok = self._cond.wait_for(
                        lambda: not self._writer and self._readers == 0,
                        max(0.0, deadline - time.monotonic()),
                    )
                finally:
                    self._writers_waiting -= 1
                if ok:
                    self._writer = True
                else:
                    self._cond.notify_all()  # readers may have been held back by us
                return ok
            ok = self._cond.wait_for(
                lambda: not self._writer and self._writers_waiting == 0,
                max(0.0, deadline - time.monotonic()),
            )
            if ok:
                self._readers += 1
            return ok

    def release(self, write: bool) -> None:
        with self._cond:
            if write:
                self._writer = False
            else:
                self._readers -= 1
            self._cond.notify_all()


_process_locks: dict[str, _ReadWriteLock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(path: Path) -> _ReadWriteLock:
    with _process_locks_guard:
        return _process_locks.setdefault(str(path), _ReadWriteLock())


def _forget_locks_after_fork() -> None:
    # A forked child inherits locks that threads of the parent may have held; those
    # threads do not exist in the child, so the locks would never be released.
    global _process_locks_guard, _stats_guard
    _process_locks.clear()
    _process_locks_guard = threading.Lock()
    _stats_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_locks_after_fork)

_waits: deque[float] = deque(maxlen=200_000)
_stats_guard = threading.Lock()


def _record_wait(seconds: float) -> None:
    with _stats_guard:
        _waits.append(seconds)


def lock_wait_stats() -> dict[str, float]:
    """Seconds this process's store calls spent waiting for the lock (last 200k calls)."""
    with _stats_guard:
        waits = sorted(_waits)
    if not waits:
        return {"count": 0, "total_s": 0.0, "mean_s": 0.0, "p50_s": 0.0, "p99_s": 0.0, "max_s": 0.0}

    def pct(q: float) -> float:
        return waits[min(len(waits) - 1, int(q * len(waits)))]

    total = sum(waits)
    return {
        "count": len(waits),
        "total_s": total,
        "mean_s": total / len(waits),
        "p50_s": pct(0.50),
        "p99_s": pct(0.99),
        "max_s": waits[-1],
    }


def reset_lock_wait_stats() -> None:
    with _stats_guard:
        _waits.clear()


def is_lock_error(exc: BaseException) -> bool:
    """True for DuckDB's "another process holds the file" error, the one worth retrying."""
    return isinstance(exc, duckdb.IOException) and any(
        m in str(exc).lower() for m in _LOCK_MESSAGES
    )


def plain(value: Any) -> Any:
    """numpy and torch scalars as Python numbers: DuckDB binds only Python's own types.

    Training code naturally hands over `np.int64` sizes and 0-d tensors; converting
    here (by duck typing, so store needs neither library) keeps every caller simple.
    """
    item = getattr(value, "item", None)
    return item() if callable(item) else value


class Connection:
    """The DuckDB connection a store call gets, binding numpy/torch scalars as numbers."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(self, sql: str, params: Sequence | Mapping = ()) -> duckdb.DuckDBPyConnection:
        if isinstance(params, Mapping):
            return self._con.execute(sql, {k: plain(v) for k, v in params.items()})
        return self._con.execute(sql, [plain(v) for v in params])

    def register(self, name: str, frame: Any) -> None:
        self._con.register(name, frame)

    def unregister(self, name: str) -> None:
        self._con.unregister(name)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def disk_full(exc: BaseException) -> bool:
    """Whether a write failed because its disk had no space left (errno 28, ENOSPC)."""
    return getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc)


def full_disk_message(path: Path, exc: BaseException) -> str:
    return (f"the disk holding {path.parent} is full ({_one_line(exc)}); free some space and run the "
            "same command again: everything written before is kept and it resumes")


def _intent_path(path: Path) -> Path:
    return path.with_name(path.name + ".writer-waiting")


def _writer_waiting(marker: Path) -> bool:
    try:
        return time.time() - marker.stat().st_mtime < _INTENT_FRESH_S
    except OSError:
        return False


def _announce_writer(marker: Path) -> None:
    try:
        marker.touch()
    except OSError:
        pass  # only a hint; an unwritable directory fails loudly elsewhere


def _open(path: Path, write: bool, deadline: float) -> tuple[duckdb.DuckDBPyConnection, float]:
    """Open `path`, retrying lock conflicts; return the connection and the time waited."""
    start = time.monotonic()
    marker = _intent_path(path)
    delay = _FIRST_DELAY_S
    announced = False
    last_error: BaseException | None = None
    try:
        while True:
            attempt = time.monotonic()
            if write or not _writer_waiting(marker):
                try:
                    return duckdb.connect(
                        str(path), read_only=not write, config=_CONFIG
                    ), attempt - start
                except duckdb.Error as exc:
                    if not is_lock_error(exc):
                        raise StoreError(f"cannot open store {path}: {_one_line(exc)}") from exc
                    last_error = exc
                if write:
                    _announce_writer(marker)
                    announced = True
            now = time.monotonic()
            if now >= deadline:
                holder = _one_line(last_error) if last_error else "a writer was waiting"
                raise StoreBusy(
                    f"store {path} stayed locked for {now - start:.1f} s "
                    f"({'write' if write else 'read'} access): {holder}"
                )
            time.sleep(min(delay * random.uniform(0.5, 1.5), max(0.0, deadline - now)))
            delay = min(delay * 2, _MAX_DELAY_S[write])
    finally:
        if announced:
            marker.unlink(missing_ok=True)


@contextmanager
def connect(path: Path, *, write: bool, timeout: float) -> Iterator[Connection]:
    """A connection held only for the `with` block; writes run in one transaction.

    `path` must already be absolute and resolved so that every caller in the process
    shares one in-process lock per file.
    """
    start = time.monotonic()
    plock = _process_lock(path)
    if not plock.acquire(write, timeout):
        _record_wait(time.monotonic() - start)
        raise StoreBusy(
            f"store {path} stayed busy for {timeout:.1f} s within this process "
            f"({'write' if write else 'read'} access)"
        )
    try:
        thread_wait = time.monotonic() - start
        try:
            con, file_wait = _open(path, write, start + timeout)
        except StoreBusy:
            _record_wait(time.monotonic() - start)
            raise
        _record_wait(thread_wait + file_wait)
        try:
            if write:
                con.execute("BEGIN TRANSACTION")
            yield Connection(con)
            if write:
                con.execute("COMMIT")
        except BaseException as exc:
            if write:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # the transaction may already be aborted; closing discards it
            if isinstance(exc, duckdb.Error) and disk_full(exc):
                raise DiskFull(full_disk_message(path, exc)) from exc
            raise
        finally:
            con.close()
    finally:
        plock.release(write)
