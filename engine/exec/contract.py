"""What every scoring executor and every record sink promises, written down once.

Scoring and retraining are written against these two protocols, not against a class,
so the same search runs in this process or on a Ray cluster and the same retrain writes
to the store directly or from a remote worker. tests/engine/exec/test_exec_contract.py runs one
suite over every implementation; a new executor or sink joins by passing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from core.arch import Arch


class ScoringExecutor(Protocol):
    """Scores Archs with one HyperNet checkpoint, here or elsewhere.

    Implementations: engine.exec.local.LocalScoring, engine.exec.ray.RayScoring.

    - Results are a function of the arguments alone: for the same (arch, images,
      first_draw) every executor returns the same (mean, std) as `Scorer.score` on the
      same checkpoint, so the place a score was computed never shows in the store.
    - `score` blocks and returns one arch's (mean, std).
    - `score_many` yields (arch, mean, std) once for every entry of `archs` (a repeated
      arch is scored, and yielded, again). The order is the input order when `parallel`
      is False, and the order results finish in when it is True; callers that need an
      order sort what they get.
    - `parallel` says whether `score_many` runs its archs at once, so a caller can
      drop repeats first rather than pay for them twice.
    - One thread drives an executor; none of them locks.
    - `close` releases the workers and may be called more than once; after it the
      executor scores nothing more. The caller always closes (a `finally`), since remote
      workers outlive a failed search otherwise.
    """

    parallel: bool

    def score(self, arch: Arch, images: int | None = None,
              first_draw: int = 0) -> tuple[float, float]: ...

    def score_many(self, archs: list[Arch], images: int | None = None,
                   first_draw: int = 0) -> Iterator[tuple[Arch, float, float]]: ...

    def close(self) -> None: ...


class RowSink(Protocol):
    """Receives store rows as they are produced, and commits them on request.

    Implementations: store.BackgroundWriter (a thread that batches into the store),
    engine.train.final.StoreSink (that writer plus the retrain record),
    engine.exec.local.QueueSink (events to the process that owns the store).

    - `put(table, rows)` never blocks on the database: it queues. Rows of one table
      arrive in the order put; an empty list is allowed and writes nothing.
    - `flush()` returns once everything put before it is committed (or, for a queue,
      handed on: the receiving side commits in the order it drains). It may be called
      at any time, any number of times.
    - Writes are idempotent upserts, so re-sending rows after a crash is safe; a sink
      never deduplicates on its own.
    - An error is never swallowed: a bad row fails in `put`; a failed commit is raised by
      a later `put`/`flush`/close. A forwarding sink (QueueSink) checks nothing itself:
      the receiver that writes the store raises instead (engine.exec.ray.apply_event).
    - Callers use a sink from one thread (BackgroundWriter happens to lock; the others
      need not).
    """

    def put(self, table: str, rows: list[dict]) -> None: ...

    def flush(self) -> None: ...


class RetrainSink(RowSink, Protocol):
    """A RowSink that also keeps a retrain's own record (engine.train.final.retrain_arch).

    `upsert_retrain(rec)` merges `rec` into the retrain's row keyed by rec["retrain_id"].
    Everything put before it is committed (or handed on) first, so a retrain marked
    "done" never lacks the metrics that led there.
    """

    def upsert_retrain(self, rec: dict) -> None: ...
