"""Scoring and retraining as Ray work, for a cluster or a local Ray.

Scoring shards go to a pool of scorer actors, each holding the HyperNet checkpoint
(shipped once through Ray's object store) and the validation split, one actor call per
candidate; a retrain is one Ray task. Results come back to the calling process, which
alone writes the store: remote code never opens it.

What the cluster needs: the data set at the same path on every node (configs name
it), and, for retraining, the workdir on a shared file system (the retrain writes its
per-epoch checkpoints and final weights there, so a cancelled or lost task resumes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from core.arch import Arch
from core.config import Config
from core.control import Control
from core.errors import Cancelled
from core.executor import ExecutorError, ExecutorSpec
from core.jobs import RetrainJob
from engine.data.splits import load_data
from engine.exec.local import QueueSink
from engine.exec.raystart import ensure_ray
from engine.model import SmashModel
from engine.runtime import checkpoint as ckpt
from engine.runtime.device import pick_device
from engine.scoring.scorer import Scorer
from engine.train.final import retrain_arch
from store import BackgroundWriter, Store


def _task_threads(cpus: float) -> None:
    """Inside a Ray worker: torch threads = the CPUs Ray granted the task."""
    os.environ["SMASH_THREADS"] = str(max(1, int(cpus)))


# ------------------------------------------------------------------ code run on Ray workers

class _ScorerActorImpl:
    """One scorer on a Ray worker: the HyperNet checkpoint and validation split, loaded once."""

    def __init__(self, state: dict, cpus: float):
        _task_threads(cpus)  # before pick_device, which sets torch's threads from it
        cfg = Config.from_stored(state["config"])
        device = pick_device(cfg.device)
        model = SmashModel.from_checkpoint(state, device)
        self.scorer = Scorer.for_model(model, load_data(cfg.data, cfg.seed), device)

    def score(self, arch_json: str, images: int | None = None,
              first_draw: int = 0) -> tuple[str, float, float]:
        arch = Arch.from_json(arch_json)
        mean, std = self.scorer.score(arch, images, first_draw)
        return arch.id, mean, std


def _retrain_task_impl(cfg_dict: dict, arch_json: str, workdir: str, run_id: str, params: dict,
                       job_id: str | None, events: Any, cpus: float) -> dict[str, Any]:
    """A retrain on a Ray worker; its store writes travel back through `events`."""
    _task_threads(cpus)
    sink = QueueSink(events)
    control = Control(on_progress=lambda f, m: events.put(("progress", f, m)))
    return retrain_arch(Config.from_dict(cfg_dict), Arch.from_json(arch_json), Path(workdir), None,
                        RetrainJob.from_params(params), control, run_id=run_id, job_id=job_id, sink=sink)


# ------------------------------------------------------------------ the calling side

class RayScoring:
    """Scores on a pool of Ray actors; `score_many` yields results as they finish
    (see contract.ScoringExecutor)."""

    parallel = True

    def __init__(self, spec: ExecutorSpec, checkpoint: Path):
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
        from ray.util import ActorPool  # third-party; loaded with Ray, on first use

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


def apply_event(event: tuple, writer: BackgroundWriter, store: Store,
                on_progress: Callable[[float, str], None] | None) -> None:
    """Carry out one event a QueueSink sent: rows to the writer, a retrain record (after
    the rows before it) to the store, progress to the caller."""
    if event[0] == "rows":
        writer.put(event[1], event[2])
    elif event[0] == "upsert_retrain":
        writer.flush()
        store.upsert_retrain(event[1])
    elif event[0] == "progress" and on_progress is not None:
        on_progress(event[1], event[2])


def retrain_remote(spec: ExecutorSpec, cfg: Config, arch: Arch, workdir: Path, store: Store, job: RetrainJob,
                   control: Control, *, run_id: str, job_id: str | None) -> dict[str, Any]:
    """Run one retrain as a Ray task; write what it reports into `store` as it comes."""
    from ray.util.queue import Queue  # third-party; loaded with Ray, on first use

    ray = ensure_ray(spec)
    events = Queue()
    task = ray.remote(_retrain_task_impl).options(num_cpus=spec.cpus_per_task,
                                                  num_gpus=spec.gpus_per_task, max_retries=0)
    ref = task.remote(cfg.to_dict(), arch.to_json(), str(Path(workdir).resolve()), run_id, job.to_params(),
                      job_id, events, spec.cpus_per_task)
    with BackgroundWriter(store) as writer:
        try:
            return _follow(ray, ref, events, writer, store, control.on_progress, control.should_stop)
        finally:
            ray.kill(events.actor)


def _follow(ray: Any, ref: Any, events: Any, writer: BackgroundWriter, store: Store,
            on_progress: Callable[[float, str], None] | None,
            should_stop: Callable[[], bool] | None) -> dict[str, Any]:
    """Drain the task's events until it ends (or is stopped); its result, or its error."""
    while True:
        ready, _ = ray.wait([ref], timeout=0.5)
        for event in _drain(events):
            apply_event(event, writer, store, on_progress)
        if ready:
            break
        if should_stop is not None and should_stop():
            ray.cancel(ref, force=True)
            raise Cancelled("retrain cancelled; it resumes from its last epoch checkpoint")
    try:
        result = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        raise exc.as_instanceof_cause() from None
    for event in _drain(events):
        apply_event(event, writer, store, on_progress)
    return result


def _drain(events: Any) -> Iterable[tuple]:
    from ray.util.queue import Empty  # third-party; loaded with Ray, on first use

    while True:
        try:
            yield events.get_nowait()
        except Empty:
            return
