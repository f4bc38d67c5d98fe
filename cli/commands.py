"""What the `smash` commands that compute do: train, score, retrain, export and correlate,
one function each taking the parsed arguments. They load the engine (and torch); the
commands that only queue, serve or list live in cli/services.py and cli/listing.py.

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
from core.config import load_config
from core.control import Control
from core.errors import make_dir
from core.executor import spec_from_args
from core.jobs import RetrainJob, ScoreJob
from core.study import ladder_text
from engine.exec.pick import retrain
from engine.export import check_out_path, export_arch
from engine.jobs.supervisor import run_until_done
from engine.runtime import distributed
from engine.runtime.device import check_device
from engine.search import score_run
from engine.study import correlate
from engine.train.hypernet import train_hypernet


def _print_progress(fraction: float, message: str) -> None:
    print(f"[{fraction:6.1%}] {message}", file=sys.stderr, flush=True)


def _control(args: argparse.Namespace, bars: bool = True) -> Control:
    """Bars on the terminal (or progress lines where work has no bar), unless --quiet."""
    if args.quiet:
        return Control()
    return Control(show_progress=True) if bars else Control(on_progress=_print_progress)


def _run(args: argparse.Namespace):
    store = archref.open_store(args.workdir)
    return store, archref.run_id(store, args.run, args.workdir)


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config(args.config)
    if args.steps:
        cfg = cfg.replace(train={"steps": args.steps})
    check_device(cfg.device)  # before the store exists
    make_dir(args.workdir)
    # Under torchrun only rank 0 writes the store; the other ranks never open it.
    main = distributed.is_main()
    store = archref.open_store(args.workdir, create=True) if main else None
    control = _control(args) if main else Control()
    return train_hypernet(cfg, Path(args.workdir), store=store, run_id=args.run, control=control)


def cmd_score(args: argparse.Namespace) -> dict[str, Any]:
    spec = spec_from_args(args)  # a bad executor setting fails before any work
    store, run_id = _run(args)
    job = ScoreJob(archs=args.archs, checkpoint=args.checkpoint, halving_min=args.halving_min,
                   strategy=args.strategy, budget=args.budget, perturb=args.perturb, chain=args.chain)
    return score_run(Path(args.workdir), store, run_id, job, _control(args), executor=spec)


def cmd_retrain(args: argparse.Namespace) -> dict[str, Any]:
    spec = spec_from_args(args)
    store, run_id = _run(args)
    arch = archref.work_arch(store, run_id, args.arch)
    job = RetrainJob(epochs=args.epochs, seed=args.seed, max_steps_per_epoch=args.max_steps_per_epoch)
    return retrain(spec, archref.run_config(store, run_id), arch, Path(args.workdir), store, job,
                   _control(args, bars=spec.is_local), run_id=run_id)


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    store, run_id = _run(args)
    arch = archref.work_arch(store, run_id, args.arch)
    retrain_rec = model_card.latest_retrain(store, run_id, arch.id)
    model_path = Path(retrain_rec["checkpoint"]) if retrain_rec and args.format != "json" else None
    out = check_out_path(Path(args.out), Path(args.workdir), force=args.force)
    check_out_path(model_card.card_path(out), Path(args.workdir), force=args.force)  # before anything is written
    out = export_arch(arch, args.format, out, model_path)
    card = model_card.write_card(store, run_id, arch, out, args.format, retrain_rec)
    return {"arch_id": arch.id, "format": args.format, "out": str(out), "card": str(card)}


def cmd_correlate(args: argparse.Namespace) -> dict[str, Any]:
    job = archref.correlate_job(args)  # bad settings fail before the store is touched
    store, run_id = _run(args)
    # Without an engine serving the workdir, an embedded one runs the retrains here.
    run_jobs = None if args.no_wait else partial(
        run_until_done, Path(args.workdir), store, slots=args.jobs,
        on_progress=None if args.quiet else _print_progress)
    summary = correlate(Path(args.workdir), store, run_id, job, _control(args, bars=False), run_jobs=run_jobs)
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
    if metrics.get("rungs"):
        print("\nThe truth ladder: Spearman with the validation error after each budget [95% interval]")
        print(ladder_text(metrics["rungs"]))
