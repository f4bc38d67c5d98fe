"""What each queued job kind takes: one frozen dataclass per kind, and the list of kinds.

A job's parameters are stored as a JSON dict (the store dedupes equal requests by it),
written by the CLI, the dashboard and the correlate study, and read back by the engine's
runner. Each class here is the one description of that dict: `to_params` writes it (a
field left at None is left out, so the stored shape is the one every writer always
produced) and `from_params` reads it back, also from jobs queued by older versions
(missing keys take the defaults, unknown keys are ignored, renamed keys are read under
their new name). The same classes are what the engine's entry points take, so a command
line, a queued job and a notebook call all describe one piece of work the same way.
Each checks its values when made: a bad request fails where it is made, not in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

from core.errors import BadRequest

PREDICTORS = ("smash", "params", "flops", "naswot")
"""Every predictor a correlate study can hold against the truth (NASWOT: a training-free proxy)."""

DEFAULT_PREDICTORS = ("smash", "params", "flops")
"""The predictors a correlate study holds against the truth unless told otherwise."""

MAX_SCORE_DRAWS = 1000


class JobError(BadRequest):
    """A job's parameters are unusable."""


class CorrelateError(JobError):
    """Too few scored architectures for a study, or unusable study settings."""


class JobParams:
    """Shared reading and writing of a kind's stored parameter dict."""

    kind: ClassVar[str]
    renamed: ClassVar[dict[str, str]] = {}
    """Keys older versions wrote, by the field that holds them now."""

    def to_params(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Self:
        params = dict(params or {})
        for old, new in cls.renamed.items():
            if old in params:
                params.setdefault(new, params.pop(old))
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in params.items() if k in known}
        for name, value in values.items():
            if isinstance(value, list):
                values[name] = tuple(value)
        return cls(**cls.legacy(params, values))

    @classmethod
    def legacy(cls, params: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """`values` with what older versions stored in other keys folded in."""
        return values


def _at_least(name: str, value: int | None, low: int) -> None:
    if value is not None and value < low:
        raise JobError(f"{name} {value}: must be >= {low}")


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
    last, a pipelined score job with a helper job beside it, so other engine slots score
    while this one trains. None or False: probe and score here, one after the other."""


SCORE_MODES = ("search", "probe", "pipelined", "helper")
"""What a score job does at its checkpoint:
search     run the search strategy (the default);
probe      score the run's probe set only (what training does at a checkpoint);
pipelined  the probe set, then the search, taking the random-sample scores a helper job
           writes as they come (the last checkpoint of a pipelined training run);
helper     be that helper: score the search's random sample from its end until meeting it."""


@dataclass(frozen=True)
class ScoreJob(JobParams):
    """A scoring pass over the job's run; None fields take the run's [score] settings."""

    kind: ClassVar[str] = "score"
    archs: int | None = None
    checkpoint: int | None = None
    halving_min: int | None = None
    mode: str | None = None
    """One of SCORE_MODES; None: search."""
    strategy: str | None = None
    """A registered search strategy (core/search.py); None: smash."""
    budget: int | None = None
    """Score calls of the evolution and pareto strategies (None: archs)."""
    perturb: int | None = None
    chain: int | None = None

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in SCORE_MODES:
            raise JobError(f"score mode {self.mode!r}; allowed: {', '.join(SCORE_MODES)}")
        for name, low in (("archs", 1), ("budget", 1), ("checkpoint", 0), ("halving_min", 0),
                          ("perturb", 0), ("chain", 0)):
            _at_least(name, getattr(self, name), low)

    @property
    def pass_mode(self) -> str:
        return self.mode or "search"

    @classmethod
    def legacy(cls, params: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """Older jobs said what to do with four flags (probe, probe_only, shared, helper)."""
        if "mode" in values:
            return values
        if params.get("helper"):
            values["mode"] = "helper"
        elif params.get("probe_only"):
            values["mode"] = "probe"
        elif params.get("probe") or params.get("shared"):
            values["mode"] = "pipelined"
        return values


@dataclass(frozen=True)
class RetrainJob(JobParams):
    """Final training of the job's arch; None fields take the run's [retrain] settings."""

    kind: ClassVar[str] = "retrain"
    renamed: ClassVar[dict[str, str]] = {"steps_per_epoch": "max_steps_per_epoch"}
    epochs: int | None = None
    seed: int | None = None
    max_steps_per_epoch: int | None = None
    """Cap on the steps of each epoch (a short retrain); None or 0: whole passes."""

    def __post_init__(self) -> None:
        _at_least("epochs", self.epochs, 1)
        _at_least("max_steps_per_epoch", self.max_steps_per_epoch, 0)


@dataclass(frozen=True)
class CorrelateJob(JobParams):
    """A correlate study of the job's run (see engine/study.py)."""

    kind: ClassVar[str] = "correlate"
    renamed: ClassVar[dict[str, str]] = {"steps_per_epoch": "max_steps_per_epoch"}
    k: int = 24
    epochs: int = 2
    seeds: int = 1
    max_steps_per_epoch: int = 0
    """Cap on the steps of each retrain epoch; 0: whole passes."""
    predictors: tuple[str, ...] = DEFAULT_PREDICTORS
    include_partial: bool | None = None
    score_draws: int = 10
    """Each study arch's SMASH score is refined to this many draws before it is compared
    with the truth (0: as the search scored it)."""
    seed: int | None = None
    """The first retrain seed (None: 0); seeds seed, seed + 1, ..."""
    top_k: int | None = None
    """k of the top-k precision (None: a quarter of the archs)."""
    rungs: tuple[int, ...] | None = None
    """A truth ladder: the epochs after which the truth is also read, from the same
    retrains of `epochs` epochs (say 1, 2, 4, 8); None: after the last only."""

    def __post_init__(self) -> None:
        if self.rungs is not None and not all(1 <= r <= self.epochs for r in self.rungs):
            raise CorrelateError(f"truth ladder {list(self.rungs)}: each rung must be an epoch from 1 to "
                                 f"--epochs ({self.epochs})")
        for name, value, low in (("--k", self.k, 2), ("--epochs", self.epochs, 1), ("--seeds", self.seeds, 1),
                                 ("--max-steps-per-epoch", self.max_steps_per_epoch, 0)):
            if value < low:
                raise CorrelateError(f"{name} {value}: must be >= {low}")
        if not 0 <= self.score_draws <= MAX_SCORE_DRAWS:
            raise CorrelateError(f"--score-draws {self.score_draws}: must be 0 (as scored) to {MAX_SCORE_DRAWS}")
        check_predictors(self.predictors)

    @property
    def ladder(self) -> tuple[int, ...]:
        """The rungs in order, ending at `epochs`."""
        return tuple(sorted({*(self.rungs or ()), self.epochs}))

    @property
    def seed_list(self) -> list[int]:
        return [(self.seed or 0) + i for i in range(self.seeds)]


def check_predictors(names: tuple[str, ...] | list[str]) -> None:
    unknown = set(names) - set(PREDICTORS)
    if unknown or not names:
        bad = sorted(unknown)[0] if unknown else ""
        raise CorrelateError(f"unknown predictor {bad!r}; allowed: {', '.join(PREDICTORS)}")


PARAMS: dict[str, type[JobParams]] = {cls.kind: cls for cls in (TrainJob, ScoreJob, RetrainJob, CorrelateJob)}
JOB_KINDS = tuple(PARAMS)
"""Every kind of job the queue accepts: train, score, retrain, correlate."""
