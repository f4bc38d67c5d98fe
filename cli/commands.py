"""What each `smash` command does: train, score, retrain, export, correlate, engine, queue,
dashboard and up, one function each taking the parsed arguments.

A command returns its summary (printed by cli/main.py as `key: value` lines or, with
--json, one JSON line) and raises a domain error for anything the user must fix.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

from cli import archref, model_card
from cli.dashboard import dashboard_command
from cli.dashboard import main as launch_dashboard
from cli.up import up
from core.config import Config, load_config
from core.jobs import CorrelateJob, RetrainJob, ScoreJob, TrainJob
from engine.exec.ray import retrain_remote
from engine.exec.spec import spec_from_args
from engine.export import check_out_path, export_arch
from engine.jobs.supervisor import run_until_done, serve
from engine.runtime import distributed
from engine.runtime.device import check_device
from engine.search import score_run
from engine.study import check_predictors, check_study, correlate
from engine.train.final import retrain_arch
from engine.train.hypernet import train_hypernet
from store import Store


class CLIError(ValueError):
    """A command-line argument names something that does not exist."""


def _store(args: argparse.Namespace, create: bool = False) -> Store:
    return archref.open_store(args.workdir, create=create)


def _run_id(store: Store, args: argparse.Namespace) -> str:
    return archref.run_id(store, getattr(args, "run", None), args.workdir)


def _run_config(store: Store, run_id: str) -> Config:
    return Config.from_stored(store.get_run(run_id)["config"])


def _print_progress(fraction: float, message: str) -> None:
    print(f"[{fraction:6.1%}] {message}", file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config(args.config)
    if args.steps:
        cfg = cfg.replace(train={"steps": args.steps})
    check_device(cfg.device)  # before the store exists
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    # Under torchrun only rank 0 writes the store; the other ranks never open it.
    store = _store(args, create=True) if distributed.is_main() else None
    return train_hypernet(cfg, Path(args.workdir), store=store, run_id=args.run,
                          show_progress=not args.quiet and distributed.is_main())


def cmd_score(args: argparse.Namespace) -> dict[str, Any]:
    spec = spec_from_args(args)  # a bad executor setting fails before any work
    store = _store(args)
    run_id = _run_id(store, args)
    return score_run(Path(args.workdir), store, run_id, archs=args.archs,
                     checkpoint_step=args.checkpoint, perturbations=args.perturb,
                     chain=args.chain, show_progress=not args.quiet, strategy=args.strategy,
                     budget=args.budget, executor=spec, halving_min=args.halving_min)


def cmd_retrain(args: argparse.Namespace) -> dict[str, Any]:
    spec = spec_from_args(args)
    store = _store(args)
    run_id = _run_id(store, args)
    cfg = _run_config(store, run_id)
    arch = archref.work_arch(store, run_id, args.arch)
    if not spec.is_local:
        return retrain_remote(spec, cfg.to_dict(), arch, Path(args.workdir), store, run_id=run_id,
                              epochs=args.epochs, seed=args.seed, step_cap=args.steps_per_epoch,
                              job_id=None, on_progress=None if args.quiet else _print_progress,
                              should_stop=None)
    return retrain_arch(cfg, arch, Path(args.workdir), store, run_id=run_id, epochs=args.epochs,
                        seed=args.seed, step_cap=args.steps_per_epoch, show_progress=not args.quiet)


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    store = _store(args)
    run_id = _run_id(store, args)
    arch = archref.work_arch(store, run_id, args.arch)
    retrain = model_card.latest_retrain(store, run_id, arch.id)
    model_path = Path(retrain["checkpoint"]) if retrain and args.format != "json" else None
    out = check_out_path(Path(args.out), Path(args.workdir), force=args.force)
    out = export_arch(arch, args.format, out, model_path)
    card = model_card.write_card(store, run_id, arch, out, args.format, retrain)
    return {"arch_id": arch.id, "format": args.format, "out": str(out), "card": str(card)}


def cmd_correlate(args: argparse.Namespace) -> dict[str, Any]:
    store = _store(args)
    run_id = _run_id(store, args)
    # Without an engine serving the workdir, an embedded one runs the retrains here.
    run_jobs = None if args.no_wait else partial(
        run_until_done, Path(args.workdir), store, slots=args.jobs,
        on_progress=None if args.quiet else _print_progress)
    summary = correlate(Path(args.workdir), store, run_id, k=args.k, epochs=args.epochs, seed=args.seed,
                        seeds=args.seeds, steps_per_epoch=args.steps_per_epoch,
                        predictors=tuple(args.predictors.split(",")),
                        include_partial=args.include_partial, top_k=args.top_k, score_draws=args.score_draws,
                        run_jobs=run_jobs)
    if not args.json and "metrics" in summary:
        print_study(summary["metrics"])
        summary = {k: v for k, v in summary.items() if k != "metrics"}
    return summary


def print_study(metrics: dict[str, Any]) -> None:
    """Each predictor's figures against the validation error, and the seed-to-seed ceiling."""
    print(f"\nPredictors vs retrained validation error over {metrics['n']} architectures "
          "(95% bootstrap intervals):")
    for name, table in metrics["predictors"].items():
        print(f"  {name}")
        for row in table:
            print(f"    {row['metric']:<18} {row['estimate']:+.3f}   "
                  f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]")
    ceiling = metrics.get("ceiling")
    if ceiling:
        lo, hi = ceiling["spearman_ci"]
        print(f"  seed-to-seed Spearman of the truth (ceiling) {ceiling['spearman']:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        if ceiling.get("of_mean"):
            print(f"  a perfect predictor against the seeds' mean: about {ceiling['of_mean']:+.3f}")
    if metrics.get("score_draws"):
        print(f"  SMASH scores refined to {metrics['score_draws']} draws for the study")


def cmd_engine(args: argparse.Namespace) -> dict[str, Any]:
    spec = spec_from_args(args)
    serve(Path(args.workdir), concurrency=args.jobs, poll_s=args.poll, stale_after_s=args.stale_after,
          executor=spec)
    return {"workdir": args.workdir, "stopped": True}


def queue_train(args: argparse.Namespace) -> str:
    cfg = load_config(args.config)  # fail now, not in the worker, and before the store exists
    check_device(cfg.device)
    store = _store(args, create=True)
    # The job trains this config as it is now, whatever happens to the file later.
    params = TrainJob(config=str(Path(args.config).resolve()), config_data=cfg.to_dict(),
                      score_archs=args.score_archs or None)
    return store.enqueue_job(TrainJob.kind, params.to_params())


def queue_score(args: argparse.Namespace) -> str:
    store = _store(args)
    run_id = _run_id(store, args)
    params = ScoreJob(archs=args.archs, halving_min=args.halving_min)
    return store.enqueue_job(ScoreJob.kind, params.to_params(), run_id=run_id)


def queue_correlate(args: argparse.Namespace) -> str:
    store = _store(args)
    run_id = _run_id(store, args)
    params = CorrelateJob(k=args.k, epochs=args.epochs, seeds=args.seeds, steps_per_epoch=args.steps_per_epoch,
                          predictors=tuple(args.predictors.split(",")), score_draws=args.score_draws)
    check_study(args.k, args.epochs, args.seeds, args.steps_per_epoch)
    check_predictors(params.predictors)
    return store.enqueue_job(CorrelateJob.kind, params.to_params(), run_id=run_id)


def queue_retrain(args: argparse.Namespace) -> str:
    store = _store(args)
    run_id = _run_id(store, args)
    arch = archref.work_arch(store, run_id, args.arch)
    if store.arch(run_id, arch.id) is None:
        raise CLIError(f"arch {arch.id} is not part of run {run_id}; score it first")
    params = RetrainJob(epochs=args.epochs or _run_config(store, run_id).retrain.epochs, seed=args.seed,
                        steps_per_epoch=args.steps_per_epoch or None)
    return store.enqueue_job(RetrainJob.kind, params.to_params(), run_id=run_id, arch_id=arch.id)


QUEUE = {"train": queue_train, "score": queue_score, "correlate": queue_correlate, "retrain": queue_retrain}
"""`smash queue KIND`: each kind checks its arguments now and queues one job."""


def cmd_queue(args: argparse.Namespace) -> dict[str, Any]:
    return {"job_id": QUEUE[args.kind](args), "kind": args.kind}


def cmd_dashboard(args: argparse.Namespace) -> dict[str, Any]:
    # Refuse an exposed address without a login before anything starts.
    dashboard_command(args.workdir, port=args.port, address=args.address, no_auth=args.no_auth)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
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
