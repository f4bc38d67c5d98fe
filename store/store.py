"""`Store`: the one object through which the app and the engine read and write results."""

from __future__ import annotations

from .jobs import JobsMixin
from .retrains import RetrainsMixin
from .runs import RunsMixin
from .scores import ScoresMixin
from .studies import StudiesMixin


class Store(RunsMixin, ScoresMixin, RetrainsMixin, JobsMixin, StudiesMixin):
    """A SMASH Explorer results database (one DuckDB file per work directory).

    Contract, shared by every method:
    * no connection outlives a call, so any number of processes may hold a Store on the
      same file; a call waits up to `timeout` seconds for another process's lock, then
      raises StoreBusy;
    * each writing call is one transaction, and every write is idempotent (keyed by
      primary keys), so repeating a call after a crash neither loses nor duplicates rows;
    * reads return pandas DataFrames (JSON columns as text) or plain dicts (JSON decoded);
    * timestamps are naive UTC, stamped by the calling process;
    * safe to share between threads; not to be used across fork() while a call is running.
    """

    def row_counts(self) -> dict[str, int]:
        """Rows per table: for a status page, and for tests and benches checking idempotence."""
        with self._read() as con:
            rows = con.execute(
                """
                SELECT 'runs', count(*) FROM runs UNION ALL
                SELECT 'checkpoints', count(*) FROM checkpoints UNION ALL
                SELECT 'train_metrics', count(*) FROM train_metrics UNION ALL
                SELECT 'archs', count(*) FROM archs UNION ALL
                SELECT 'scores', count(*) FROM scores UNION ALL
                SELECT 'retrains', count(*) FROM retrains UNION ALL
                SELECT 'retrain_metrics', count(*) FROM retrain_metrics UNION ALL
                SELECT 'jobs', count(*) FROM jobs UNION ALL
                SELECT 'studies', count(*) FROM studies
                """
            ).fetchall()
        return {table: int(n) for table, n in rows}
