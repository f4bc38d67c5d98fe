"""Correlation studies (SMASH score against true error) and the probe set over training."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from core.search import PROBE_STAGE
from core.status import STATUSES

from .base import StoreBase, check_choice, dumps, fetch_records, utcnow


class StudiesMixin(StoreBase):
    def upsert_study(self, study_id: str, *, run_id: str, status: str, epochs: int, seed: int,
                     arch_ids: Sequence[str], metrics: list[dict] | dict | None = None) -> None:
        """Record a study's chosen archs, and its metrics once their retrains have finished."""
        check_choice("status", status, STATUSES)
        now = utcnow()
        with self._write() as con:
            con.execute(
                """
                INSERT INTO studies (study_id, run_id, created_at, updated_at, status, epochs, seed,
                                     arch_ids, metrics)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (study_id) DO UPDATE SET
                    updated_at = EXCLUDED.updated_at, status = EXCLUDED.status,
                    metrics = coalesce(EXCLUDED.metrics, metrics)
                """,
                [study_id, run_id, now, now, status, int(epochs), int(seed), dumps(list(arch_ids)),
                 None if metrics is None else dumps(metrics)],
            )

    def get_study(self, study_id: str) -> dict | None:
        with self._read() as con:
            found = fetch_records(con, "SELECT * FROM studies WHERE study_id = ?", [study_id],
                                  ("arch_ids", "metrics"))
        return found[0] if found else None

    def studies(self, run_id: str) -> pd.DataFrame:
        """A run's studies, newest first (JSON columns as text)."""
        return self._df("SELECT * FROM studies WHERE run_id = ? ORDER BY created_at DESC", [run_id])

    def probe_scores(self, run_id: str) -> pd.DataFrame:
        """Scores of the probe set at every checkpoint: rank stability over training."""
        return self._df(
            """
            SELECT arch_id, checkpoint_step, score_mean, score_std FROM scores
            WHERE run_id = ? AND stage = ? ORDER BY checkpoint_step, arch_id
            """,
            [run_id, PROBE_STAGE],
        )
