"""`smash runs`, `smash top`, `smash jobs`, `smash cancel`: what the dashboard lists, in a shell.

Each command reads through the store's public methods (the same calls the dashboard's
pages make, so `smash top` pages exactly as the Leaderboard does) and hands a `Listing`
to `tables.emit`, which prints a table, one JSON document (--json) or CSV (--csv).
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from cli import archref as lookup
from cli.parser import BOARD_RANGES
from cli.tables import Listing, cell, emit, form_of, records
from core.board import Page, equivalence_sentence, interval_text, mark, marks_legend
from core.errors import BadRequest
from core.metric import LABELS, run_metric
from core.status import ACTIVE
from store import Store

RUN_COLUMNS = ["run_id", "name", "status", "step", "steps_total", "dataset", "scored", "best_score",
               "best_arch", "created_at"]
JOB_COLUMNS = ["job_id", "kind", "status", "progress", "run_id", "arch_id", "heartbeat_age_s",
               "created_at", "message", "error"]
BOARD_TABLE = ["rank", "mark", "arch_id", "score_mean", "score_std", "interval", "draws", "val_images",
               "params", "flops", "depth", "n_layers", "stage", "checkpoint_step", "val_error", "test_error"]


def parse_range(name: str, text: str | None) -> tuple[float | None, float | None] | None:
    """`LO:HI`, `LO:` or `:HI` (inclusive) as the store's (lo, hi); None for no filter."""
    if text is None:
        return None
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            raise ValueError
        bounds = tuple(float(x) if x.strip() else None for x in (lo, hi))
    except ValueError:
        raise BadRequest(f"--{name} {text!r}: give a range LO:HI (either end may be empty)") from None
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        raise BadRequest(f"--{name} {text!r}: the low end is above the high end")
    return bounds


def runs_listing(store: Store) -> Listing:
    """Every run with its progress and its best SMASH score so far (in the table, each in
    its own run's score metric)."""
    frame = store.runs()
    best = [store.leaderboard(rid, limit=1) for rid in frame["run_id"]]
    metrics = [run_metric(json.loads(c) if isinstance(c, str) else c) for c in frame["config"]]
    frame["scored"] = [store.score_count(rid) for rid in frame["run_id"]]
    frame["best_score"] = [b["score_mean"].iloc[0] if len(b) else None for b in best]
    frame["best_arch"] = [b["arch_id"].iloc[0] if len(b) else None for b in best]
    frame = frame[RUN_COLUMNS + ["seed", "code_version", "updated_at"]]
    table = frame[RUN_COLUMNS].assign(best_score=[
        cell("best_score", v, m) for v, m in zip(frame["best_score"], metrics, strict=True)])
    return Listing(doc={"runs": records(frame)}, frame=frame[RUN_COLUMNS], table=table,
                   empty="no runs yet; start one with `smash train --config FILE`")


def board_query(args: argparse.Namespace) -> dict:
    """The leaderboard's filters from the command line, as `Store.leaderboard` takes them."""
    filters = {name: parse_range(name, getattr(args, name)) for name in BOARD_RANGES}
    return {**filters, "stages": args.stage or None}


def board_table(board: pd.DataFrame, metric: str = "error") -> pd.DataFrame:
    """The leaderboard as the terminal shows it: the tie and partial flags as one mark, the
    interval (in the run's score metric) as one column. Columns a store without them lacks
    are left out."""
    shown = board.copy()
    shown["mark"] = [mark(v) for v in shown["verdict"]] if "verdict" in shown else ""
    if "score_lo" in shown:
        shown["interval"] = [interval_text(lo, hi, metric)
                             for lo, hi in zip(shown["score_lo"], shown["score_hi"], strict=True)]
    return shown[[c for c in BOARD_TABLE if c in shown]]


def top_listing(store: Store, run: str, args: argparse.Namespace) -> Listing:
    """One page of the leaderboard, as the dashboard's Leaderboard page asks for it."""
    if args.limit < 1 or args.page < 1:
        raise BadRequest("--limit and --page must be at least 1")
    filters = board_query(args)
    total = store.leaderboard_count(run, **filters)
    page = Page(total, args.limit, args.page)
    if page.number > page.pages:
        raise BadRequest(f"--page {args.page} is past the last page ({page.pages}) of {total} architectures")
    board = store.leaderboard(run, sort=args.sort, descending=args.desc, limit=args.limit,
                              offset=page.offset, **filters)
    order = "descending" if args.desc else "ascending"
    counts, delta = store.verdict_counts(run), store.score_delta(run)
    doc = {"run_id": run, "sort": args.sort, "descending": args.desc, "filters": filters,
           "total": total, "page": args.page, "pages": page.pages, "limit": args.limit, "offset": page.offset,
           "delta": delta, "verdicts": counts, "rows": records(board)}
    header = [f"run {run} · {total:,} architectures match · {page.span(len(board))} · by {args.sort} {order}"]
    metric = store.score_metric(run)
    if metric != "error":  # an error score is the percentage it always was; say what else is
        header.append(f"scores: {LABELS[metric]} (nats, lower is better)")
    table = board_table(board, metric)
    if len(board):
        header.append(equivalence_sentence(counts, delta, metric))
    if len(board) and "mark" in table and table["mark"].any():
        header.append(marks_legend(set(table["mark"]) - {""}))
    return Listing(doc=doc, frame=board, header=header, table=table, metric=metric,
                   empty="no scored architectures match; run `smash score` or widen the filters")


def jobs_listing(store: Store, args: argparse.Namespace) -> Listing:
    if args.limit < 1:
        raise BadRequest("--limit must be at least 1")
    frame = store.jobs(limit=args.limit, status=args.status or None)
    doc = records(frame)
    for job in doc:  # params and result are JSON text in the frame; decode them for scripts
        for field in ("params", "result"):
            job[field] = json.loads(job[field]) if job.get(field) else job.get(field)
    return Listing(doc={"jobs": doc}, frame=frame[JOB_COLUMNS], empty="no jobs")


def cancel_listing(store: Store, job_id: str) -> Listing:
    """Cancel a queued job at once, or ask a running job's worker to stop it."""
    before = lookup.job(store, job_id)["status"]
    if before not in ACTIVE:
        raise BadRequest(f"job {job_id} already finished ({before}); nothing to cancel")
    status = store.request_cancel(job_id)
    note = "cancelled" if status == "cancelled" else "cancel requested; its worker stops it at the next beat"
    row = {"job_id": job_id, "previous_status": before, "status": status, "cancel_requested": True}
    return Listing(doc=row, frame=pd.DataFrame([row]), header=[f"job {job_id}: {note}"])


def cmd_runs(args: argparse.Namespace) -> None:
    emit(runs_listing(lookup.open_store(args.workdir)), form_of(args))


def cmd_top(args: argparse.Namespace) -> None:
    store = lookup.open_store(args.workdir)
    emit(top_listing(store, lookup.run_id(store, args.run), args), form_of(args))


def cmd_jobs(args: argparse.Namespace) -> None:
    emit(jobs_listing(lookup.open_store(args.workdir), args), form_of(args))


def cmd_cancel(args: argparse.Namespace) -> None:
    emit(cancel_listing(lookup.open_store(args.workdir), args.job), form_of(args))
