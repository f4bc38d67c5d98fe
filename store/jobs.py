"""The job queue shared by the dashboard (enqueue, cancel) and the engine's worker.

Correctness across processes rests on one fact: a write transaction holds DuckDB's
exclusive file lock, so a check-then-act inside one `_write()` block (dedupe in
enqueue, pick-then-update in claim) cannot interleave with another process's. Within a
process the store's readers-writer lock gives the same guarantee between threads.

Liveness is judged by heartbeat age, not by PID: PIDs are reused, and a job may run on
another machine that shares the work directory.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta

import pandas as pd

from core.jobs import JOB_KINDS
from core.status import FINISHED, STATUSES

from .base import StoreBase, check_choice, dumps, fetch_records, utcnow

_JSON_FIELDS = ("params", "result")


def dedupe_key(kind: str, params: dict, run_id: str | None, arch_id: str | None) -> str:
    """Equal requests (same kind, run, arch and params, in any key order) share a key."""
    return hashlib.sha256(dumps([kind, run_id, arch_id, params]).encode()).hexdigest()


class JobsMixin(StoreBase):
    def enqueue_job(
        self, kind: str, params: dict, *, run_id: str | None = None, arch_id: str | None = None
    ) -> str:
        """Queue a job, or return the id of an equal job that is already queued or running.

        A double click, or two dashboards, must not start the same training twice.
        """
        check_choice("kind", kind, JOB_KINDS)
        key = dedupe_key(kind, params, run_id, arch_id)
        job_id = f"{kind}-{uuid.uuid4().hex[:12]}"
        with self._write() as con:
            existing = con.execute(
                """
                SELECT job_id FROM jobs WHERE dedupe_key = ? AND status IN ('queued', 'running')
                ORDER BY created_at LIMIT 1
                """,
                [key],
            ).fetchone()
            if existing:
                return existing[0]
            con.execute(
                """
                INSERT INTO jobs (job_id, kind, run_id, arch_id, params, status, progress,
                                  dedupe_key, created_at, cancel_requested, attempts)
                VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, false, 0)
                """,
                [job_id, kind, run_id, arch_id, dumps(params), key, utcnow()],
            )
        return job_id

    def claim_job(self, worker: str, kinds: Sequence[str] | None = None) -> dict | None:
        """Move the oldest queued job (of `kinds`, if given) to running and return it."""
        if kinds is not None:
            kinds = [check_choice("kind", k, JOB_KINDS) for k in kinds]
        now = utcnow()
        with self._write() as con:
            claimed = fetch_records(
                con,
                """
                UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = $now,
                                heartbeat_at = $now, worker = $worker, finished_at = NULL
                WHERE status = 'queued' AND job_id = (
                    SELECT job_id FROM jobs
                    WHERE status = 'queued'
                      AND ($kinds::TEXT[] IS NULL OR list_contains($kinds::TEXT[], kind))
                    ORDER BY created_at, job_id LIMIT 1)
                RETURNING *
                """,
                {"now": now, "worker": worker, "kinds": kinds},
                _JSON_FIELDS,
            )
        return claimed[0] if claimed else None

    def heartbeat(
        self,
        job_id: str,
        *,
        progress: float | None = None,
        message: str | None = None,
        pid: int | None = None,
        log_path: str | None = None,
    ) -> bool:
        """Stamp the job alive, updating the fields given; return whether a cancel is pending.

        Returning the cancel flag saves the worker a second open of the store per beat.
        """
        with self._write() as con:
            row = con.execute(
                """
                UPDATE jobs SET heartbeat_at = ?, progress = coalesce(?, progress),
                                message = coalesce(?, message), pid = coalesce(?, pid),
                                log_path = coalesce(?, log_path)
                WHERE job_id = ? RETURNING cancel_requested
                """,
                [
                    utcnow(),
                    progress,
                    message,
                    pid,
                    None if log_path is None else str(log_path),
                    job_id,
                ],
            ).fetchone()
        if row is None:
            raise KeyError(f"no job {job_id!r}")
        return bool(row[0])

    def attach_run(self, job_id: str, run_id: str) -> None:
        """Name the run a train job trains (known only once its config is read)."""
        with self._write() as con:
            con.execute("UPDATE jobs SET run_id = ? WHERE job_id = ? AND run_id IS NULL", [run_id, job_id])

    def record_process(
        self, job_id: str, *, pid: int, host: str, boot_id: str, proc_start: int | None
    ) -> None:
        """Where a job's process runs: host, boot and start time make a PID unambiguous."""
        with self._write() as con:
            con.execute(
                "UPDATE jobs SET pid = ?, host = ?, boot_id = ?, proc_start = ? WHERE job_id = ?",
                [pid, host, boot_id, proc_start, job_id],
            )

    def stale_jobs(self, max_age_s: float) -> list[str]:
        """Running jobs whose last heartbeat is older than `max_age_s`."""
        cutoff = utcnow() - timedelta(seconds=max_age_s)
        rows = self._records(
            """
            SELECT job_id FROM jobs
            WHERE status = 'running' AND coalesce(heartbeat_at, started_at, created_at) < ?
            ORDER BY job_id
            """,
            [cutoff],
        )
        return [r["job_id"] for r in rows]

    def requeue_interrupted_jobs(self, job_ids: Iterable[str], max_attempts: int,
                                 reason: str = "heartbeat stale") -> tuple[list[str], list[str]]:
        """Requeue running jobs whose work was interrupted (a stale heartbeat, a process killed
        by a signal), failing those that already had `max_attempts` tries with `reason`.

        Returns (requeued ids, failed ids)."""
        ids = list(job_ids)
        with self._write() as con:
            failed = con.execute(
                """
                UPDATE jobs SET status = 'failed', finished_at = $now,
                    error = $reason || '; gave up after ' || CAST(attempts AS TEXT) || ' attempts'
                WHERE status = 'running' AND attempts >= $cap AND list_contains($ids::TEXT[], job_id)
                RETURNING job_id
                """,
                {"now": utcnow(), "cap": int(max_attempts), "ids": ids, "reason": reason},
            ).fetchall()
        return self.requeue_jobs(ids), sorted(r[0] for r in failed)

    def finish_job(
        self, job_id: str, status: str, *, error: str | None = None, result: dict | None = None
    ) -> None:
        """End a job as done, failed or cancelled; done also sets progress to 1."""
        check_choice("status", status, FINISHED)
        with self._write() as con:
            row = con.execute(
                """
                UPDATE jobs SET status = $status, finished_at = $now, error = $error,
                                result = coalesce($result, result),
                                progress = CASE WHEN $status = 'done' THEN 1.0 ELSE progress END
                WHERE job_id = $job_id RETURNING job_id
                """,
                {
                    "status": status,
                    "now": utcnow(),
                    "error": error,
                    "job_id": job_id,
                    "result": None if result is None else dumps(result),
                },
            ).fetchone()
        if row is None:
            raise KeyError(f"no job {job_id!r}")

    def request_cancel(self, job_id: str) -> str:
        """Cancel a queued job now, or flag a running one for its worker; return the new status."""
        with self._write() as con:
            row = con.execute(
                """
                UPDATE jobs SET
                    status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                    finished_at = CASE WHEN status = 'queued' THEN $now ELSE finished_at END,
                    cancel_requested = cancel_requested OR status IN ('queued', 'running')
                WHERE job_id = $job_id RETURNING status
                """,
                {"now": utcnow(), "job_id": job_id},
            ).fetchone()
        if row is None:
            raise KeyError(f"no job {job_id!r}")
        return row[0]

    def cancel_requested(self, job_id: str) -> bool:
        flag = self._records("SELECT cancel_requested FROM jobs WHERE job_id = ?", [job_id])
        if not flag:
            raise KeyError(f"no job {job_id!r}")
        return bool(flag[0]["cancel_requested"])

    def get_job(self, job_id: str) -> dict | None:
        return self._record("SELECT * FROM jobs WHERE job_id = ?", [job_id], _JSON_FIELDS)

    def jobs(self, limit: int = 200, status: str | Iterable[str] | None = None) -> pd.DataFrame:
        """Jobs newest first; heartbeat_age_s is set for running jobs only.

        params and result stay JSON text here; get_job decodes them.
        """
        if isinstance(status, str):
            status = [status]
        if status is not None:
            status = [check_choice("status", s, STATUSES) for s in status]
        return self._df(
            """
            SELECT *, CASE WHEN status = 'running'
                      THEN epoch(CAST($now AS TIMESTAMP) - coalesce(heartbeat_at, started_at))
                      END AS heartbeat_age_s
            FROM jobs WHERE $status::TEXT[] IS NULL OR list_contains($status::TEXT[], status)
            ORDER BY created_at DESC, job_id DESC LIMIT $limit
            """,
            {"now": utcnow(), "status": status, "limit": int(limit)},
        )

    def requeue_jobs(self, job_ids: Iterable[str], count_attempt: bool = True) -> list[str]:
        """Put interrupted running jobs back in the queue (a restarted engine resumes them).

        A job whose cancel was requested before the interruption is cancelled instead.
        `count_attempt` False: the interruption was no fault of the job's (its engine stopped
        it, or went away), so the try it had does not count against its attempts.
        Returns the ids now queued.
        """
        now = utcnow()
        with self._write() as con:
            rows = con.execute(
                """
                UPDATE jobs SET
                    status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
                    finished_at = CASE WHEN cancel_requested THEN $now END,
                    attempts = CASE WHEN $count THEN attempts ELSE greatest(attempts - 1, 0) END,
                    worker = NULL, pid = NULL, started_at = NULL, heartbeat_at = NULL,
                    host = NULL, boot_id = NULL, proc_start = NULL
                WHERE status = 'running' AND list_contains($ids::TEXT[], job_id)
                RETURNING job_id, status
                """,
                {"now": now, "ids": list(job_ids), "count": bool(count_attempt)},
            ).fetchall()
        return sorted(job_id for job_id, status in rows if status == "queued")
