"""Leaderboard: the ranked architectures of a run, filtered, sorted and paged in the store.

A run can hold 10^5+ scored archs, so the page never loads them all: sorting, range
filters and paging are arguments of `store.leaderboard` (a top-N query with LIMIT and
OFFSET) and only one page of rows crosses into the browser. Selected rows feed the
Architecture page (view, compare two) and final-training jobs.
"""

from __future__ import annotations

import streamlit as st

from app import decisions, links, score_text
from app.actions import retrain_controls, set_selected
from app.context import store_and_run
from core.board import MARKS, SORT_KEYS, Page, interval_text, mark
from core.search import STAGES

PAGE_SIZES = (25, 50, 100, 200)
VISIBLE_ROWS = 20
ROW_PX = 35
SORT_LABELS = {"score_mean": "SMASH score", "score_std": "score spread", "flops": "FLOPs",
               "n_layers": "layers", "val_error": "true error (validation)", "arch_id": "arch id"}
PREDICTED_COLUMNS = ["rank", "arch_id", "predicted", "score_mean", "params", "flops", "val_error"]
COLUMNS = ["rank", "arch_id", "mark", "score_mean", "interval", "draws", "val_images", "params", "flops",
           "depth", "n_layers", "stage", "checkpoint_step", "val_error", "test_error"]
COLUMN_CONFIG = {
    "rank": st.column_config.NumberColumn("#", width="small"),
    "arch_id": st.column_config.TextColumn("arch id"),
    "score_mean": st.column_config.NumberColumn("SMASH score", format="percent", help=score_text.help_text()),
    "mark": st.column_config.TextColumn(
        "mark", width="small", help=". ".join(f"{m}: {meaning}" for m, meaning in MARKS.items()) + "."),
    "interval": st.column_config.TextColumn(
        "95% interval", help="Of the mean over the draws (Student t); racing narrows it for the top"),
    "val_images": st.column_config.NumberColumn(
        "images", help="Validation images per draw behind the score (fewer: stopped early by "
                       "successive halving)"),
    "params": st.column_config.NumberColumn("params", format="compact"),
    "flops": st.column_config.NumberColumn("FLOPs", format="compact"),
    "n_layers": st.column_config.NumberColumn("layers"),
    "checkpoint_step": st.column_config.NumberColumn("at step", help="HyperNet checkpoint it was scored at"),
    "val_error": st.column_config.NumberColumn(
        "true error", format="percent",
        help="Validation error after final training (held out of training; what selection uses)"),
    "predicted": st.column_config.NumberColumn(
        "predicted error", format="percent",
        help="Validation error the ranker learned from this run's retrains predicts (lower is better)"),
    "test_error": st.column_config.NumberColumn(
        "test error", format="percent",
        help="Test error after final training: the final figure, never sorted or selected on"),
}
SCORE_FORMAT = {"error": "percent", "loss": "%.4f"}
"""How the table shows a score, by the run's score metric (core.metric)."""


def column_config(metric: str = "error") -> dict:
    """COLUMN_CONFIG with the score column in the run's metric: a percentage or nats."""
    if metric == "error":
        return COLUMN_CONFIG
    score = st.column_config.NumberColumn("SMASH score", format=SCORE_FORMAT.get(metric, "%.4f"),
                                          help=score_text.help_text(metric))
    return {**COLUMN_CONFIG, "score_mean": score}


def _range(label: str, key: str, *, step: float, fmt: str) -> tuple[float | None, float | None] | None:
    lo_col, hi_col = st.columns(2)
    lo = lo_col.number_input(f"{label} from", value=None, min_value=0.0, step=step, format=fmt,
                             key=f"lb-{key}-lo", placeholder="any")
    hi = hi_col.number_input(f"{label} to", value=None, min_value=0.0, step=step, format=fmt,
                             key=f"lb-{key}-hi", placeholder="any")
    return None if lo is None and hi is None else (lo, hi)


def _filters(metric: str = "error") -> dict:
    """The sidebar's filters; the score range is in the score's own units (a fraction of
    images for error, nats for loss), as the store compares it."""
    score = ("SMASH score", 0.01) if metric == "error" else (f"SMASH score ({metric}, nats)", 0.05)
    with st.sidebar:
        st.header("Filter")
        filters = {
            "params": _range("Params", "params", step=1000.0, fmt="%.0f"),
            "flops": _range("FLOPs", "flops", step=1e6, fmt="%.0f"),
            "score": _range(score[0], "score", step=score[1], fmt="%.3f"),
        }
        stages = st.multiselect("Search stage", STAGES, key="lb-stages", placeholder="all stages")
        filters["stages"] = stages or None
    return filters


def render() -> None:
    st.title("Leaderboard")
    picked = store_and_run()
    if picked is None:
        return
    store, run_id = picked
    metric = store.score_metric(run_id)
    filters = _filters(metric)
    fit, ranked = decisions.learned(store, run_id)
    decisions.verdict_line(store, run_id, metric)
    decisions.recommendation(store, run_id, metric, fit, ranked)
    st.divider()
    c_sort, c_desc, c_size, c_page = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
    sorts = [*SORT_KEYS, *(["predicted"] if fit.offered else [])]
    sort = c_sort.selectbox("Sort by", sorts, key="lb-sort",
                            format_func=lambda c: f"predicted error ({fit.label})" if c == "predicted"
                            else SORT_LABELS.get(c, c.replace("_", " ")))
    descending = c_desc.toggle("Descending", key="lb-desc")
    size = c_size.selectbox("Rows per page", PAGE_SIZES, index=1, key="lb-size")
    predicted = sort == "predicted"
    total = len(ranked) if predicted else store.leaderboard_count(run_id, **filters)
    pages = Page(total, size).pages
    number = int(c_page.number_input(f"Page (of {pages:,})", min_value=1, value=1, step=1, key="lb-page"))
    page = Page(total, size, number).clamped()
    board = _predicted_page(ranked, descending, page) if predicted else store.leaderboard(
        run_id, sort=sort, descending=descending, limit=size, offset=page.offset, **filters)
    st.caption(f"{total:,} architectures {'scored' if predicted else 'match'} · {page.span(len(board))} · "
               "select rows to view, compare or retrain")
    decisions.ranker_note(fit)
    if board.empty:
        st.info("No scored architectures match. Queue a scoring pass on the Runs page, or widen the filters.")
        return
    # The key follows the page's query, so a row selection never carries over to other rows.
    view_key = f"lb-table-{run_id}-{sort}-{descending}-{size}-{page.offset}-{hash(repr(filters))}"
    height = ROW_PX * (min(len(board), VISIBLE_ROWS) + 1) + 3
    shown = board[PREDICTED_COLUMNS] if predicted else with_marks(board, metric)[COLUMNS]
    event = st.dataframe(shown, hide_index=True, width="stretch", height=height, key=view_key,
                         column_config=column_config(metric), on_select="rerun", selection_mode="multi-row")
    rows = ((event or {}).get("selection") or {}).get("rows") or []
    chosen = board.iloc[list(rows)]["arch_id"].tolist()
    set_selected(run_id, chosen)  # the Jobs page offers final training of these
    _actions(store, run_id, chosen)
    decisions.suggestions(store, run_id, ranked)


def _predicted_page(ranked, descending: bool, page: Page):
    """One page of the board ordered by the learned ranker's predicted error."""
    order = ranked.sort_values(["predicted", "arch_id"], ascending=[not descending, True])
    rows = order.iloc[page.offset: page.offset + page.size]
    return rows.assign(rank=range(page.offset + 1, page.offset + 1 + len(rows))).reset_index(drop=True)


def with_marks(board, metric: str = "error"):
    """The row's mark and its interval (in the run's score metric) as text columns, worded
    as `smash top` words them (core/board.py)."""
    marks = [mark(v) for v in board["verdict"]]
    intervals = [interval_text(lo, hi, metric) for lo, hi in zip(board["score_lo"], board["score_hi"], strict=True)]
    return board.assign(mark=marks, interval=intervals)


def _actions(store, run_id: str, chosen: list[str]) -> None:
    view, compare, jobs = st.columns(3)
    if view.button("Open architecture", disabled=len(chosen) != 1, key="lb-open",
                   help="Select one row"):
        links.go(links.ARCHITECTURE, arch=chosen[0], run=run_id)
    if compare.button("Compare two", disabled=len(chosen) != 2, key="lb-compare",
                      help="Select exactly two rows"):
        links.go(links.ARCHITECTURE, arch=chosen[0], compare=chosen[1], run=run_id)
    if jobs.button("Go to jobs", key="lb-jobs"):
        links.go(links.JOBS)
    st.subheader("Final training")
    if chosen:
        st.caption("Selected: " + ", ".join(f"`{a}`" for a in chosen))
    retrain_controls(store, run_id, chosen, key="lb-retrain")
