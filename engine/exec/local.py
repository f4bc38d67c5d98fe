"""The executor that runs in this process, and the sink that forwards records elsewhere.

Local scoring is the default and the reference the Ray executor must match. QueueSink
is how a retrain running anywhere but here sends its store writes to the one process
that owns the store; it needs no Ray itself, only an object with `put`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.arch import Arch
from engine.scoring.scorer import Scorer


class LocalScoring:
    """Scores in this process, one arch after another (see contract.ScoringExecutor)."""

    parallel = False

    def __init__(self, scorer: Scorer):
        self.scorer = scorer

    def score(self, arch: Arch, images: int | None = None, first_draw: int = 0) -> tuple[float, float]:
        return self.scorer.score(arch, images, first_draw)

    def score_many(self, archs: list[Arch], images: int | None = None,
                   first_draw: int = 0) -> Iterator[tuple[Arch, float, float]]:
        for arch in archs:
            mean, std = self.scorer.score(arch, images, first_draw)
            yield arch, mean, std

    def close(self) -> None:
        pass


class QueueSink:
    """A retrain's store writes, sent as events to the process that owns the store
    (see contract.RetrainSink)."""

    def __init__(self, events: Any):
        self.events = events

    def upsert_retrain(self, rec: dict) -> None:
        self.events.put(("upsert_retrain", rec))

    def put(self, table: str, rows: list[dict]) -> None:
        self.events.put(("rows", table, rows))

    def flush(self) -> None:
        pass  # events are handed on in order as they are put; the receiver commits them
