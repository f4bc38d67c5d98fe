"""The `smash` command: train, score, retrain and export, one thin entry point each."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from cli import arch_view, completion, listing, model_card
from core import argtypes as at
from core.arch import Arch, ArchError, check_arch, read_arch_file
from core.config import Config, ConfigError, load_config
from core.errors import BadRequest, Cancelled
from core.ids import RunIdError
from core.search import STRATEGIES
from engine.data.source import DataError
from engine.exec.spec import ExecutorError, add_executor_args, spec_from_args
from engine.export import FORMATS, ExportError, check_out_path, export_arch
from engine.jobs.runner import JobError
from engine.jobs.supervisor import EngineError
from engine.runtime import distributed
from engine.runtime.checkpoint import CheckpointError
from engine.runtime.device import check_device
from engine.runtime.workdir import RunBusyError
from engine.scoring.scorer import ScoreError
from engine.study import CorrelateError, check_predictors, check_study
from store import Store, StoreError, store_path

USER_ERRORS = (ConfigError, DataError, ArchError, StoreError, CheckpointError, ExportError,
               CorrelateError, ExecutorError, BadRequest, ScoreError, EngineError, JobError,
               RunIdError, RunBusyError)


class CLIError(ValueError):
    """A command-line argument names something that does not exist."""


def _store(args: argparse.Namespace, create: bool = False) -> Store:
    """The workdir's store; only commands that start work may create it."""
    path = store_path(Path(args.workdir))
    if not create and not path.exists():
        raise CLIError(f"no runs in {args.workdir} (no store there yet); start one with "
                       "`smash train --config FILE`")
    return Store(path)


def _run_id(store: Store, args: argparse.Namespace) -> str:
    if getattr(args, "run", None):
        if store.get_run(args.run) is None:
            raise CLIError(f"no run {args.run!r} in {args.workdir}")
        return args.run
    rid = store.latest_run_id()
    if rid is None:
        raise CLIError(f"no runs in {args.workdir}; start one with `smash train --config FILE`")
    return rid


def _run_config(store: Store, run_id: str) -> Config:
    return Config.from_stored(store.get_run(run_id)["config"])


def _resolve_arch(store: Store, run_id: str, ref: str) -> Arch:
    """`best` (top SMASH score), an arch id of the run, or a path to an arch JSON file
    (which must lie inside the run's search space)."""
    if ref == "best":
        top = store.leaderboard(run_id, limit=1)
        if top.empty:
            raise CLIError(f"run {run_id} has no scored architectures; run `smash score` first")
        ref = str(top.iloc[0]["arch_id"])
    rec = store.arch(run_id, ref)
    if rec is not None:
        return Arch.from_dict(rec["arch"])
    path = Path(ref)
    if path.suffix == ".json" and path.is_file():
        try:
            arch = Arch.from_json(read_arch_file(path))
            check_arch(arch, _run_config(store, run_id).space)
        except ArchError as exc:
            raise ArchError(f"{path}: {exc}" if not str(exc).startswith(str(path)) else str(exc)) from None
        return arch
    raise CLIError(f"no architecture {ref!r} in run {run_id} (and no such JSON file)")


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from engine.train.hypernet import train_hypernet

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
    from engine.scoring.run import score_run

    spec = spec_from_args(args)  # a bad executor setting fails before any work
    store = _store(args)
    run_id = _run_id(store, args)
    return score_run(Path(args.workdir), store, run_id, archs=args.archs,
                     checkpoint_step=args.checkpoint, perturbations=args.perturb,
                     chain=args.chain, show_progress=not args.quiet, strategy=args.strategy,
                     budget=args.budget, executor=spec, halving_min=args.halving_min)


def cmd_retrain(args: argparse.Namespace) -> dict[str, Any]:
    from engine.train.final import retrain_arch

    spec = spec_from_args(args)
    store = _store(args)
    run_id = _run_id(store, args)
    cfg = _run_config(store, run_id)
    arch = _resolve_arch(store, run_id, args.arch)
    if not spec.is_local:
        from engine.exec.ray import retrain_remote

        return retrain_remote(spec, cfg.to_dict(), arch, Path(args.workdir), store, run_id=run_id,
                              epochs=args.epochs, seed=args.seed, step_cap=args.steps_per_epoch,
                              job_id=None, on_progress=None if args.quiet else _print_progress,
                              should_stop=None)
    return retrain_arch(cfg, arch, Path(args.workdir), store, run_id=run_id, epochs=args.epochs,
                        seed=args.seed, step_cap=args.steps_per_epoch, show_progress=not args.quiet)


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    store = _store(args)
    run_id = _run_id(store, args)
    arch = _resolve_arch(store, run_id, args.arch)
    retrain = model_card.latest_retrain(store, run_id, arch.id)
    model_path = Path(retrain["checkpoint"]) if retrain and args.format != "json" else None
    out = check_out_path(Path(args.out), Path(args.workdir), force=args.force)
    out = export_arch(arch, args.format, out, model_path)
    card = model_card.write_card(store, run_id, arch, out, args.format, retrain)
    return {"arch_id": arch.id, "format": args.format, "out": str(out), "card": str(card)}


def cmd_correlate(args: argparse.Namespace) -> dict[str, Any]:
    from engine.study import correlate

    store = _store(args)
    run_id = _run_id(store, args)
    summary = correlate(Path(args.workdir), store, run_id, k=args.k, epochs=args.epochs, seed=args.seed,
                        seeds=args.seeds, steps_per_epoch=args.steps_per_epoch,
                        predictors=tuple(args.predictors.split(",")),
                        include_partial=args.include_partial,
                        top_k=args.top_k, jobs=args.jobs, wait=not args.no_wait,
                        on_progress=None if args.quiet else _print_progress)
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


def _print_progress(fraction: float, message: str) -> None:
    print(f"[{fraction:6.1%}] {message}", file=sys.stderr, flush=True)


def cmd_engine(args: argparse.Namespace) -> dict[str, Any]:
    from engine.jobs.supervisor import serve

    spec = spec_from_args(args)
    serve(Path(args.workdir), concurrency=args.jobs, poll_s=args.poll, stale_after_s=args.stale_after,
          executor=spec)
    return {"workdir": args.workdir, "stopped": True}


def cmd_queue(args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "train":
        cfg = load_config(args.config)  # fail now, not in the worker, and before the store exists
        check_device(cfg.device)
    store = _store(args, create=args.kind == "train")
    if args.kind == "train":
        # The job trains this config as it is now, whatever happens to the file later.
        params = {"config": str(Path(args.config).resolve()), "config_data": cfg.to_dict()}
        if args.score_archs:
            params["score_archs"] = args.score_archs
        job_id = store.enqueue_job("train", params)
    elif args.kind == "score":
        run_id = _run_id(store, args)
        params = {"archs": args.archs} if args.archs else {}
        if args.halving_min is not None:
            params["halving_min"] = args.halving_min
        job_id = store.enqueue_job("score", params, run_id=run_id)
    elif args.kind == "correlate":
        run_id = _run_id(store, args)
        params = {"k": args.k, "epochs": args.epochs, "seeds": args.seeds,
                  "steps_per_epoch": args.steps_per_epoch, "predictors": args.predictors.split(",")}
        check_study(args.k, args.epochs, args.seeds, args.steps_per_epoch)
        check_predictors(params["predictors"])
        job_id = store.enqueue_job("correlate", params, run_id=run_id)
    else:
        run_id = _run_id(store, args)
        arch = _resolve_arch(store, run_id, args.arch)
        if store.arch(run_id, arch.id) is None:
            raise CLIError(f"arch {arch.id} is not part of run {run_id}; score it first")
        params = {"epochs": args.epochs or _run_config(store, run_id).retrain.epochs, "seed": args.seed}
        if args.steps_per_epoch:
            params["steps_per_epoch"] = args.steps_per_epoch
        job_id = store.enqueue_job("retrain", params, run_id=run_id, arch_id=arch.id)
    return {"job_id": job_id, "kind": args.kind}


def cmd_dashboard(args: argparse.Namespace) -> dict[str, Any]:
    from cli.dashboard import LaunchError, dashboard_command
    from cli.dashboard import main as launch

    try:  # refuse an exposed address without a login before anything starts
        dashboard_command(args.workdir, port=args.port, address=args.address, no_auth=args.no_auth)
    except LaunchError as exc:
        raise CLIError(str(exc)) from None
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    argv = ["--workdir", args.workdir]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    if args.address is not None:
        argv += ["--address", args.address]
    if args.no_auth:
        argv.append("--no-auth")
    return {"exit_code": launch(argv)}


def cmd_up(args: argparse.Namespace) -> dict[str, Any]:
    from cli.dashboard import LaunchError
    from cli.up import up

    try:
        return up(Path(args.workdir), Path(args.config), port=args.port, address=args.address,
                  score_archs=args.archs, jobs=args.jobs, no_auth=args.no_auth)
    except LaunchError as exc:
        raise CLIError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = at.OneLineParser(prog="smash", description="One-shot architecture search with SMASH.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--workdir", default="./runs", help="checkpoints, logs and the store (default ./runs)")
        sp.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
        sp.add_argument("--quiet", action="store_true", help="no progress bars")

    t = sub.add_parser("train", help="train a SMASH HyperNet (resumes if the run exists)")
    common(t)
    t.add_argument("--config", required=True, help="TOML config file")
    t.add_argument("--run", type=at.run_id, help="run id (default: derived from the config)")
    t.add_argument("--steps", type=at.int_in(0), default=0, help="override [train].steps")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("score", help="score sampled architectures with generated weights")
    common(s)
    s.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    s.add_argument("--archs", type=at.int_in(1, 10**7), default=None, help="random architectures to score")
    s.add_argument("--perturb", type=at.int_in(0, 10**6), default=None, help="perturbations of the best")
    s.add_argument("--chain", type=at.int_in(0, 10**6), default=None, help="greedy chain steps")
    s.add_argument("--checkpoint", type=at.int_in(0), default=None, help="checkpoint step (default: the latest)")
    s.add_argument("--strategy", choices=sorted(STRATEGIES), default="smash",
                   help="smash (random, perturb, chain), evolution, or pareto (score against params)")
    s.add_argument("--budget", type=at.int_in(1, 10**7), default=None, help="score calls for evolution/pareto (default --archs)")
    s.add_argument("--halving-min", type=at.int_in(0), default=None,
                   help="successive halving: score every random arch on this many validation images "
                        "first, the best third on 3x more, ... (overrides [score].halving_min; 0: off)")
    add_executor_args(s)
    s.set_defaults(func=cmd_score)

    r = sub.add_parser("retrain", help="train one architecture with free weights")
    common(r)
    r.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    r.add_argument("--arch", default="best", help="arch id, 'best', or an arch JSON file")
    r.add_argument("--epochs", type=at.int_in(1, 100_000), default=None, help="override [retrain].epochs")
    r.add_argument("--seed", type=at.seed, default=None)
    r.add_argument("--steps-per-epoch", type=at.int_in(1), default=None, help="cap each epoch (a short retrain)")
    add_executor_args(r)
    r.set_defaults(func=cmd_retrain)

    e = sub.add_parser("export", help="export an architecture or its trained model")
    common(e)
    e.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    e.add_argument("--arch", default="best", help="arch id, 'best', or an arch JSON file")
    e.add_argument("--format", choices=FORMATS, default="json")
    e.add_argument("--out", required=True, help="output file (not inside the store or checkpoints)")
    e.add_argument("--force", action="store_true", help="replace --out if it exists")
    e.set_defaults(func=cmd_export)

    c = sub.add_parser("correlate", help="retrain K archs spread over the score range; rank correlations")
    common(c)
    c.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    c.add_argument("--k", type=at.int_in(2, 10_000), default=24, help="architectures to retrain (default 24)")
    c.add_argument("--epochs", type=at.int_in(1, 100_000), default=2, help="epochs of each short retrain (default 2)")
    c.add_argument("--seed", type=at.seed, default=0)
    c.add_argument("--steps-per-epoch", type=at.int_in(0), default=0, help="cap each retrain epoch (0: full passes)")
    c.add_argument("--seeds", type=at.int_in(1, 100), default=1,
                   help="retrain seeds per arch; 2 or more also measure the truth's seed-to-seed ceiling")
    c.add_argument("--predictors", default="smash,params,flops",
                   help="comma list of smash, params, flops, naswot (default smash,params,flops)")
    c.add_argument("--include-partial", action="store_true",
                   help="also pick archs with partial (halving-stopped) scores")
    c.add_argument("--top-k", type=at.int_in(1, 10_000), default=None, help="k of top-k precision (default K/4)")
    c.add_argument("--jobs", type=at.int_in(1, 256), default=1, help="retrains at once when no engine is serving")
    c.add_argument("--no-wait", action="store_true", help="queue the retrains and return")
    c.set_defaults(func=cmd_correlate)

    g = sub.add_parser("engine", help="serve queued jobs (training, scoring, retraining)")
    common(g)
    g.add_argument("--jobs", type=at.int_in(1, 256), default=1, help="jobs run at once (default 1)")
    g.add_argument("--poll", type=at.float_in(0, 3600, open_low=True), default=1.0, help="seconds between store polls")
    g.add_argument("--stale-after", type=at.float_in(1, 86_400), default=60.0,
                   help="fail a running job whose heartbeat is older than this (seconds)")
    add_executor_args(g)
    g.set_defaults(func=cmd_engine)

    q = sub.add_parser("queue", help="queue a job for the engine")
    qs = q.add_subparsers(dest="kind", required=True)
    qt = qs.add_parser("train", help="queue a HyperNet training run")
    common(qt)
    qt.add_argument("--config", required=True)
    qt.add_argument("--score-archs", type=at.int_in(0, 10**7), default=0, help="score this many archs when training ends")
    qc = qs.add_parser("score", help="queue a scoring pass")
    common(qc)
    qc.add_argument("--run", type=at.run_id)
    qc.add_argument("--archs", type=at.int_in(1, 10**7), default=None)
    qc.add_argument("--halving-min", type=at.int_in(0), default=None,
                    help="successive halving from this many validation images (0: off)")
    qk = qs.add_parser("correlate", help="queue a correlation study (run by the engine)")
    common(qk)
    qk.add_argument("--run", type=at.run_id)
    qk.add_argument("--k", type=at.int_in(2, 10_000), default=24)
    qk.add_argument("--epochs", type=at.int_in(1, 100_000), default=2)
    qk.add_argument("--seeds", type=at.int_in(1, 100), default=1)
    qk.add_argument("--steps-per-epoch", type=at.int_in(0), default=0)
    qk.add_argument("--predictors", default="smash,params,flops")
    qr = qs.add_parser("retrain", help="queue final training of an architecture")
    common(qr)
    qr.add_argument("--run", type=at.run_id)
    qr.add_argument("--arch", default="best")
    qr.add_argument("--epochs", type=at.int_in(1, 100_000), default=None)
    qr.add_argument("--seed", type=at.seed, default=0)
    qr.add_argument("--steps-per-epoch", type=at.int_in(0), default=0, help="cap each epoch (a short retrain)")
    q.set_defaults(func=cmd_queue)

    d = sub.add_parser("dashboard", help="start the Streamlit dashboard")
    common(d)
    d.add_argument("--port", type=at.port, default=None)
    d.add_argument("--address", default=None, help="bind address (default 127.0.0.1)")
    d.add_argument("--no-auth", action="store_true",
                   help="serve a non-loopback address without a login (protect it another way)")
    d.set_defaults(func=cmd_dashboard)

    u = sub.add_parser("up", help="start the engine and the dashboard, and queue a run")
    common(u)
    u.add_argument("--config", default="configs/demo.toml")
    u.add_argument("--archs", type=at.int_in(0, 10**7), default=200, help="architectures to score after training")
    u.add_argument("--port", type=at.port, default=None)
    u.add_argument("--address", default=None, help="dashboard bind address (default 127.0.0.1)")
    u.add_argument("--no-auth", action="store_true",
                   help="serve a non-loopback address without a login (protect it another way)")
    u.add_argument("--jobs", type=at.int_in(1, 256), default=1)
    u.set_defaults(func=cmd_up)

    listing.add_commands(sub)  # runs, top, jobs, cancel
    arch_view.add_commands(sub)  # show, graph
    completion.add_command(sub, p)
    return p


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # stores, checkpoints and logs are the user's alone
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a bad argument (one line already printed), or --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        summary = args.func(args)
    except (*USER_ERRORS, CLIError) as exc:
        print(f"smash {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Cancelled as exc:
        print(f"smash {args.command}: cancelled: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"smash {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    if summary is None:  # the command printed its own output (the listing commands)
        return 0
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        for k, v in summary.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
