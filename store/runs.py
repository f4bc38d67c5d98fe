"""Runs (one HyperNet training each), their checkpoints and training curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from core.metric import run_metric
from core.status import STATUSES

from .base import StoreBase, check_choice, dumps, utcnow
from .rows import KINDS, insert, to_columns, validate_rows


class RunsMixin(StoreBase):
    def add_rows(self, batches: Mapping[str, Sequence[dict]]) -> None:
        """Write rows of several kinds in one transaction: all of them land, or none.

        Kinds: archs, scores, raced, train_metrics, retrain_metrics, checkpoints, written
        in that order (a racing update lands after the score it updates). Rows are
        validated before the lock is taken, so a bad row costs no other process a wait.
        """
        self._insert_rows({kind: validate_rows(kind, rows) for kind, rows in batches.items()})

    def _insert_rows(self, batches: Mapping[str, Sequence[dict]]) -> None:
        """add_rows for rows already through validate_rows (the background writer's path)."""
        now = utcnow()
        order = list(KINDS)
        prepared = [(kind, to_columns(kind, batches[kind], now))
                    for kind in sorted(batches, key=order.index)]
        with self._write() as con:
            for kind, columns in prepared:
                insert(con, kind, columns)

    def create_run(
        self,
        run_id: str,
        *,
        name: str,
        config: dict,
        seed: int,
        code_version: str,
        dataset: str,
        num_classes: int,
        image_shape: Sequence[int],
        steps_total: int,
        status: str = "running",
    ) -> None:
        """Record a run; for a run that exists (a resume) only status and updated_at change."""
        check_choice("status", status, STATUSES)
        now = utcnow()
        with self._write() as con:
            con.execute(
                """
                INSERT INTO runs (run_id, name, created_at, updated_at, status, config, seed,
                                  code_version, dataset, num_classes, image_shape, steps_total, step)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
                ON CONFLICT (run_id) DO UPDATE SET status = EXCLUDED.status,
                                                   updated_at = EXCLUDED.updated_at
                """,
                [
                    run_id,
                    name,
                    now,
                    now,
                    status,
                    dumps(config),
                    seed,
                    code_version,
                    dataset,
                    num_classes,
                    dumps([int(x) for x in image_shape]),
                    steps_total,
                ],
            )

    def update_run(
        self, run_id: str, *, status: str | None = None, step: int | None = None
    ) -> None:
        """Move a run's status and/or step on; raises KeyError for an unknown run."""
        if status is not None:
            check_choice("status", status, STATUSES)
        with self._write() as con:
            found = con.execute(
                """
                UPDATE runs SET status = coalesce(?, status), step = coalesce(?, step), updated_at = ?
                WHERE run_id = ? RETURNING run_id
                """,
                [status, step, utcnow(), run_id],
            ).fetchall()
        if not found:
            raise KeyError(f"no run {run_id!r} in {self.path}")

    def get_run(self, run_id: str) -> dict | None:
        return self._record(
            "SELECT * FROM runs WHERE run_id = ?", [run_id], json_fields=("config", "image_shape")
        )

    def score_metric(self, run_id: str) -> str:
        """What the run's SMASH scores measure (core.metric): "error" (also for a run the
        store does not know, or one stored before the setting), or "loss" in nats."""
        return run_metric((self.get_run(run_id) or {}).get("config"))

    def runs(self) -> pd.DataFrame:
        """All runs, newest first; config and image_shape stay JSON text."""
        return self._df("SELECT * FROM runs ORDER BY created_at DESC, run_id DESC")

    def latest_run_id(self) -> str | None:
        return self._scalar("SELECT run_id FROM runs ORDER BY created_at DESC, run_id DESC LIMIT 1")

    def add_checkpoint(self, run_id: str, step: int, path: str | Path) -> None:
        self.add_rows({"checkpoints": [{"run_id": run_id, "step": step, "path": str(path)}]})

    def checkpoints(self, run_id: str) -> pd.DataFrame:
        return self._df("SELECT * FROM checkpoints WHERE run_id = ? ORDER BY step", [run_id])

    def train_metrics(self, run_id: str) -> pd.DataFrame:
        return self._df("SELECT * FROM train_metrics WHERE run_id = ? ORDER BY step", [run_id])
