"""Batched, idempotent inserts for the row kinds that stream in during a run.

Each kind is a table with a primary key and one INSERT that takes whole columns as
typed list parameters (`unnest($col::TYPE[])`): one statement per batch instead of one
per row, with every value bound, and explicit types so a batch whose first rows hold
NULLs cannot be mistyped. A re-sent batch is harmless: metric kinds overwrite (a resumed
run recomputes those steps, and the newer value is the one the run continued from),
archs and scores keep the first row (the first search stage that found an arch wins).

Archs, scores and racing updates also keep the `board` table (one row per arch: its
sizes and its latest checkpoint's score) in step, in the same transaction, by upserts
keyed on (run_id, arch_id) that reach the row through the primary key's index, never by
a scan: a score replaces the board's only when its checkpoint is later, which is the
one the reads used to pick, and an arch fills the sizes only of a row that has none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from core.search import STAGES

from .base import dumps
from .db import Connection, plain

SCORE_DEFAULTS = {"partial": False, "first_draw": 0, "race_rounds": 0}


def _arch_row(row: dict) -> dict:
    """Accept the architecture as a dict under "arch" or as text/dict under "arch_json"."""
    if "arch" in row:
        if "arch_json" in row:
            raise ValueError("archs row has both 'arch' and 'arch_json'; give one")
        row["arch_json"] = row.pop("arch")
    if row.get("arch_json") is not None and not isinstance(row["arch_json"], str):
        row["arch_json"] = dumps(row["arch_json"])
    elif isinstance(row.get("arch_json"), str):
        json.loads(row["arch_json"])  # reject text that is not JSON now, not in the app later
    return row


def _score_row(row: dict) -> dict:
    if row.get("stage") not in STAGES:
        raise ValueError(
            f"scores row stage must be one of {', '.join(STAGES)}; got {row.get('stage')!r}"
        )
    for key, value in SCORE_DEFAULTS.items():
        if row.get(key) is None:
            row[key] = value
    return row


def _raced_update(table: str) -> str:
    """A racing round's new tally for the (run, arch, checkpoint) rows of `table` (scores,
    or the board, which only changes where it holds that checkpoint)."""
    return f"""
        UPDATE {table} SET score_mean = u.score_mean, score_std = u.score_std, draws = u.draws,
            score_lo = u.score_lo, score_hi = u.score_hi, race_rounds = u.race_rounds
        FROM (SELECT unnest($run_id::TEXT[]) AS run_id, unnest($arch_id::TEXT[]) AS arch_id,
                     unnest($checkpoint_step::BIGINT[]) AS checkpoint_step,
                     unnest($score_mean::DOUBLE[]) AS score_mean,
                     unnest($score_std::DOUBLE[]) AS score_std, unnest($draws::INTEGER[]) AS draws,
                     unnest($score_lo::DOUBLE[]) AS score_lo, unnest($score_hi::DOUBLE[]) AS score_hi,
                     unnest($race_rounds::INTEGER[]) AS race_rounds) u
        WHERE {table}.run_id = u.run_id AND {table}.arch_id = u.arch_id
          AND {table}.checkpoint_step = u.checkpoint_step"""


@dataclass(frozen=True)
class RowKind:
    """One streamed table: its columns, key, idempotent INSERT and row normaliser."""

    columns: tuple[str, ...]  # the named parameters of `sql`, in order
    key: tuple[str, ...]
    sql: str
    keep_last: bool  # duplicates inside one batch: last wins for overwrite kinds
    normalise: Callable[[dict], dict] = field(default=lambda row: row)  # gets a copy; may edit it
    board: str | None = None  # keeps the board table in step, run after `sql`, same columns


KINDS: dict[str, RowKind] = {
    "archs": RowKind(
        columns=(
            "run_id",
            "arch_id",
            "arch_json",
            "params",
            "flops",
            "depth",
            "n_layers",
            "created_at",
        ),
        key=("run_id", "arch_id"),
        keep_last=False,
        normalise=_arch_row,
        sql="""
        INSERT INTO archs (run_id, arch_id, arch_json, params, flops, depth, n_layers, created_at)
        SELECT unnest($run_id::TEXT[]), unnest($arch_id::TEXT[]), unnest($arch_json::TEXT[]),
               unnest($params::BIGINT[]), unnest($flops::BIGINT[]), unnest($depth::INTEGER[]),
               unnest($n_layers::INTEGER[]), unnest($created_at::TIMESTAMP[])
        ON CONFLICT DO NOTHING""",
        board="""
        INSERT INTO board (run_id, arch_id, has_arch, params, flops, depth, n_layers, partial)
        SELECT unnest($run_id::TEXT[]), unnest($arch_id::TEXT[]), true, unnest($params::BIGINT[]),
               unnest($flops::BIGINT[]), unnest($depth::INTEGER[]), unnest($n_layers::INTEGER[]),
               false
        ON CONFLICT (run_id, arch_id) DO UPDATE SET has_arch = true, params = EXCLUDED.params,
            flops = EXCLUDED.flops, depth = EXCLUDED.depth, n_layers = EXCLUDED.n_layers
        WHERE NOT board.has_arch""",
    ),
    "scores": RowKind(
        columns=(
            "run_id",
            "arch_id",
            "checkpoint_step",
            "stage",
            "score_mean",
            "score_std",
            "draws",
            "val_images",
            "score_lo",
            "score_hi",
            "partial",
            "first_draw",
            "race_rounds",
            "created_at",
        ),
        key=("run_id", "arch_id", "checkpoint_step"),
        keep_last=False,
        normalise=_score_row,
        sql="""
        INSERT INTO scores (run_id, arch_id, checkpoint_step, stage, score_mean, score_std,
                            draws, val_images, score_lo, score_hi, partial, first_draw,
                            race_rounds, created_at)
        SELECT unnest($run_id::TEXT[]), unnest($arch_id::TEXT[]), unnest($checkpoint_step::BIGINT[]),
               unnest($stage::TEXT[]), unnest($score_mean::DOUBLE[]), unnest($score_std::DOUBLE[]),
               unnest($draws::INTEGER[]), unnest($val_images::INTEGER[]),
               unnest($score_lo::DOUBLE[]), unnest($score_hi::DOUBLE[]),
               unnest($partial::BOOLEAN[]), unnest($first_draw::INTEGER[]),
               unnest($race_rounds::INTEGER[]), unnest($created_at::TIMESTAMP[])
        ON CONFLICT DO NOTHING""",
        # A score at a checkpoint later than the board's is new (the board holds the
        # latest stored), so it is the row the INSERT above just stored.
        board="""
        INSERT INTO board (run_id, arch_id, has_arch, checkpoint_step, stage, score_mean,
                           score_std, draws, val_images, score_lo, score_hi, partial, race_rounds)
        SELECT run_id, arch_id, false, checkpoint_step, stage, score_mean, score_std, draws,
               val_images, score_lo, score_hi, coalesce(partial, false), race_rounds
        FROM (SELECT unnest($run_id::TEXT[]) AS run_id, unnest($arch_id::TEXT[]) AS arch_id,
                     unnest($checkpoint_step::BIGINT[]) AS checkpoint_step,
                     unnest($stage::TEXT[]) AS stage, unnest($score_mean::DOUBLE[]) AS score_mean,
                     unnest($score_std::DOUBLE[]) AS score_std, unnest($draws::INTEGER[]) AS draws,
                     unnest($val_images::INTEGER[]) AS val_images,
                     unnest($score_lo::DOUBLE[]) AS score_lo, unnest($score_hi::DOUBLE[]) AS score_hi,
                     unnest($partial::BOOLEAN[]) AS partial,
                     unnest($race_rounds::INTEGER[]) AS race_rounds)
        QUALIFY row_number() OVER (PARTITION BY run_id, arch_id ORDER BY checkpoint_step DESC) = 1
        ON CONFLICT (run_id, arch_id) DO UPDATE SET checkpoint_step = EXCLUDED.checkpoint_step,
            stage = EXCLUDED.stage, score_mean = EXCLUDED.score_mean,
            score_std = EXCLUDED.score_std, draws = EXCLUDED.draws,
            val_images = EXCLUDED.val_images, score_lo = EXCLUDED.score_lo,
            score_hi = EXCLUDED.score_hi, partial = EXCLUDED.partial,
            race_rounds = EXCLUDED.race_rounds
        WHERE board.checkpoint_step IS NULL OR EXCLUDED.checkpoint_step > board.checkpoint_step""",
    ),
    # Racing adds fresh draws to a stored score: the row's figures are replaced by those
    # over all its draws so far, and race_rounds counts the rounds (a resent round is
    # harmless: the same figures again).
    "raced": RowKind(
        columns=(
            "run_id",
            "arch_id",
            "checkpoint_step",
            "score_mean",
            "score_std",
            "draws",
            "score_lo",
            "score_hi",
            "race_rounds",
        ),
        key=("run_id", "arch_id", "checkpoint_step"),
        keep_last=True,
        sql=_raced_update("scores"),
        board=_raced_update("board"),
    ),
    "train_metrics": RowKind(
        columns=("run_id", "step", "loss", "error", "lr", "steps_per_s", "elapsed_s"),
        key=("run_id", "step"),
        keep_last=True,
        sql="""
        INSERT INTO train_metrics (run_id, step, loss, error, lr, steps_per_s, elapsed_s)
        SELECT unnest($run_id::TEXT[]), unnest($step::BIGINT[]), unnest($loss::DOUBLE[]),
               unnest($error::DOUBLE[]), unnest($lr::DOUBLE[]), unnest($steps_per_s::DOUBLE[]),
               unnest($elapsed_s::DOUBLE[])
        ON CONFLICT DO UPDATE SET loss = EXCLUDED.loss, error = EXCLUDED.error, lr = EXCLUDED.lr,
            steps_per_s = EXCLUDED.steps_per_s, elapsed_s = EXCLUDED.elapsed_s""",
    ),
    "retrain_metrics": RowKind(
        columns=(
            "retrain_id",
            "epoch",
            "train_loss",
            "train_error",
            "val_error",
            "test_error",
            "lr",
            "elapsed_s",
        ),
        key=("retrain_id", "epoch"),
        keep_last=True,
        sql="""
        INSERT INTO retrain_metrics (retrain_id, epoch, train_loss, train_error, val_error,
                                     test_error, lr, elapsed_s)
        SELECT unnest($retrain_id::TEXT[]), unnest($epoch::INTEGER[]), unnest($train_loss::DOUBLE[]),
               unnest($train_error::DOUBLE[]), unnest($val_error::DOUBLE[]),
               unnest($test_error::DOUBLE[]), unnest($lr::DOUBLE[]), unnest($elapsed_s::DOUBLE[])
        ON CONFLICT DO UPDATE SET train_loss = EXCLUDED.train_loss,
            train_error = EXCLUDED.train_error, val_error = EXCLUDED.val_error,
            test_error = EXCLUDED.test_error, lr = EXCLUDED.lr, elapsed_s = EXCLUDED.elapsed_s""",
    ),
    "checkpoints": RowKind(
        columns=("run_id", "step", "path", "created_at"),
        key=("run_id", "step"),
        keep_last=True,
        sql="""
        INSERT INTO checkpoints (run_id, step, path, created_at)
        SELECT unnest($run_id::TEXT[]), unnest($step::BIGINT[]), unnest($path::TEXT[]),
               unnest($created_at::TIMESTAMP[])
        ON CONFLICT DO UPDATE SET path = EXCLUDED.path, created_at = EXCLUDED.created_at""",
    ),
}


def check_kind(kind: str) -> RowKind:
    if kind not in KINDS:
        raise ValueError(f"row kind must be one of {', '.join(KINDS)}; got {kind!r}")
    return KINDS[kind]


def validate_rows(kind: str, rows: Iterable[dict]) -> list[dict]:
    """Checked, normalised copies of `rows`: a bad row fails here, in the caller's thread."""
    spec = check_kind(kind)
    allowed = set(spec.columns)
    checked = []
    for raw in rows:
        row = spec.normalise({k: plain(v) for k, v in raw.items()})
        unknown = set(row) - allowed
        if unknown:
            raise ValueError(
                f"{kind} row has unknown fields {sorted(unknown)}; allowed: {', '.join(spec.columns)}"
            )
        if any(row.get(k) is None for k in spec.key):
            raise ValueError(f"{kind} row lacks its key {', '.join(spec.key)}: {raw!r}")
        checked.append(row)
    return checked


def to_columns(kind: str, rows: Iterable[dict], now: datetime) -> dict[str, list]:
    """Drop in-batch duplicates by primary key and pivot validated rows to columns."""
    spec = KINDS[kind]
    by_key: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[k] for k in spec.key)
        if spec.keep_last or key not in by_key:
            by_key[key] = row
    defaults = {"created_at": now}
    return {c: [row.get(c, defaults.get(c)) for row in by_key.values()] for c in spec.columns}


def _bound(sql: str, columns: dict[str, list]) -> dict[str, list]:
    """The columns `sql` names: DuckDB refuses parameters a statement does not use."""
    return {name: columns[name] for name in set(re.findall(r"\$(\w+)", sql))}


def insert(con: Connection, kind: str, columns: dict[str, list]) -> None:
    spec = KINDS[kind]
    if columns[spec.key[0]]:
        con.execute(spec.sql, columns)
        if spec.board is not None:
            con.execute(spec.board, _bound(spec.board, columns))
