"""The versioned schema: creation, migration and the checks made before touching a file.

A fresh store is built the same way an old one is upgraded: the frozen version-1 DDL,
then every migration in order. So a migrated file and a new one cannot drift apart, and
the version-1 DDL stays in the code for the migration test to build an old file with.

Opening never changes a file it will refuse: the checks (is it a DuckDB file, is it
ours, is its version one we understand, can we write next to it) are made by reading
the header and through a read-only connection before any read-write connection opens.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb

from .db import Connection, connect
from .errors import StoreError

APP = "smash-explorer"
SCHEMA_VERSION = 6

# Frozen: never edit. Changes go into MIGRATIONS as a new version.
DDL_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, name TEXT, created_at TIMESTAMP, updated_at TIMESTAMP,
        status TEXT, config TEXT, seed INTEGER, code_version TEXT, dataset TEXT,
        num_classes INTEGER, image_shape TEXT, steps_total BIGINT, step BIGINT)""",
    """CREATE TABLE checkpoints (
        run_id TEXT, step BIGINT, path TEXT, created_at TIMESTAMP,
        PRIMARY KEY (run_id, step))""",
    """CREATE TABLE train_metrics (
        run_id TEXT, step BIGINT, loss DOUBLE, error DOUBLE, lr DOUBLE,
        steps_per_s DOUBLE, elapsed_s DOUBLE, PRIMARY KEY (run_id, step))""",
    """CREATE TABLE archs (
        run_id TEXT, arch_id TEXT, arch_json TEXT, params BIGINT, flops BIGINT,
        depth INTEGER, n_layers INTEGER, created_at TIMESTAMP, PRIMARY KEY (run_id, arch_id))""",
    """CREATE TABLE scores (
        run_id TEXT, arch_id TEXT, checkpoint_step BIGINT, stage TEXT, score_mean DOUBLE,
        score_std DOUBLE, draws INTEGER, val_images INTEGER, created_at TIMESTAMP,
        PRIMARY KEY (run_id, arch_id, checkpoint_step))""",
    """CREATE TABLE retrains (
        retrain_id TEXT PRIMARY KEY, run_id TEXT, arch_id TEXT, epochs INTEGER, seed INTEGER,
        status TEXT, test_error DOUBLE, params BIGINT, flops BIGINT, checkpoint TEXT,
        job_id TEXT, created_at TIMESTAMP, updated_at TIMESTAMP, finished_at TIMESTAMP)""",
    """CREATE TABLE retrain_metrics (
        retrain_id TEXT, epoch INTEGER, train_loss DOUBLE, train_error DOUBLE,
        test_error DOUBLE, elapsed_s DOUBLE, PRIMARY KEY (retrain_id, epoch))""",
    """CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, run_id TEXT, arch_id TEXT, params TEXT,
        status TEXT NOT NULL, progress DOUBLE DEFAULT 0, message TEXT, dedupe_key TEXT,
        created_at TIMESTAMP, started_at TIMESTAMP, heartbeat_at TIMESTAMP,
        finished_at TIMESTAMP, cancel_requested BOOLEAN DEFAULT false, error TEXT,
        pid INTEGER, worker TEXT, attempts INTEGER DEFAULT 0, result TEXT)""",
)

# MIGRATIONS[v] takes a version v-1 file to version v.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE retrain_metrics ADD COLUMN lr DOUBLE",
        "ALTER TABLE jobs ADD COLUMN log_path TEXT",
    ),
    3: (
        """CREATE TABLE studies (
            study_id TEXT PRIMARY KEY, run_id TEXT, created_at TIMESTAMP, updated_at TIMESTAMP,
            status TEXT, epochs INTEGER, seed INTEGER, arch_ids TEXT, metrics TEXT)""",
    ),
    # Honest truth (validation error of retrains, selected on; test error only reported) and
    # noise-aware scores (95% interval of the mean over draws, partial halving scores flagged,
    # racing rounds). Old scores get their interval from std and draws; a score on fewer
    # images than the most any arch of its checkpoint got is partial.
    4: (
        "ALTER TABLE retrains ADD COLUMN val_error DOUBLE",
        "ALTER TABLE retrain_metrics ADD COLUMN val_error DOUBLE",
        "ALTER TABLE scores ADD COLUMN score_lo DOUBLE",
        "ALTER TABLE scores ADD COLUMN score_hi DOUBLE",
        "ALTER TABLE scores ADD COLUMN partial BOOLEAN DEFAULT false",
        "ALTER TABLE scores ADD COLUMN first_draw INTEGER DEFAULT 0",
        "ALTER TABLE scores ADD COLUMN race_rounds INTEGER DEFAULT 0",
        """UPDATE scores SET partial = val_images < (
            SELECT max(s.val_images) FROM scores s
            WHERE s.run_id = scores.run_id AND s.checkpoint_step = scores.checkpoint_step)""",
        """UPDATE scores SET
            score_lo = greatest(0.0, score_mean - coalesce(t.q, 1.96) * score_std / sqrt(draws)),
            score_hi = least(1.0, score_mean + coalesce(t.q, 1.96) * score_std / sqrt(draws))
        FROM (SELECT s.run_id, s.arch_id, s.checkpoint_step, q.q FROM scores s
              LEFT JOIN (VALUES (1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (6, 2.447), (7, 2.365), (8, 2.306), (9, 2.262), (10, 2.228), (11, 2.201), (12, 2.179), (13, 2.16), (14, 2.145), (15, 2.131), (16, 2.12), (17, 2.11), (18, 2.101), (19, 2.093), (20, 2.086), (25, 2.06), (30, 2.042)) q(df, q) ON q.df = s.draws - 1) t
        WHERE scores.draws > 1 AND t.run_id = scores.run_id AND t.arch_id = scores.arch_id
          AND t.checkpoint_step = scores.checkpoint_step""",
    ),
    5: (
        # Who runs a job, precisely enough that recovery never kills a reused PID.
        "ALTER TABLE jobs ADD COLUMN host TEXT",
        "ALTER TABLE jobs ADD COLUMN boot_id TEXT",
        "ALTER TABLE jobs ADD COLUMN proc_start BIGINT",
    ),
    # The leaderboard at 10^6 archs: one row per arch of a run, its sizes and its score
    # from its latest checkpoint, kept by every write to archs and scores in the same
    # transaction (store/rows.py), so no read ranks checkpoints or joins archs. A row
    # exists once either an arch or a score of it is written; checkpoint_step is NULL
    # until it is scored, has_arch false until its arch is written. Filled here from the
    # rows already stored, exactly as the reads used to pick them.
    6: (
        """CREATE TABLE board (
            run_id TEXT, arch_id TEXT, has_arch BOOLEAN NOT NULL, params BIGINT, flops BIGINT,
            depth INTEGER, n_layers INTEGER, checkpoint_step BIGINT, stage TEXT,
            score_mean DOUBLE, score_std DOUBLE, draws INTEGER, val_images INTEGER,
            score_lo DOUBLE, score_hi DOUBLE, partial BOOLEAN, race_rounds INTEGER,
            PRIMARY KEY (run_id, arch_id))""",
        """INSERT INTO board
        SELECT coalesce(a.run_id, l.run_id), coalesce(a.arch_id, l.arch_id),
               a.arch_id IS NOT NULL, a.params, a.flops, a.depth, a.n_layers,
               l.checkpoint_step, l.stage, l.score_mean, l.score_std, l.draws, l.val_images,
               l.score_lo, l.score_hi, coalesce(l.partial, false), l.race_rounds
        FROM archs a FULL JOIN (
            SELECT * FROM scores
            QUALIFY row_number() OVER (PARTITION BY run_id, arch_id ORDER BY checkpoint_step DESC) = 1
        ) l ON l.run_id = a.run_id AND l.arch_id = a.arch_id""",
    ),
}

_DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file


def create_schema(
    con: Connection | duckdb.DuckDBPyConnection, version: int = SCHEMA_VERSION
) -> None:
    """Build an empty store at `version` (below the current one only for tests)."""
    for ddl in DDL_V1:
        con.execute(ddl)
    con.execute("INSERT INTO meta VALUES ('app', ?), ('schema_version', '1')", [APP])
    migrate(con, 1, version)


def migrate(
    con: Connection | duckdb.DuckDBPyConnection, current: int, target: int = SCHEMA_VERSION
) -> None:
    for version in range(current + 1, target + 1):
        for ddl in MIGRATIONS[version]:
            con.execute(ddl)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(target)])


def _foreign(path: Path) -> StoreError:
    return StoreError(
        f"{path} is a DuckDB database but not a SMASH Explorer store "
        "(it has other tables and no SMASH Explorer meta table); refusing to touch it"
    )


def inspect(con: Connection | duckdb.DuckDBPyConnection, path: Path) -> int | None:
    """The file's schema version, or None for an empty database we may initialise."""
    tables = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()"
        ).fetchall()
    }
    if not tables:
        return None
    if "meta" not in tables:
        raise _foreign(path)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        version = int(meta["schema_version"])
    except (duckdb.Error, KeyError, ValueError, TypeError) as exc:
        raise _foreign(path) from exc
    if meta.get("app") != APP:
        raise _foreign(path)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this program supports "
            f"({SCHEMA_VERSION}); upgrade smash-explorer"
        )
    return version


def _check_file(path: Path) -> bool:
    """Validate what is at `path` without opening it; return whether a file exists."""
    if not path.parent.is_dir():
        raise StoreError(f"cannot create store {path}: {path.parent} is not a directory")
    if not path.exists():
        return False
    if not path.is_file():
        raise StoreError(f"{path} is not a file, so it is not a SMASH Explorer store")
    try:
        with path.open("rb") as fh:
            header = fh.read(12)
    except OSError as exc:
        raise StoreError(f"cannot read store {path}: {exc.strerror}") from exc
    if header[8:12] != _DUCKDB_MAGIC:
        raise StoreError(f"{path} is not a SMASH Explorer store (not a DuckDB database file)")
    return True


def _check_writable(path: Path, exists: bool) -> None:
    # DuckDB writes a .wal file beside the database, so the directory must be writable too.
    if not os.access(path.parent, os.W_OK) or (exists and not os.access(path, os.W_OK)):
        raise StoreError(
            f"store {path} is read-only: SMASH Explorer needs to write the file and "
            f"its directory {path.parent}"
        )


def _create(path: Path, timeout: float) -> None:
    """Build a new store beside `path` and link it into place in one step.

    Created in place, the file would exist for a moment without a valid header, and a
    second process opening it then (the dashboard started with the trainer) would be
    told it is not a store. A hard link appears complete or not at all, and fails if
    another process got there first, whose store is then as good as ours.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.creating")
    try:
        with connect(tmp, write=True, timeout=timeout) as con:
            create_schema(con)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: nearly as good
            if not path.exists():
                os.rename(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)


def open_store(path: Path, timeout: float) -> None:
    """Make `path` a current-version store, creating or migrating it, or raise StoreError."""
    if not _check_file(path):
        _check_writable(path, exists=False)
        _create(path, timeout)
        _check_file(path)
    with connect(path, write=False, timeout=timeout) as con:
        version = inspect(con, path)
    _check_writable(path, exists=True)
    if version == SCHEMA_VERSION:
        return
    with connect(path, write=True, timeout=timeout) as con:
        # Another process may have initialised or migrated the file since we looked.
        version = inspect(con, path)
        if version is None:
            create_schema(con)
        elif version < SCHEMA_VERSION:
            migrate(con, version)
