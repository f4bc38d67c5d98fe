"""Which executor runs the compute, as a value: the --executor options and their checks.

Kept apart from the executors themselves so the command line, the job runner and the
supervisor can name and pass an executor without importing Ray or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import argtypes as at
from core.errors import BadRequest

EXECUTORS = ("local", "ray")


class ExecutorError(BadRequest):
    """An executor setting is unusable (unknown name, Ray missing or unreachable)."""


@dataclass(frozen=True)
class ExecutorSpec:
    """How to run compute: `local`, or `ray` at `address` (None: start a local Ray)."""

    kind: str = "local"
    address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    actors: int = 0  # scorer actors; 0: as many as the cluster's CPUs allow
    local_cpus: int | None = None  # CPUs of a Ray started here (None: all)

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ExecutorError(f"unknown executor {self.kind!r}; allowed: {', '.join(EXECUTORS)}")
        if self.cpus_per_task <= 0:
            raise ExecutorError(f"cpus per task must be > 0, got {self.cpus_per_task}")
        if self.gpus_per_task < 0:
            raise ExecutorError(f"gpus per task must be >= 0, got {self.gpus_per_task}")

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def cli_args(self) -> list[str]:
        """The same spec as command-line options (for job processes the engine starts)."""
        if self.is_local:
            return []
        args = ["--executor", "ray", "--ray-cpus", str(self.cpus_per_task),
                "--ray-gpus", str(self.gpus_per_task)]
        if self.address:
            args += ["--ray-address", self.address]
        if self.actors:
            args += ["--ray-actors", str(self.actors)]
        return args


def add_executor_args(parser: Any) -> None:
    """--executor and the Ray options, shared by every command that runs compute."""
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="where scoring and retraining run: this process (local) or Ray")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster address ('auto' or host:port; default: start a local Ray)")
    parser.add_argument("--ray-cpus", type=at.float_in(0, 4096, open_low=True), default=1.0, help="CPUs per Ray task (default 1)")
    parser.add_argument("--ray-gpus", type=at.float_in(0, 1024), default=0.0,
                        help="GPUs per Ray task, e.g. 1 or 0.25 (default 0)")
    parser.add_argument("--ray-actors", type=at.int_in(0, 100_000), default=0,
                        help="scorer actors (default: as many as the cluster's CPUs allow)")


def spec_from_args(args: Any) -> ExecutorSpec:
    return ExecutorSpec(kind=getattr(args, "executor", "local") or "local",
                        address=getattr(args, "ray_address", None),
                        cpus_per_task=float(getattr(args, "ray_cpus", 1.0)),
                        gpus_per_task=float(getattr(args, "ray_gpus", 0.0)),
                        actors=int(getattr(args, "ray_actors", 0) or 0))
