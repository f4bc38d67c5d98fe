"""Final trainings of chosen architectures with free weights: the "true error" side.

A retrain records its validation error (a split held out of training, and what every
selection uses) and its test error (reported, never selected on)."""

from __future__ import annotations

import pandas as pd

from core.status import FINISHED, STATUSES

from .base import StoreBase, check_choice, utcnow

_RETRAIN_COLUMNS = (
    "retrain_id",
    "run_id",
    "arch_id",
    "epochs",
    "seed",
    "status",
    "val_error",
    "test_error",
    "params",
    "flops",
    "checkpoint",
    "job_id",
    "created_at",
    "updated_at",
    "finished_at",
)


class RetrainsMixin(StoreBase):
    def end_job_retrains(self, job_id: str, status: str) -> list[str]:
        """Mark the running retrains of a job that died as `status`; return their ids."""
        check_choice("status", status, FINISHED)
        now = utcnow()
        with self._write() as con:
            rows = con.execute(
                """
                UPDATE retrains SET status = ?, updated_at = ?, finished_at = ?
                WHERE job_id = ? AND status = 'running' RETURNING retrain_id
                """,
                [status, now, now, job_id],
            ).fetchall()
        return sorted(r[0] for r in rows)

    def upsert_retrain(self, row: dict) -> None:
        """Insert a retrain, or update the fields `row` gives (others keep their values).

        A retrain is written several times (queued, running, done) by different
        processes; merging field by field lets each write only what it knows. Moving to
        done/failed/cancelled stamps finished_at unless the row gives one.
        """
        unknown = set(row) - set(_RETRAIN_COLUMNS)
        if unknown:
            raise ValueError(f"retrain row has unknown fields {sorted(unknown)}")
        if row.get("retrain_id") is None:
            raise ValueError("retrain row needs a retrain_id")
        if row.get("status") is not None:
            check_choice("status", row["status"], STATUSES)
        now = utcnow()
        values = {c: row.get(c) for c in _RETRAIN_COLUMNS}
        values["created_at"] = values["created_at"] or now
        values["updated_at"] = now
        if values["status"] in FINISHED and values["finished_at"] is None:
            values["finished_at"] = now
        with self._write() as con:
            con.execute(
                """
                INSERT INTO retrains (retrain_id, run_id, arch_id, epochs, seed, status, val_error,
                                      test_error, params, flops, checkpoint, job_id, created_at,
                                      updated_at, finished_at)
                VALUES ($retrain_id, $run_id, $arch_id, $epochs, $seed, $status, $val_error, $test_error,
                        $params, $flops, $checkpoint, $job_id, $created_at, $updated_at, $finished_at)
                ON CONFLICT (retrain_id) DO UPDATE SET
                    run_id = coalesce(EXCLUDED.run_id, run_id),
                    arch_id = coalesce(EXCLUDED.arch_id, arch_id),
                    epochs = coalesce(EXCLUDED.epochs, epochs),
                    seed = coalesce(EXCLUDED.seed, seed),
                    status = coalesce(EXCLUDED.status, status),
                    val_error = coalesce(EXCLUDED.val_error, val_error),
                    test_error = coalesce(EXCLUDED.test_error, test_error),
                    params = coalesce(EXCLUDED.params, params),
                    flops = coalesce(EXCLUDED.flops, flops),
                    checkpoint = coalesce(EXCLUDED.checkpoint, checkpoint),
                    job_id = coalesce(EXCLUDED.job_id, job_id),
                    updated_at = EXCLUDED.updated_at,
                    finished_at = coalesce(EXCLUDED.finished_at, finished_at)
                """,
                values,
            )

    def get_retrain(self, retrain_id: str) -> dict | None:
        return self._record("SELECT * FROM retrains WHERE retrain_id = ?", [retrain_id])

    def retrains(self, run_id: str | None = None) -> pd.DataFrame:
        """Retrains, newest first, of one run or of all."""
        return self._df(
            """
            SELECT * FROM retrains WHERE CAST(? AS TEXT) IS NULL OR run_id = ?
            ORDER BY created_at DESC, retrain_id DESC
            """,
            [run_id, run_id],
        )

    def retrain_metrics(self, retrain_id: str) -> pd.DataFrame:
        return self._df(
            "SELECT * FROM retrain_metrics WHERE retrain_id = ? ORDER BY epoch", [retrain_id]
        )
