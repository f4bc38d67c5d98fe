"""How tests/store/frozen/v1..v5.duckdb.gz were made (once, at schema version 6), kept for
the record. Do not run it to refresh them: the point of a frozen file is that it stays as
an old version wrote it, so editing an old migration in place cannot go unnoticed.

Each file is an empty store at that version (the version-1 DDL, then the migrations up to
it, as the code stood) with one row in every table, every column filled: a TEXT column
with its name (JSON where the store decodes it), numbers with their column position,
times fixed, flags true.

    python tests/store/frozen/make_frozen.py   # writes v1..v5.duckdb.gz beside itself
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from store import schema  # noqa: E402

HERE = Path(__file__).resolve().parent


def value(column: str, data_type: str, position: int):
    kind = data_type.upper()
    if kind in ("VARCHAR", "TEXT"):  # JSON, as the store reads some columns back as JSON
        if column == "config":
            return '{"name": "frozen"}'
        if column in ("params", "result", "arch_json", "metrics"):
            return '{"frozen": true}'
        return "[1, 8, 8]" if column == "image_shape" else '["a", "b"]' if column == "arch_ids" else column + "-x"
    if kind in ("BIGINT", "INTEGER"):
        return position + 1
    if kind == "DOUBLE":
        return position + 0.25
    if kind == "BOOLEAN":
        return True
    if kind.startswith("TIMESTAMP"):
        return "2026-01-02 03:04:05"
    raise ValueError(f"no sample value for {column} {data_type}")


def fill(con: duckdb.DuckDBPyConnection) -> None:
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY table_name").fetchall()]
    for table in tables:
        if table == "meta":
            continue
        cols = con.execute("SELECT column_name, data_type, column_index FROM duckdb_columns() "
                           "WHERE table_name = ? ORDER BY column_index", [table]).fetchall()
        marks = ", ".join("?" for _ in cols)
        con.execute(f"INSERT INTO {table} ({', '.join(c for c, _, _ in cols)}) VALUES ({marks})",
                    [value(c, t, i) for c, t, i in cols])


def main() -> None:
    for version in range(1, schema.SCHEMA_VERSION):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s.duckdb"
            con = duckdb.connect(str(path))
            schema.create_schema(con, version=version)
            fill(con)
            con.close()
            with open(path, "rb") as src, gzip.open(HERE / f"v{version}.duckdb.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            print(f"v{version}: {(HERE / f'v{version}.duckdb.gz').stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
