"""A background thread that batches streamed rows into one transaction about once a second.

Training and scoring produce rows far faster than it is worth opening the database
for, and must never stall while the dashboard holds the lock. `put` only validates
and appends to memory; the thread commits everything pending, of every kind, in one
transaction per tick. Because a whole tick is one transaction, a kill -9 loses at most
the rows not yet committed and never leaves part of a `put` behind; because every
insert is idempotent, the caller can resume by re-sending from its own last checkpoint.

After a failed write the thread stops, and the exception is raised by every later
`put` and `flush` and by `close`, so a training loop hears of it at its next step
instead of losing rows unnoticed. Rows of the failed batch are dropped; idempotent
writes make re-sending them from the caller's own state safe.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterable
from types import TracebackType

from .rows import validate_rows
from .store import Store


class BackgroundWriter:
    """Collects rows with `put` and commits them from a thread every `interval` seconds."""

    def __init__(self, store: Store, interval: float = 1.0) -> None:
        self._store = store
        self._interval = interval
        self._cond = threading.Condition()
        self._pending: dict[str, list[dict]] = {}
        self._queued = 0  # puts accepted so far
        self._committed = 0  # of those, puts known to be committed
        self._flush_wanted = False
        self._stopping = False
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="smash-store-writer", daemon=True)
        self._thread.start()
        # A script that forgets close() should still get its last rows written.
        atexit.register(self.close)

    def put(self, kind: str, rows: Iterable[dict]) -> None:
        """Queue rows of one kind (archs, scores, train_metrics, retrain_metrics, checkpoints)."""
        checked = validate_rows(kind, rows)
        with self._cond:
            self._raise_if_failed()
            if self._closed or self._stopping:
                raise RuntimeError("BackgroundWriter is closed")
            if checked:
                self._pending.setdefault(kind, []).extend(checked)
                self._queued += 1

    def flush(self) -> None:
        """Block until every row put so far is committed."""
        with self._cond:
            self._raise_if_failed()
            target = self._queued
            if self._committed >= target:
                return
            self._flush_wanted = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._committed >= target or self._error is not None)
            self._raise_if_failed()

    def close(self) -> None:
        """Flush, then stop the thread. Raises the thread's error if it had one."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
            self._cond.notify_all()
        atexit.unregister(self.close)
        self._thread.join()
        with self._cond:
            self._raise_if_failed()

    @property
    def pending(self) -> int:
        """Rows put but not yet handed to the database."""
        with self._cond:
            return sum(len(rows) for rows in self._pending.values())

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._flush_wanted or self._stopping, self._interval)
                batch, self._pending = self._pending, {}
                upto = self._queued
                self._flush_wanted = False
                last = self._stopping
            try:
                if batch:
                    self._store._insert_rows(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, not swallowed
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._committed = upto
                self._cond.notify_all()
            if last:
                return
