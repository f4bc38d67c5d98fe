"""Score vs truth: does the SMASH score rank architectures like their error after real training?

This is the claim the whole method rests on, so the page puts it first: every retrained
arch as a point (score with its spread over draws, true test error), the rank and linear
correlations and top-k numbers with bootstrap 95% intervals, and then the Pareto view
of score against size. Clicking a point opens that arch.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, links
from app.context import store_and_run
from engine import rankstats

MIN_PAIRS = 3


@st.cache_data(max_entries=32, show_spinner="Bootstrapping intervals…")
def _table(score: tuple[float, ...], truth: tuple[float, ...], k: int, n_boot: int) -> pd.DataFrame:
    # Cached on the data itself, not on a connection: equal inputs give equal intervals (seeded).
    return pd.DataFrame(rankstats.correlation_table(score, truth, k, n_boot=n_boot))


def render() -> None:
    st.title("SMASH score vs true error")
    picked = store_and_run()
    if picked is None:
        return
    store, run_id = picked
    pairs = store.score_vs_truth(run_id)
    left, right = st.columns([3, 2])
    with left:
        event = st.plotly_chart(charts.score_vs_truth(pairs), width="stretch", key="svt-scatter",
                                on_select="rerun", selection_mode="points")
        _open_clicked(event, run_id)
    with right:
        _stats(pairs)
    _studies(store, run_id)
    st.divider()
    st.subheader("Pareto view")
    x = st.radio("Size measure", ["params", "flops"], horizontal=True, key="svt-pareto-x",
                 format_func=lambda v: {"params": "parameters", "flops": "FLOPs"}[v])
    front = store.pareto(run_id, x=x)
    st.caption(f"{len(front):,} scored archs, {int(front['on_front'].sum()) if not front.empty else 0} "
               "on the front (no other arch is both smaller and better scored). Click a point to open it.")
    event = st.plotly_chart(charts.pareto(front, x), width="stretch", key=f"svt-pareto-{x}",
                            on_select="rerun", selection_mode="points")
    _open_clicked(event, run_id)


def _stats(pairs: pd.DataFrame) -> None:
    n = len(pairs)
    st.markdown(f"**{n} retrained architecture{'s' if n != 1 else ''}**")
    if n < MIN_PAIRS:
        st.info(f"Correlations need at least {MIN_PAIRS} retrained archs; queue final trainings of "
                "several leaderboard rows (best, middling and worst scored) to measure the ranking.")
        return
    c1, c2 = st.columns(2)
    k = int(c1.number_input("k (top-k)", min_value=1, max_value=max(1, n), value=min(5, max(1, n)),
                            key="svt-k"))
    n_boot = int(c2.selectbox("Bootstrap resamples", [200, 1000, 5000], index=1, key="svt-boot"))
    table = _table(tuple(pairs["score_mean"].astype(float)), tuple(pairs["test_error"].astype(float)),
                   k, n_boot)
    table["95% interval"] = [
        "–" if pd.isna(lo) else f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)
    ]
    st.dataframe(table[["metric", "estimate", "95% interval", "better", "n"]], hide_index=True,
                 width="stretch", column_config={"estimate": st.column_config.NumberColumn(format="%.3f")})
    st.caption("Percentile bootstrap over (score, error) pairs. Regret: best true error among the k "
               "best-scored archs minus the best true error of all.")


def _studies(store, run_id: str) -> None:
    """Stored `smash correlate` studies: K archs spread over the score range, same short budget."""
    studies = store.studies(run_id)
    if studies.empty:
        return
    st.subheader("Correlation studies")
    for _, row in studies.iterrows():
        study = store.get_study(str(row["study_id"]))
        label = (f"{study['study_id']} · {len(study['arch_ids'])} archs · {study['epochs']} epochs · "
                 f"{study['status']}")
        with st.expander(label, expanded=row.name == studies.index[0]):
            if not study["metrics"]:
                st.caption("Retrains still running: the figures appear when they finish.")
                continue
            table = pd.DataFrame(study["metrics"])
            table["95% interval"] = [f"[{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else "–"
                                     for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)]
            st.dataframe(table[["metric", "estimate", "95% interval", "better", "n"]], hide_index=True,
                         width="stretch",
                         column_config={"estimate": st.column_config.NumberColumn(format="%.3f")})


def _open_clicked(event, run_id: str) -> None:
    """Open the Architecture page for the first clicked or selected point."""
    # The event is a dict that also allows attribute access; read it as a dict.
    points = ((event or {}).get("selection") or {}).get("points") or []
    for point in points:
        custom = point.get("customdata")
        if custom:
            links.go(links.ARCHITECTURE, arch=str(custom[0] if isinstance(custom, list) else custom),
                     run=run_id)
