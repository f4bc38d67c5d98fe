"""The `smash` command line: every subcommand, its flags and the function that runs it.

One small function per command group adds its subcommands. Each names the function that
runs it as a `Command` (module and name), loaded only when that command runs: building
the parser imports nothing but core, so `smash --help`, `smash jobs` and the other
listings never load torch, plotting or the engine (tests/test_layers.py holds it).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shtab

from core import argtypes as at
from core.board import SORT_KEYS
from core.executor import add_executor_args
from core.exports import FORMATS, GRAPH_FORMATS
from core.jobs import PREDICTORS, CorrelateJob
from core.search import STAGES, STRATEGIES
from core.status import STATUSES


@dataclass(frozen=True)
class Command:
    """The function that runs a subcommand, by module and name, imported when it runs;
    `route`, when given, names another (module, name) for the arguments that need it (so
    `smash top` loads scikit-learn only for --sort predicted and --recommend)."""

    module: str
    name: str
    route: Callable[[argparse.Namespace], tuple[str, str] | None] | None = None

    def __call__(self, args: argparse.Namespace) -> Any:
        module, name = (self.route(args) if self.route else None) or (self.module, self.name)
        return getattr(importlib.import_module(module), name)(args)


def _deciding(args: argparse.Namespace) -> tuple[str, str] | None:
    return ("cli.decide", "cmd_top") if args.sort == "predicted" or args.recommend else None


def run(name: str) -> Command:
    return Command("cli.commands", name)


Subparsers = argparse._SubParsersAction  # what add_subparsers returns; argparse names no public type
PREDICTORS_HELP = f"comma list of {', '.join(PREDICTORS)} (default {','.join(CorrelateJob.predictors)})"
DEFAULT_PREDICTORS = ",".join(CorrelateJob.predictors)
BOARD_RANGES = ("params", "flops", "score")
"""`smash top`'s range filters (LO:HI), as the Leaderboard's sidebar has them."""
SCORE_DRAWS_HELP = (f"refine each study arch's SMASH score to this many draws before comparing "
                    f"(default {CorrelateJob.score_draws}; 0: as the search scored it)")


def common(sp: argparse.ArgumentParser) -> None:
    """Flags every command takes."""
    sp.add_argument("--workdir", default="./runs", help="checkpoints, logs and the store (default ./runs)")
    sp.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")


def add_train(sub: Subparsers) -> None:
    t = sub.add_parser("train", help="train a SMASH HyperNet (resumes if the run exists)")
    common(t)
    t.add_argument("--config", required=True, help="TOML config file")
    t.add_argument("--run", type=at.run_id, help="run id (default: derived from the config)")
    t.add_argument("--steps", type=at.int_in(0), default=0, help="override [train].steps")
    t.set_defaults(func=run("cmd_train"))


def add_score(sub: Subparsers) -> None:
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
    s.set_defaults(func=run("cmd_score"))


def add_retrain_export(sub: Subparsers) -> None:
    r = sub.add_parser("retrain", help="train one architecture with free weights")
    common(r)
    r.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    r.add_argument("--arch", default="best", help="arch id, 'best', or an arch JSON file")
    r.add_argument("--epochs", type=at.int_in(1, 100_000), default=None, help="override [retrain].epochs")
    r.add_argument("--seed", type=at.seed, default=None)
    r.add_argument("--max-steps-per-epoch", "--steps-per-epoch", dest="max_steps_per_epoch", type=at.int_in(1),
                   default=None, help="cap each epoch (a short retrain)")
    add_executor_args(r)
    r.set_defaults(func=run("cmd_retrain"))

    e = sub.add_parser("export", help="export an architecture or its trained model")
    common(e)
    e.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    e.add_argument("--arch", default="best", help="arch id, 'best', or an arch JSON file")
    e.add_argument("--format", choices=FORMATS, default="json")
    e.add_argument("--out", required=True, help="output file (not inside the store or checkpoints)")
    e.add_argument("--force", action="store_true", help="replace --out if it exists")
    e.set_defaults(func=run("cmd_export"))


def add_correlate(sub: Subparsers) -> None:
    c = sub.add_parser("correlate", help="retrain K archs spread over the score range; rank correlations")
    common(c)
    c.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    c.add_argument("--k", type=at.int_in(2, 10_000), default=CorrelateJob.k,
                   help=f"architectures to retrain (default {CorrelateJob.k})")
    c.add_argument("--epochs", type=at.int_list(1, 100_000), default=(CorrelateJob.epochs,),
                   help=f"epochs of each retrain (default {CorrelateJob.epochs}); a list such as 1,2,4,8 is a "
                        "truth ladder: one retrain of the largest, the truth read after each")
    c.add_argument("--seed", type=at.seed, default=0)
    c.add_argument("--max-steps-per-epoch", "--steps-per-epoch", dest="max_steps_per_epoch", type=at.int_in(0),
                   default=CorrelateJob.max_steps_per_epoch, help="cap each retrain epoch (0: full passes)")
    c.add_argument("--seeds", type=at.int_in(1, 100), default=CorrelateJob.seeds,
                   help="retrain seeds per arch; 2 or more also measure the truth's seed-to-seed ceiling")
    c.add_argument("--predictors", default=DEFAULT_PREDICTORS, help=PREDICTORS_HELP)
    c.add_argument("--score-draws", type=at.int_in(0, 1000), default=CorrelateJob.score_draws,
                   help=SCORE_DRAWS_HELP)
    c.add_argument("--include-partial", action="store_true",
                   help="also pick archs with partial (halving-stopped) scores")
    c.add_argument("--top-k", type=at.int_in(1, 10_000), default=None, help="k of top-k precision (default K/4)")
    c.add_argument("--jobs", type=at.int_in(1, 256), default=1, help="retrains at once when no engine is serving")
    c.add_argument("--no-wait", action="store_true", help="queue the retrains and return")
    c.set_defaults(func=run("cmd_correlate"))


def add_engine(sub: Subparsers) -> None:
    g = sub.add_parser("engine", help="serve queued jobs (training, scoring, retraining)")
    common(g)
    g.add_argument("--jobs", type=at.int_in(1, 256), default=1, help="jobs run at once (default 1)")
    g.add_argument("--poll", type=at.float_in(0, 3600, open_low=True), default=1.0, help="seconds between store polls")
    g.add_argument("--stale-after", type=at.float_in(1, 86_400), default=60.0,
                   help="fail a running job whose heartbeat is older than this (seconds)")
    add_executor_args(g)
    g.set_defaults(func=Command("cli.services", "cmd_engine"))


def add_queue(sub: Subparsers) -> None:
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
    qk.add_argument("--k", type=at.int_in(2, 10_000), default=CorrelateJob.k)
    qk.add_argument("--epochs", type=at.int_list(1, 100_000), default=(CorrelateJob.epochs,),
                    help="epochs of each retrain, or a truth ladder such as 1,2,4,8")
    qk.add_argument("--seeds", type=at.int_in(1, 100), default=CorrelateJob.seeds)
    qk.add_argument("--max-steps-per-epoch", "--steps-per-epoch", dest="max_steps_per_epoch", type=at.int_in(0),
                    default=CorrelateJob.max_steps_per_epoch)
    qk.add_argument("--predictors", default=DEFAULT_PREDICTORS)
    qk.add_argument("--score-draws", type=at.int_in(0, 1000), default=CorrelateJob.score_draws,
                    help=SCORE_DRAWS_HELP)
    qr = qs.add_parser("retrain", help="queue final training of an architecture")
    common(qr)
    qr.add_argument("--run", type=at.run_id)
    qr.add_argument("--arch", default="best")
    qr.add_argument("--epochs", type=at.int_in(1, 100_000), default=None)
    qr.add_argument("--seed", type=at.seed, default=0)
    qr.add_argument("--max-steps-per-epoch", "--steps-per-epoch", dest="max_steps_per_epoch", type=at.int_in(0),
                    default=0, help="cap each epoch (a short retrain)")
    q.set_defaults(func=Command("cli.services", "cmd_queue"))


def add_services(sub: Subparsers) -> None:
    d = sub.add_parser("dashboard", help="start the Streamlit dashboard")
    common(d)
    d.add_argument("--port", type=at.port, default=None)
    d.add_argument("--address", default=None, help="bind address (default 127.0.0.1)")
    d.add_argument("--no-auth", action="store_true",
                   help="serve a non-loopback address without a login (protect it another way)")
    d.set_defaults(func=Command("cli.services", "cmd_dashboard"))

    u = sub.add_parser("up", help="start the engine and the dashboard, and queue a run")
    common(u)
    u.add_argument("--config", default="configs/demo.toml")
    u.add_argument("--archs", type=at.int_in(0, 10**7), default=200, help="architectures to score after training")
    u.add_argument("--port", type=at.port, default=None)
    u.add_argument("--address", default=None, help="dashboard bind address (default 127.0.0.1)")
    u.add_argument("--no-auth", action="store_true",
                   help="serve a non-loopback address without a login (protect it another way)")
    u.add_argument("--jobs", type=at.int_in(1, 256), default=None,
                   help="engine job slots (default: 2 on 2+ cores, scoring each checkpoint beside "
                        "training; 1: train, then score, in one job)")
    u.set_defaults(func=Command("cli.services", "cmd_up"))


def add_form_args(parser: argparse.ArgumentParser) -> None:
    """--json and --csv, exclusive: the two machine-readable forms of a listing's table."""
    forms = parser.add_mutually_exclusive_group()
    forms.add_argument("--json", action="store_true", help="print one JSON document")
    forms.add_argument("--csv", action="store_true", help="print the table as CSV")


def listing_common(parser: argparse.ArgumentParser, run: bool = False) -> None:
    parser.add_argument("--workdir", default="./runs", help="the work directory (default ./runs)")
    if run:
        parser.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    add_form_args(parser)


def add_listings(sub: Subparsers) -> None:
    """runs, top, jobs and cancel: what the dashboard lists (cli/listing.py)."""
    r = sub.add_parser("runs", help="list the runs: status, step, dataset, best score")
    listing_common(r)
    r.set_defaults(func=Command("cli.listing", "cmd_runs"))

    t = sub.add_parser("top", help="the leaderboard: sorted, filtered and paged as on the dashboard")
    listing_common(t, run=True)
    t.add_argument("--sort", choices=[*SORT_KEYS, "predicted"], default="score_mean",
                   help="a board column, or predicted: the ranker learned from the run's retrains, where "
                        "it ranks them better than the SMASH score")
    t.add_argument("--desc", action="store_true", help="descending order")
    for name in BOARD_RANGES:
        t.add_argument(f"--{name}", metavar="LO:HI", help=f"keep archs whose {name} is in the range")
    t.add_argument("--stage", action="append", choices=STAGES, help="search stage (repeatable)")
    t.add_argument("--limit", type=at.int_in(1, 100_000), default=25, help="rows per page (default 25)")
    t.add_argument("--page", type=at.int_in(1), default=1, help="page number, from 1")
    t.add_argument("--recommend", action="store_true",
                   help="what to train: the best-scored, cheapest by params and by FLOPs of the archs "
                        "equivalent to the leader (and the learned ranker's pick where offered)")
    t.set_defaults(func=Command("cli.listing", "cmd_top", route=_deciding))

    j = sub.add_parser("jobs", help="list the engine's jobs, newest first")
    listing_common(j)
    j.add_argument("--status", action="append", choices=STATUSES, help="only this status (repeatable)")
    j.add_argument("--limit", type=at.int_in(1, 100_000), default=50, help="at most this many jobs (default 50)")
    j.set_defaults(func=Command("cli.listing", "cmd_jobs"))

    c = sub.add_parser("cancel", help="cancel a queued or running job")
    listing_common(c)
    c.add_argument("job", help="job id (see `smash jobs`)")
    c.set_defaults(func=Command("cli.listing", "cmd_cancel"))


def add_arch_views(sub: Subparsers) -> None:
    """show (cli/arch_view.py) and graph (cli/drawing.py): one architecture as text or a drawing."""
    s = sub.add_parser("show", help="one architecture: blocks, layers, sizes, score, true errors")
    s.add_argument("arch", help="arch id, 'best', or an arch JSON file")
    listing_common(s, run=True)
    s.set_defaults(func=Command("cli.arch_view", "cmd_show"))

    g = sub.add_parser("graph", help="draw an architecture's memory-bank graph to a file")
    g.add_argument("arch", help="arch id, 'best', or an arch JSON file")
    g.add_argument("--out", required=True, help="output file: .svg .png .pdf .html .dot .graphml")
    g.add_argument("--format", choices=GRAPH_FORMATS, help="default: from the suffix of --out")
    g.add_argument("--workdir", default="./runs", help="the work directory (default ./runs)")
    g.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    g.add_argument("--json", action="store_true", help="print what was written as JSON")
    g.add_argument("--force", action="store_true", help="replace --out if it exists")
    g.set_defaults(func=Command("cli.drawing", "cmd_graph"))


def build_parser() -> argparse.ArgumentParser:
    p = at.OneLineParser(prog="smash", description="One-shot architecture search with SMASH.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (add_train, add_score, add_retrain_export, add_correlate, add_engine, add_queue, add_services):
        add(sub)
    add_listings(sub)
    add_arch_views(sub)
    c = sub.add_parser("completion", help="print a shell completion script (see the README)")
    c.add_argument("shell", choices=shtab.SUPPORTED_SHELLS)
    c.set_defaults(func=Command("cli.completion", "cmd_completion"))
    return p
