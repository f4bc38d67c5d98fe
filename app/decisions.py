"""What the Leaderboard decides for a user: which archs are equivalent to the leader, what
to train (with one button), whether a ranker learned from the run's retrains is worth
sorting by, and what to retrain next to teach it most.

The words and picks come from core (core/board.py, core/ranker.py), the same ones
`smash top --recommend` prints; the buttons queue retrain jobs through app/actions.py.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.actions import retrain_controls
from core.board import equivalence_sentence, recommend
from core.metric import format_score
from core.ranker import RankerFit, learned_pick, rank_board, suggest_retrains
from store import Store

SUGGESTIONS = 3


def learned(store: Store, run_id: str) -> tuple[RankerFit, pd.DataFrame]:
    """The ranker fitted on the run's retrains now (so it refits as each retrain finishes),
    and the board's features with `predicted` where it is offered."""
    return rank_board(store.board_features(run_id))


def verdict_line(store: Store, run_id: str, metric: str) -> None:
    counts = store.verdict_counts(run_id)
    if not counts:
        return
    text = equivalence_sentence(counts, store.score_delta(run_id), metric)
    (st.success if not counts.get("unresolved") else st.info)(text)


def recommendation(store: Store, run_id: str, metric: str, fit: RankerFit, ranked: pd.DataFrame) -> None:
    """The recommended archs with the reason for each, and one button that trains them."""
    picks = recommend(store.equivalent_set(run_id), learned_pick(fit, ranked))
    st.subheader("Recommended for final training")
    if not picks:
        st.caption("Nothing to recommend until the run has full scores.")
        return
    for pick in picks:
        st.markdown(f"- `{pick['arch_id']}` · {'; '.join(pick['reasons'])} · SMASH score "
                    f"{format_score(pick['score_mean'], metric)} · {_count(pick['params'])} params · "
                    f"{_count(pick['flops'])} FLOPs")
    retrain_controls(store, run_id, [p["arch_id"] for p in picks], key="lb-recommend",
                     what="Train the recommended")


def ranker_note(fit: RankerFit) -> None:
    if fit.offered:
        st.caption(f"A ranker {fit.label} is offered: sort by *predicted* to use it. {fit.reason}.")
    else:
        st.caption(f"No learned ranker offered: {fit.reason}.")


def suggestions(store: Store, run_id: str, ranked: pd.DataFrame) -> None:
    """A few archs to retrain next, spread over the score and size ranges away from every
    arch already retrained, with one button."""
    retrained = list(ranked.loc[ranked["val_error"].notna(), "arch_id"])
    picks = suggest_retrains(ranked, retrained, SUGGESTIONS)
    with st.expander(f"Retrain to learn more ({len(retrained)} retrained so far)"):
        if not picks:
            st.caption("Every scored arch is retrained already.")
            return
        st.caption("These archs lie farthest, in SMASH score and FLOPs, from every arch retrained so far: "
                   "their true errors teach the learned ranker most.")
        st.markdown("\n".join(f"- `{a}`" for a in picks))
        retrain_controls(store, run_id, picks, key="lb-suggest", what="Retrain to learn more:")


def _count(n: float | None) -> str:
    if n is None:
        return "–"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return str(int(n))
