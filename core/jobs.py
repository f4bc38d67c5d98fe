"""What each queued job kind takes: one frozen dataclass per kind, and the list of kinds.

A job's parameters are stored as a JSON dict (the store dedupes equal requests by it),
written by the CLI, the dashboard and the correlate study, and read back by the engine's
runner. Each class here is the one description of that dict: `to_params` writes it (a
field left at None is left out, so the stored shape is the one every writer always
produced) and `from_params` reads it back, also from jobs queued by older versions
(missing keys take the defaults, unknown keys are ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

PREDICTORS = ("smash", "params", "flops", "naswot")
"""Every predictor a correlate study can hold against the truth (NASWOT: a training-free proxy)."""

DEFAULT_PREDICTORS = ("smash", "params", "flops")
"""The predictors a correlate study holds against the truth unless told otherwise."""


class JobError(ValueError):
    """A job's parameters are unusable."""


class JobParams:
    """Shared reading and writing of a kind's stored parameter dict."""

    kind: ClassVar[str]

    def to_params(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Self:
        params = params or {}
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in params.items() if k in known}
        for name, value in values.items():
            if isinstance(value, list):
                values[name] = tuple(value)
        return cls(**values)


@dataclass(frozen=True)
class TrainJob(JobParams):
    """Train a HyperNet. `config_data` is the config as it was when queued; `config` is
    its file (all that jobs queued by older versions carry)."""

    kind: ClassVar[str] = "train"
    config: str | None = None
    config_data: dict[str, Any] | None = None
    score_archs: int | None = None
    """Architectures to score once training ends (None or 0: none)."""
    run_id: str | None = None
    pipeline: bool | None = None
    """Score off the training process: queue a probe job at each checkpoint and, at the
    last, a score job (probe set, then `score_archs`) with a helper job beside it, so other
    engine slots score while this one trains. None or False: probe and score here, one
    after the other."""


@dataclass(frozen=True)
class ScoreJob(JobParams):
    """A scoring pass over the job's run; None fields take the run's [score] settings."""

    kind: ClassVar[str] = "score"
    archs: int | None = None
    checkpoint: int | None = None
    halving_min: int | None = None
    probe: bool | None = None
    """Score the run's probe set at the checkpoint first (what training does in-process
    unless it hands its checkpoints to score jobs)."""
    probe_only: bool | None = None
    """Stop after the probe set."""
    shared: bool | None = None
    """A helper job scores the random sample from its end: take its scores as they come."""
    helper: bool | None = None
    """Be that helper: score the random sample of the `archs` pass at `checkpoint` from its
    end until meeting the shared pass (a second process on the pass's largest stage)."""


@dataclass(frozen=True)
class RetrainJob(JobParams):
    """Final training of the job's arch; None fields take the run's [retrain] settings."""

    kind: ClassVar[str] = "retrain"
    epochs: int | None = None
    seed: int | None = None
    steps_per_epoch: int | None = None


@dataclass(frozen=True)
class CorrelateJob(JobParams):
    """A correlate study of the job's run (see engine/study.py)."""

    kind: ClassVar[str] = "correlate"
    k: int = 24
    epochs: int = 2
    seeds: int = 1
    steps_per_epoch: int = 0
    predictors: tuple[str, ...] = DEFAULT_PREDICTORS
    include_partial: bool | None = None
    score_draws: int = 10
    """Each study arch's SMASH score is refined to this many draws before it is compared
    with the truth (0: as the search scored it)."""


PARAMS: dict[str, type[JobParams]] = {cls.kind: cls for cls in (TrainJob, ScoreJob, RetrainJob, CorrelateJob)}
JOB_KINDS = tuple(PARAMS)
"""Every kind of job the queue accepts: train, score, retrain, correlate."""

