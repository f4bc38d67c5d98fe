"""Running one queued job: what each job kind does, with heartbeat, progress and cancel.

`python -m engine.jobs.runner --workdir DIR --job ID` is what the engine starts, one process
(group) per job. A heartbeat thread writes to the store every few seconds whatever the
job is doing, so liveness is judged by the heartbeat's age, never by a PID.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.arch import Arch
from core.config import Config, load_config
from core.control import Control
from core.errors import Cancelled
from core.executor import ExecutorSpec, add_executor_args, spec_from_args
from core.ids import run_id_for
from core.jobs import JOB_KINDS, CorrelateJob, JobError, RetrainJob, ScoreJob, TrainJob
from engine.exec.pick import retrain
from engine.search import score_run
from engine.study import run_study
from engine.train.hypernet import train_hypernet
from store import Store, store_path

HEARTBEAT_S = 2.0


class JobContext:
    """Progress, cancel checks and the heartbeat of one running job."""

    def __init__(self, store: Store, job_id: str):
        self.store, self.job_id = store, job_id
        self.progress, self.message = 0.0, "starting"
        self._cancel = False
        self.terminated = False
        self.then: list[Callable[[], dict[str, Any]]] = []
        """Work to do once the job is recorded done (each returns fields to add to its result)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def __enter__(self) -> JobContext:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.store.heartbeat(self.job_id, progress=self.progress, message=self.message)
                self._cancel = self._cancel or self.store.cancel_requested(self.job_id)
            except Exception as exc:  # a busy store must not kill the job; the next beat retries
                print(f"heartbeat failed: {exc}", file=sys.stderr, flush=True)

    def on_progress(self, fraction: float, message: str) -> None:
        self.progress, self.message = float(fraction), message
        print(f"[{fraction:6.1%}] {message}", flush=True)

    def terminate(self, *_: object) -> None:
        """SIGTERM from the engine: checkpoint and exit, leaving the job to be resumed."""
        self.terminated = True

    def should_stop(self) -> bool:
        return self._cancel or self.terminated

    @property
    def control(self) -> Control:
        """Progress to the heartbeat, stop on a cancel or the engine's SIGTERM; no bars."""
        return Control(on_progress=self.on_progress, should_stop=self.should_stop)


def job_config(params: TrainJob) -> Config:
    """A train job's config: the snapshot taken when it was queued (older jobs: the file)."""
    if params.config_data is not None:
        return Config.from_dict(params.config_data)
    if params.config is None:
        raise JobError("train job needs params.config (a TOML file)")
    return load_config(params.config)


def _train(workdir: Path, store: Store, job: dict[str, Any], ctx: JobContext,
           spec: ExecutorSpec) -> dict[str, Any]:
    params = TrainJob.from_params(job.get("params"))
    cfg = job_config(params)
    run_id = params.run_id or run_id_for(cfg)
    store.attach_run(job["job_id"], run_id)  # so the engine can mark the run if the job dies
    n = int(params.score_archs or 0)
    if params.pipeline:
        return _train_pipelined(workdir, store, cfg, run_id, n, ctx)
    summary = train_hypernet(cfg, workdir, store=store, run_id=run_id, control=ctx.control)
    if n:
        ctx.on_progress(0.0, f"scoring {n} architectures")
        summary["score"] = score_run(workdir, store, summary["run_id"], ScoreJob(archs=n), ctx.control,
                                     executor=spec)
    return summary


def _train_pipelined(workdir: Path, store: Store, cfg: Config, run_id: str, archs: int,
                     ctx: JobContext) -> dict[str, Any]:
    """Train here; every checkpoint's scoring becomes a job for another engine slot.

    Each intermediate checkpoint gets a probe job; the last gets a pipelined score job
    (probe set, then `archs` architectures: the very pass the sequential path runs, so the
    same scores) and a helper job that scores its random sample from the other end.
    The last one is queued once this job is recorded done (JobContext.then), so it starts
    with the cores training leaves; a train job killed before that queues it when it runs
    again (training then resumes at its end: `smash up` once more)."""

    def hand_off(step: int, last: bool) -> None:
        if not last and cfg.score.probe:
            store.enqueue_job(ScoreJob.kind, ScoreJob(checkpoint=step, mode="probe").to_params(), run_id=run_id)

    summary = train_hypernet(cfg, workdir, store=store, run_id=run_id, on_checkpoint=hand_off,
                             control=ctx.control)
    if archs or cfg.score.probe:
        ctx.then.append(lambda: _queue_final(store, run_id, summary["steps"], archs))
    return summary


def _queue_final(store: Store, run_id: str, step: int, archs: int) -> dict[str, Any]:
    """The last checkpoint's score job (probe set, then `archs`) and its helper: two
    processes on the random sample, the largest stage."""
    final = ScoreJob(archs=archs, checkpoint=step, mode="pipelined") if archs else \
        ScoreJob(checkpoint=step, mode="probe")
    out = {"score_job": store.enqueue_job(ScoreJob.kind, final.to_params(), run_id=run_id)}
    if archs:
        helper = ScoreJob(archs=archs, checkpoint=step, mode="helper")
        out["helper_job"] = store.enqueue_job(ScoreJob.kind, helper.to_params(), run_id=run_id)
    return out


def _score(workdir: Path, store: Store, job: dict[str, Any], ctx: JobContext,
           spec: ExecutorSpec) -> dict[str, Any]:
    params = ScoreJob.from_params(job.get("params"))
    if not job.get("run_id"):
        raise JobError("score job needs a run_id")
    return score_run(workdir, store, job["run_id"], params, ctx.control, executor=spec)


def _retrain(workdir: Path, store: Store, job: dict[str, Any], ctx: JobContext,
             spec: ExecutorSpec) -> dict[str, Any]:
    params = RetrainJob.from_params(job.get("params"))
    run = store.get_run(job.get("run_id") or "")
    if run is None:
        raise JobError(f"retrain job names unknown run {job.get('run_id')!r}")
    rec = store.arch(job["run_id"], job.get("arch_id") or "")
    if rec is None:
        raise JobError(f"retrain job names unknown arch {job.get('arch_id')!r}")
    return retrain(spec, Config.from_stored(run["config"]), Arch.from_dict(rec["arch"]), workdir, store, params,
                   ctx.control, run_id=job["run_id"], job_id=job["job_id"])


def _correlate(workdir: Path, store: Store, job: dict[str, Any], ctx: JobContext,
               spec: ExecutorSpec) -> dict[str, Any]:
    params = CorrelateJob.from_params(job.get("params"))
    if not job.get("run_id"):
        raise JobError("correlate job needs a run_id")
    return run_study(workdir, store, job["run_id"], params, ctx.control, job_id=job["job_id"])


Work = Callable[[Path, Store, dict[str, Any], JobContext, ExecutorSpec], dict[str, Any]]
WORK: dict[str, Work] = {TrainJob.kind: _train, ScoreJob.kind: _score, RetrainJob.kind: _retrain,
                         CorrelateJob.kind: _correlate}
"""What a job of each kind does, by kind (every kind in core.jobs.JOB_KINDS)."""


def run_job(workdir: Path, store: Store, job: dict[str, Any], ctx: JobContext,
            executor: ExecutorSpec | None = None) -> dict[str, Any]:
    """Do the work of `job`; every kind resumes from its checkpoints when run again.

    With a Ray `executor`, scoring shards and retrains run as Ray tasks and this
    process writes what they return."""
    work = WORK.get(job["kind"])
    if work is None:
        raise JobError(f"unknown job kind {job['kind']!r}; allowed: {', '.join(JOB_KINDS)}")
    return work(workdir, store, job, ctx, executor or ExecutorSpec())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.jobs.runner")
    p.add_argument("--workdir", required=True)
    p.add_argument("--job", required=True)
    add_executor_args(p)
    args = p.parse_args(argv)
    os.umask(0o077)  # checkpoints and models are the user's alone
    workdir = Path(args.workdir)
    store = Store(store_path(workdir))
    job = store.get_job(args.job)
    if job is None:
        print(f"no job {args.job}", file=sys.stderr)
        return 2
    print(f"job {job['job_id']} ({job['kind']}) started at {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    with JobContext(store, job["job_id"]) as ctx:
        signal.signal(signal.SIGTERM, ctx.terminate)
        try:
            result = run_job(workdir, store, job, ctx, spec_from_args(args))
        except Cancelled as exc:
            if ctx.terminated:
                print(f"stopped by the engine ({exc}); the job resumes on the next start", flush=True)
                return 0
            store.finish_job(job["job_id"], "cancelled", error=str(exc))
            print(f"cancelled: {exc}", flush=True)
            return 0
        except Exception as exc:
            traceback.print_exc()
            store.finish_job(job["job_id"], "failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
            return 1
    store.finish_job(job["job_id"], "done", result=result)
    follow_up(store, job["job_id"], ctx, result)
    print("done", flush=True)
    return 0


def follow_up(store: Store, job_id: str, ctx: JobContext, result: dict[str, Any]) -> None:
    """Run what the job left for after its end (queueing the jobs that continue its work),
    and add what that returns to its result. After, not before: the engine gives a job it
    launches the cores of every job that is no longer running, so the scoring queued at the
    end of training gets the cores training leaves."""
    extra: dict[str, Any] = {}
    for then in ctx.then:
        extra.update(then())
    if extra:
        store.finish_job(job_id, "done", result={**result, **extra})


if __name__ == "__main__":
    sys.exit(main())
