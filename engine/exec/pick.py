"""Where compute runs, chosen in this one place: the scoring executor and the retrain an
ExecutorSpec asks for (this process, or Ray).

Apart from the executors so neither depends on the other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.arch import Arch
from core.config import Config
from core.control import QUIET, Control
from core.executor import ExecutorSpec
from core.jobs import RetrainJob
from engine.exec.contract import ScoringExecutor
from engine.exec.local import LocalScoring
from engine.exec.ray import RayScoring, retrain_remote
from engine.scoring.scorer import Scorer
from engine.train.final import retrain_arch
from store import Store


def scoring(spec: ExecutorSpec, scorer_factory: Callable[[], Scorer], checkpoint: Path) -> ScoringExecutor:
    """The scoring executor for `spec`; the local one builds its Scorer with `scorer_factory`
    (Ray's actors build theirs from `checkpoint`)."""
    if spec.is_local:
        return LocalScoring(scorer_factory())
    return RayScoring(spec, checkpoint)


def retrain(spec: ExecutorSpec, cfg: Config, arch: Arch, workdir: Path, store: Store, job: RetrainJob,
            control: Control = QUIET, *, run_id: str, job_id: str | None = None) -> dict[str, Any]:
    """Final training of `arch` as `job` asks, here or as a Ray task, as `spec` says."""
    if spec.is_local:
        return retrain_arch(cfg, arch, workdir, store, job, control, run_id=run_id, job_id=job_id)
    return retrain_remote(spec, cfg, arch, workdir, store, job, control, run_id=run_id, job_id=job_id)
