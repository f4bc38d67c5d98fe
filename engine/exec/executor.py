"""Where scoring and retraining compute runs: in this process, or as Ray tasks.

The local executor is the default. `RayExecutor` sends the work to a Ray cluster (or
a local Ray): scoring shards go to a pool of scorer actors, each holding the HyperNet
checkpoint (shipped once through Ray's object store) and the validation split, one
actor call per candidate; a retrain is one Ray task. Results come back to the calling
process, which alone writes the store: remote code never opens it.

What the cluster needs: the data set at the same path on every node (configs name
it), and, for retraining, the workdir on a shared file system (the retrain writes its
per-epoch checkpoints and final weights there, so a cancelled or lost task resumes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import argtypes as at
from core.arch import Arch

EXECUTORS = ("local", "ray")
LOCAL_RAY_HOST = "127.0.0.1"


class ExecutorError(ValueError):
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


# ------------------------------------------------------------------ Ray plumbing

def _ray():
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a declared dependency
        raise ExecutorError("the Ray executor needs the `ray` package: pip install 'ray>=2.40'") from exc
    return ray


def ensure_ray(spec: ExecutorSpec) -> Any:
    """Connect to the cluster at spec.address, or start a local Ray, once per process."""
    ray = _ray()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                      configure_logging=False)
        try:
            if spec.address:
                ray.init(address=spec.address, **kwargs)
            else:
                # A Ray started here listens on loopback only: its servers run code unauthenticated.
                ray.init(num_cpus=spec.local_cpus, _node_ip_address=LOCAL_RAY_HOST, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = spec.address or "a local Ray"
            raise ExecutorError(f"cannot start or reach {where}: {str(exc).splitlines()[0]}") from exc
    return ray


def _task_threads(cpus: float) -> None:
    """Inside a Ray worker: torch threads = the CPUs Ray granted the task."""
    os.environ["SMASH_THREADS"] = str(max(1, int(cpus)))


class _ScorerActorImpl:
    """One scorer on a Ray worker: the HyperNet checkpoint and validation split, loaded once."""

    def __init__(self, state: dict, cpus: float):
        _task_threads(cpus)
        from core.config import Config
        from engine.data.splits import load_data
        from engine.model import model_from_state
        from engine.runtime.device import pick_device
        from engine.scoring.scorer import Scorer

        cfg = Config.from_stored(state["config"])
        device = pick_device(cfg.device)
        model = model_from_state(state, device)
        self.scorer = Scorer.for_model(model, load_data(cfg.data, cfg.seed), device)

    def score(self, arch_json: str, images: int | None = None,
              first_draw: int = 0) -> tuple[str, float, float]:
        arch = Arch.from_json(arch_json)
        mean, std = self.scorer.score(arch, images, first_draw)
        return arch.id, mean, std


def _retrain_task_impl(cfg_dict: dict, arch_json: str, workdir: str, run_id: str, epochs: int | None,
                       seed: int | None, step_cap: int | None, job_id: str | None, events: Any,
                       cpus: float) -> dict[str, Any]:
    """A retrain on a Ray worker; its store writes travel back through `events`."""
    _task_threads(cpus)
    from core.config import Config
    from engine.train.final import retrain_arch

    sink = QueueSink(events)
    return retrain_arch(Config.from_dict(cfg_dict), Arch.from_json(arch_json), Path(workdir), None,
                        run_id=run_id, epochs=epochs, seed=seed, step_cap=step_cap, job_id=job_id,
                        show_progress=False, sink=sink,
                        on_progress=lambda f, m: events.put(("progress", f, m)))


class QueueSink:
    """A retrain's store writes, sent as events to the process that owns the store."""

    def __init__(self, events: Any):
        self.events = events

    def upsert_retrain(self, rec: dict) -> None:
        self.events.put(("upsert_retrain", rec))

    def put(self, table: str, rows: list[dict]) -> None:
        self.events.put(("rows", table, rows))

    def flush(self) -> None:
        pass


# ------------------------------------------------------------------ executors

class LocalScoring:
    """Scores in this process, one arch after another."""

    parallel = False

    def __init__(self, scorer: Any):
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


class RayScoring:
    """Scores on a pool of Ray actors; `score_many` yields results as they finish."""

    parallel = True

    def __init__(self, spec: ExecutorSpec, checkpoint: Path):
        from engine.runtime import checkpoint as ckpt

        ray = self.ray = ensure_ray(spec)
        state = ckpt.load(checkpoint)
        state.pop("optim", None)  # the scorers need weights only
        state_ref = ray.put(state)
        n = spec.actors or self.default_actors(ray.cluster_resources(), spec)
        actor_cls = ray.remote(_ScorerActorImpl).options(num_cpus=spec.cpus_per_task,
                                                         num_gpus=spec.gpus_per_task)
        self.actors = [actor_cls.remote(state_ref, spec.cpus_per_task) for _ in range(n)]
        self._next = 0

    @staticmethod
    def default_actors(resources: dict[str, float], spec: ExecutorSpec) -> int:
        """As many scorer actors as the cluster can place at once (CPUs, and GPUs if asked)."""
        n = int(resources.get("CPU", 1) // spec.cpus_per_task)
        if spec.gpus_per_task > 0:
            n = min(n, int(resources.get("GPU", 0) // spec.gpus_per_task))
            if n < 1:
                raise ExecutorError(f"the Ray cluster has {resources.get('GPU', 0):g} GPUs; "
                                    f"--ray-gpus {spec.gpus_per_task:g} per scorer cannot be placed")
        return max(1, n)

    def score(self, arch: Arch, images: int | None = None, first_draw: int = 0) -> tuple[float, float]:
        actor = self.actors[self._next % len(self.actors)]
        self._next += 1
        _, mean, std = self.ray.get(actor.score.remote(arch.to_json(), images, first_draw))
        return mean, std

    def score_many(self, archs: list[Arch], images: int | None = None,
                   first_draw: int = 0) -> Iterator[tuple[Arch, float, float]]:
        from ray.util import ActorPool

        by_id = {a.id: a for a in archs}
        pool = ActorPool(self.actors)
        for arch_id, mean, std in pool.map_unordered(
                lambda actor, js: actor.score.remote(js, images, first_draw),
                [a.to_json() for a in archs]):
            yield by_id[arch_id], mean, std

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []


def scoring(spec: ExecutorSpec, scorer_factory: Callable[[], Any], checkpoint: Path) -> Any:
    """The scoring executor for `spec`; the local one builds its Scorer with `scorer_factory`."""
    if spec.is_local:
        return LocalScoring(scorer_factory())
    return RayScoring(spec, checkpoint)


def retrain_remote(spec: ExecutorSpec, cfg_dict: dict, arch: Arch, workdir: Path, store: Any, *,
                   run_id: str, epochs: int | None, seed: int | None, step_cap: int | None,
                   job_id: str | None, on_progress: Callable[[float, str], None] | None,
                   should_stop: Callable[[], bool] | None) -> dict[str, Any]:
    """Run one retrain as a Ray task; write what it reports into `store` as it comes."""
    from ray.util.queue import Queue

    from core.errors import Cancelled
    from store import BackgroundWriter

    ray = ensure_ray(spec)
    events = Queue()
    task = ray.remote(_retrain_task_impl).options(num_cpus=spec.cpus_per_task,
                                                  num_gpus=spec.gpus_per_task, max_retries=0)
    ref = task.remote(cfg_dict, arch.to_json(), str(Path(workdir).resolve()), run_id, epochs, seed,
                      step_cap, job_id, events, spec.cpus_per_task)

    with BackgroundWriter(store) as writer:
        def drain() -> None:
            for event in _drain(events):
                if event[0] == "rows":
                    writer.put(event[1], event[2])
                elif event[0] == "upsert_retrain":
                    writer.flush()
                    store.upsert_retrain(event[1])
                elif event[0] == "progress" and on_progress is not None:
                    on_progress(event[1], event[2])

        try:
            while True:
                ready, _ = ray.wait([ref], timeout=0.5)
                drain()
                if ready:
                    break
                if should_stop is not None and should_stop():
                    ray.cancel(ref, force=True)
                    raise Cancelled("retrain cancelled; it resumes from its last epoch checkpoint")
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                raise exc.as_instanceof_cause() from None
            drain()
        finally:
            ray.kill(events.actor)
    return result


def _drain(events: Any) -> Iterable[tuple]:
    from ray.util.queue import Empty

    while True:
        try:
            yield events.get_nowait()
        except Empty:
            return
