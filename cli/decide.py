"""`smash top --recommend` and `smash top --sort predicted`: the leaderboard's decisions in a shell.

The recommendation is the Leaderboard page's: from the archs equivalent to the leader
within the run's delta, the best-scored and the cheapest by params and by FLOPs, and the
pick of the ranker learned from the run's retrains where it ranks them better than the
SMASH score (core/board.py, core/ranker.py). Apart from cli/listing.py because the ranker
loads scikit-learn, which a plain listing should not wait for.
"""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from cli import archref as lookup
from cli.listing import board_query
from cli.tables import Listing, emit, form_of, records
from core.board import Page, equivalence_sentence, recommend
from core.errors import BadRequest
from core.ranker import learned_pick, rank_board
from store import Store

PREDICTED_COLUMNS = ["rank", "arch_id", "predicted", "score_mean", "params", "flops", "val_error"]


def recommendation(store: Store, run: str) -> dict[str, Any]:
    """What to train and why, with the board's verdicts and the learned ranker's standing."""
    fit, ranked = rank_board(store.board_features(run))
    picks = recommend(store.equivalent_set(run), learned_pick(fit, ranked))
    counts, delta = store.verdict_counts(run), store.score_delta(run)
    return {"run_id": run, "delta": delta, "verdicts": counts,
            "sentence": equivalence_sentence(counts, delta, store.score_metric(run)),
            "recommended": picks, "learned_ranker": fit.summary()}


def recommend_listing(store: Store, run: str) -> Listing:
    doc = recommendation(store, run)
    frame = pd.DataFrame([{**p, "reasons": "; ".join(p["reasons"])} for p in doc["recommended"]],
                         columns=["arch_id", "reasons", "score_mean", "params", "flops"])
    ranker = doc["learned_ranker"]
    header = [f"run {run} · {doc['sentence']}", "recommended for final training:",
              f"learned ranker: {'offered' if ranker['offered'] else 'not offered'}: {ranker['reason']}"]
    return Listing(doc=doc, frame=frame, header=header, metric=store.score_metric(run),
                   empty="nothing to recommend: no fully scored architectures yet")


def predicted_listing(store: Store, run: str, args: argparse.Namespace) -> Listing:
    """The board ordered by the learned ranker's predicted error, paged like `smash top`."""
    if any(v is not None for v in board_query(args).values()):
        raise BadRequest("--sort predicted takes no filters; sort by score_mean to filter")
    fit, ranked = rank_board(store.board_features(run))
    if not fit.offered:
        raise BadRequest(f"--sort predicted: the learned ranker is not offered: {fit.reason}")
    ranked = ranked.sort_values(["predicted", "arch_id"], ascending=[not args.desc, True])
    page = Page(len(ranked), args.limit, args.page)
    if page.number > page.pages:
        raise BadRequest(f"--page {args.page} is past the last page ({page.pages})")
    rows = ranked.iloc[page.offset: page.offset + args.limit].assign(
        rank=range(page.offset + 1, page.offset + 1 + min(args.limit, len(ranked) - page.offset)))
    doc = {"run_id": run, "sort": "predicted", "ranker": fit.summary(), "total": len(ranked),
           "page": page.number, "pages": page.pages, "rows": records(rows[PREDICTED_COLUMNS])}
    header = [f"run {run} · sorted by predicted error, {fit.label} · {page.span(len(rows))}", fit.reason]
    return Listing(doc=doc, frame=rows[PREDICTED_COLUMNS], header=header, metric=store.score_metric(run))


def cmd_top(args: argparse.Namespace) -> None:
    store = lookup.open_store(args.workdir)
    run = lookup.run_id(store, args.run)
    listing = recommend_listing(store, run) if args.recommend else predicted_listing(store, run, args)
    emit(listing, form_of(args))
