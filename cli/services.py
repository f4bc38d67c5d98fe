"""The `smash` commands that start services or queue work: engine, queue, dashboard and up.

None of them runs a model, so none loads torch: `smash up`'s own process and the engine's
supervisor stay small all day, and only a job's process (engine/jobs/runner.py) loads what
training and scoring need. Each returns its summary like the commands in cli/commands.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli import archref
from cli.dashboard import dashboard_command
from cli.dashboard import main as launch_dashboard
from cli.up import up
from core.config import load_config
from core.errors import NotFound, make_dir
from core.executor import spec_from_args
from core.jobs import CorrelateJob, RetrainJob, ScoreJob, TrainJob
from engine.jobs.supervisor import serve
from engine.runtime.gpus import check_device_named


def cmd_engine(args: argparse.Namespace) -> dict[str, Any]:
    spec = spec_from_args(args)
    serve(Path(args.workdir), concurrency=args.jobs, poll_s=args.poll, stale_after_s=args.stale_after,
          executor=spec)
    return {"workdir": args.workdir, "stopped": True}


def queue_train(args: argparse.Namespace) -> str:
    cfg = load_config(args.config)  # fail now, not in the worker, and before the store exists
    check_device_named(cfg.device)
    make_dir(args.workdir)  # a first run may start the workdir
    store = archref.open_store(args.workdir, create=True)
    # The job trains this config as it is now, whatever happens to the file later.
    params = TrainJob(config=str(Path(args.config).resolve()), config_data=cfg.to_dict(),
                      score_archs=args.score_archs or None)
    return store.enqueue_job(TrainJob.kind, params.to_params())


def queue_score(args: argparse.Namespace) -> str:
    store = archref.open_store(args.workdir)
    run_id = archref.run_id(store, args.run, args.workdir)
    params = ScoreJob(archs=args.archs, halving_min=args.halving_min)
    return store.enqueue_job(ScoreJob.kind, params.to_params(), run_id=run_id)


def queue_correlate(args: argparse.Namespace) -> str:
    store = archref.open_store(args.workdir)
    run_id = archref.run_id(store, args.run, args.workdir)
    params = archref.correlate_job(args)
    return store.enqueue_job(CorrelateJob.kind, params.to_params(), run_id=run_id)


def queue_retrain(args: argparse.Namespace) -> str:
    store = archref.open_store(args.workdir)
    run_id = archref.run_id(store, args.run, args.workdir)
    arch = archref.work_arch(store, run_id, args.arch)
    if store.arch(run_id, arch.id) is None:
        raise NotFound(f"arch {arch.id} is not part of run {run_id}; score it first")
    params = RetrainJob(epochs=args.epochs or archref.run_config(store, run_id).retrain.epochs, seed=args.seed,
                        max_steps_per_epoch=args.max_steps_per_epoch or None)
    return store.enqueue_job(RetrainJob.kind, params.to_params(), run_id=run_id, arch_id=arch.id)


QUEUE = {"train": queue_train, "score": queue_score, "correlate": queue_correlate, "retrain": queue_retrain}
"""`smash queue KIND`: each kind checks its arguments now and queues one job."""


def cmd_queue(args: argparse.Namespace) -> dict[str, Any]:
    return {"job_id": QUEUE[args.kind](args), "kind": args.kind}


def cmd_dashboard(args: argparse.Namespace) -> dict[str, Any]:
    # Refuse an exposed address without a login before anything starts.
    dashboard_command(args.workdir, port=args.port, address=args.address, no_auth=args.no_auth)
    make_dir(args.workdir)
    argv = ["--workdir", args.workdir]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    if args.address is not None:
        argv += ["--address", args.address]
    if args.no_auth:
        argv.append("--no-auth")
    return {"exit_code": launch_dashboard(argv)}


def cmd_up(args: argparse.Namespace) -> dict[str, Any]:
    return up(Path(args.workdir), Path(args.config), port=args.port, address=args.address,
              score_archs=args.archs, jobs=args.jobs, no_auth=args.no_auth)
