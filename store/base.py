"""What every part of `Store` shares: the path, the timeout, and one-shot connections.

`Store` is assembled from one mixin per concern (runs, scores, retrains, jobs), each in
its own file next to the SQL it owns; they all inherit this base so that the rule "open,
do one thing, close" is written once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .db import Connection, connect
from .schema import open_store

DB_FILENAME = "smash.duckdb"


def store_path(workdir: str | Path) -> Path:
    """Where a work directory keeps its store."""
    return Path(workdir) / DB_FILENAME


def utcnow() -> datetime:
    """Naive UTC: DuckDB TIMESTAMP columns carry no zone, so every writer must agree on one."""
    return datetime.now(UTC).replace(tzinfo=None)


def dumps(value: Any) -> str:
    """Canonical JSON, so equal dicts give equal text (dedupe keys depend on it)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def check_choice(name: str, value: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def fetch_records(
    con: Connection, sql: str, params: Sequence | dict = (), json_fields: Sequence[str] = ()
) -> list[dict]:
    """Rows as dicts, with the named JSON text columns decoded."""
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    records = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    for record in records:
        for field in json_fields:
            if record.get(field) is not None:
                record[field] = json.loads(record[field])
    return records


class StoreBase:
    """Holds the path and timeout; opens a connection per call, never keeps one."""

    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        """Open (creating or migrating) the store at `path`.

        `timeout` is how long any one call waits for another process's lock before
        raising StoreBusy. Raises StoreError if the file is not a usable store.
        """
        self.path = Path(path).expanduser().resolve()
        self.timeout = float(timeout)
        open_store(self.path, self.timeout)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _read(self) -> AbstractContextManager[Connection]:
        return connect(self.path, write=False, timeout=self.timeout)

    def _write(self) -> AbstractContextManager[Connection]:
        return connect(self.path, write=True, timeout=self.timeout)

    def _df(self, sql: str, params: Sequence | dict = ()) -> pd.DataFrame:
        with self._read() as con:
            return con.execute(sql, params).df()

    def _records(
        self, sql: str, params: Sequence | dict = (), json_fields: Sequence[str] = ()
    ) -> list[dict]:
        with self._read() as con:
            return fetch_records(con, sql, params, json_fields)

    def _record(
        self, sql: str, params: Sequence | dict = (), json_fields: Sequence[str] = ()
    ) -> dict | None:
        records = self._records(sql, params, json_fields)
        return records[0] if records else None

    def _scalar(self, sql: str, params: Sequence | dict = ()) -> Any:
        with self._read() as con:
            row = con.execute(sql, params).fetchone()
        return row[0] if row else None
