"""Running one queued job: what each job kind does, with heartbeat, progress and cancel.

`python -m engine.jobs --workdir DIR --job ID` is what the worker starts, one process
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
from pathlib import Path
from typing import Any

from core.arch import Arch
from core.config import Config, load_config
from core.errors import Cancelled
from core.ids import run_id_for
from engine.exec.spec import ExecutorSpec, add_executor_args, spec_from_args
from store import Store, store_path

HEARTBEAT_S = 2.0
JOB_KINDS = ("train", "score", "retrain", "correlate")


class JobError(ValueError):
    """A job's parameters are unusable."""


class JobContext:
    """Progress, cancel checks and the heartbeat of one running job."""

    def __init__(self, store: Store, job_id: str):
        self.store, self.job_id = store, job_id
        self.progress, self.message = 0.0, "starting"
        self._cancel = False
        self.terminated = False
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


def job_config(params: dict[str, Any]) -> Config:
    """A train job's config: the snapshot taken when it was queued (older jobs: the file)."""
    if "config_data" in params:
        return Config.from_dict(params["config_data"])
    if "config" not in params:
        raise JobError("train job needs params.config (a TOML file)")
    return load_config(params["config"])


def run_job(workdir: Path, store: Store, job: dict[str, Any], ctx: JobContext,
            executor: ExecutorSpec | None = None) -> dict[str, Any]:
    """Do the work of `job`; every kind resumes from its checkpoints when run again.

    With a Ray `executor`, scoring shards and retrains run as Ray tasks and this
    process writes what they return."""
    kind, params = job["kind"], job.get("params") or {}
    spec = executor or ExecutorSpec()
    common = dict(show_progress=False, on_progress=ctx.on_progress, should_stop=ctx.should_stop)
    if kind == "train":
        from engine.scoring.run import score_run
        from engine.train.hypernet import train_hypernet

        cfg = job_config(params)
        run_id = params.get("run_id") or run_id_for(cfg)
        store.attach_run(job["job_id"], run_id)  # so the engine can mark the run if the job dies
        summary = train_hypernet(cfg, workdir, store=store, run_id=run_id, **common)
        n = int(params.get("score_archs", 0))
        if n:
            ctx.on_progress(0.0, f"scoring {n} architectures")
            summary["score"] = score_run(workdir, store, summary["run_id"], archs=n, executor=spec,
                                         **common)
        return summary
    if kind == "score":
        from engine.scoring.run import score_run

        if not job.get("run_id"):
            raise JobError("score job needs a run_id")
        return score_run(workdir, store, job["run_id"], archs=params.get("archs"),
                         checkpoint_step=params.get("checkpoint"), executor=spec,
                         halving_min=params.get("halving_min"), **common)
    if kind == "retrain":
        from engine.train.final import retrain_arch

        run = store.get_run(job.get("run_id") or "")
        if run is None:
            raise JobError(f"retrain job names unknown run {job.get('run_id')!r}")
        rec = store.arch(job["run_id"], job.get("arch_id") or "")
        if rec is None:
            raise JobError(f"retrain job names unknown arch {job.get('arch_id')!r}")
        cfg = Config.from_stored(run["config"])
        arch = Arch.from_dict(rec["arch"])
        opts = dict(run_id=job["run_id"], epochs=params.get("epochs"), seed=params.get("seed"),
                    step_cap=params.get("steps_per_epoch"), job_id=job["job_id"])
        if not spec.is_local:
            from engine.exec.ray import retrain_remote

            return retrain_remote(spec, cfg.to_dict(), arch, workdir, store, **opts,
                                  on_progress=ctx.on_progress, should_stop=ctx.should_stop)
        return retrain_arch(cfg, arch, workdir, store, **opts, **common)
    if kind == "correlate":
        from engine.study import run_study

        if not job.get("run_id"):
            raise JobError("correlate job needs a run_id")
        opts = {key: params[key] for key in ("k", "epochs", "seeds", "steps_per_epoch", "include_partial")
                if key in params}
        return run_study(workdir, store, job["run_id"], **opts,
                         predictors=tuple(params.get("predictors") or ("smash", "params", "flops")),
                         job_id=job["job_id"], **common)
    raise JobError(f"unknown job kind {kind!r}; allowed: {', '.join(JOB_KINDS)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.jobs")
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
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
