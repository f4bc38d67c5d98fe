"""How a training run or a retrain that stops early leaves its row in the store.

A run or retrain that stops on an error is marked failed, one that is stopped is marked
cancelled (a resume marks it running again), so no row says "running" for work nobody
does. Both kinds of training, and the job supervisor when a job process dies, share this.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator

from core.errors import Cancelled, DiskFull
from store import Store

MarkFn = Callable[[str], None]
"""Sets the status of one row ("failed" or "cancelled")."""


def ended_status(exc: BaseException) -> str:
    """The status of work that `exc` stopped: cancelled when asked to stop, else failed."""
    return "cancelled" if isinstance(exc, Cancelled | KeyboardInterrupt) else "failed"


def try_mark(mark: MarkFn, status: str, what: str) -> None:
    """mark(status), only warning if that fails: the error that ended the work matters more."""
    try:
        mark(status)
    except Exception as exc:
        print(f"warning: could not mark {what} {status}: {exc}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def ended_as_failed(mark: MarkFn | None, what: str) -> Iterator[None]:
    """Marks the row through `mark` when the body raises (None: this process marks nothing)."""
    try:
        yield
    except BaseException as exc:
        if mark is not None and not isinstance(exc, DiskFull):  # a full disk takes the mark's write too
            try_mark(mark, ended_status(exc), what)
        raise


def run_marker(store: Store, run_id: str) -> MarkFn:
    """Marks the run `run_id`, if its row still says running."""
    return functools.partial(_end_running_run, store, run_id)


def mark_ended(store: Store, run_id: str, status: str) -> None:
    """Give the run `run_id` the status `status`, if its row still says running."""
    try_mark(run_marker(store, run_id), status, f"run {run_id}")


def _end_running_run(store: Store, run_id: str, status: str) -> None:
    if (store.get_run(run_id) or {}).get("status") == "running":
        store.update_run(run_id, status=status)
