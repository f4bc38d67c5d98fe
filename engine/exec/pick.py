"""The scoring executor an ExecutorSpec asks for.

Apart from spec.py because it needs both executors, and apart from the executors so
neither depends on the other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.exec.contract import ScoringExecutor
from engine.exec.local import LocalScoring
from engine.exec.ray import RayScoring
from engine.exec.spec import ExecutorSpec
from engine.scoring.scorer import Scorer


def scoring(spec: ExecutorSpec, scorer_factory: Callable[[], Scorer], checkpoint: Path) -> ScoringExecutor:
    """The scoring executor for `spec`; the local one builds its Scorer with `scorer_factory`
    (Ray's actors build theirs from `checkpoint`)."""
    if spec.is_local:
        return LocalScoring(scorer_factory())
    return RayScoring(spec, checkpoint)
