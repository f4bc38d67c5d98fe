"""Score vs truth: does the SMASH score rank architectures like their error after real training?

This is the claim the whole method rests on, so the page puts it first: every retrained
arch as a point (score with its 95% interval over draws, true error = validation error
after retraining; test error only on hover, never selected on), the rank and linear
correlations and top-k numbers with bootstrap 95% intervals, then the correlation studies
(queued from a form, run by the engine: the SMASH score beside params, FLOPs and a
training-free proxy, and the truth's seed-to-seed ceiling), and the Pareto view.
Clicking a point opens that arch.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app import charts, links
from app.context import store_and_run
from core import rankstats
from core.jobs import PREDICTORS, CorrelateJob
from core.ranker import fit_ranker
from core.status import ACTIVE
from store import Store, StoreError

MIN_PAIRS = 3
MAX_STUDY_RETRAINS = 400
"""Bound on K x seeds a study form may queue: a study is a lot of training."""


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
    metric = store.score_metric(run_id)  # what the run's SMASH scores measure
    partial = st.toggle("Include partial scores", key="svt-partial",
                        help="Archs successive halving stopped early have noisy scores from few images; "
                             "they are left out of correlations and Pareto fronts unless included here.")
    pairs = store.score_vs_truth(run_id, include_partial=partial)
    left, right = st.columns([3, 2])
    with left:
        event = st.plotly_chart(charts.score_vs_truth(pairs, metric), width="stretch", key="svt-scatter",
                                on_select="rerun", selection_mode="points")
        _open_clicked(event, run_id)
    with right:
        _stats(pairs)
    _learned_ranker(store, run_id)
    st.divider()
    _study_form(store, run_id)
    _studies(store, run_id)
    st.divider()
    st.subheader("Pareto view")
    x = st.radio("Size measure", ["params", "flops"], horizontal=True, key="svt-pareto-x",
                 format_func=lambda v: {"params": "parameters", "flops": "FLOPs"}[v])
    front = store.pareto(run_id, x=x, include_partial=partial)
    st.caption(f"{len(front):,} scored archs, {int(front['on_front'].sum()) if not front.empty else 0} "
               "on the front (no other arch is both smaller and better scored). Click a point to open it.")
    event = st.plotly_chart(charts.pareto(front, x, metric=metric), width="stretch", key=f"svt-pareto-{x}",
                            on_select="rerun", selection_mode="points")
    _open_clicked(event, run_id)


def _stats(pairs: pd.DataFrame) -> None:
    n = len(pairs)
    st.markdown(f"**{n} retrained architecture{'s' if n != 1 else ''}**")
    if n < MIN_PAIRS:
        st.info(f"Correlations need at least {MIN_PAIRS} retrained archs; queue final trainings of "
                "several leaderboard rows (best, middling and worst scored), or a study below.")
        return
    c1, c2 = st.columns(2)
    k = int(c1.number_input("k (top-k)", min_value=1, max_value=max(1, n), value=min(5, max(1, n)),
                            key="svt-k"))
    n_boot = int(c2.selectbox("Bootstrap resamples", [200, 1000, 5000], index=1, key="svt-boot"))
    table = _table(tuple(pairs["score_mean"].astype(float)), tuple(pairs["val_error"].astype(float)),
                   k, n_boot)
    _show_table(table)
    st.caption("Truth: validation error after retraining (a split never trained on). Percentile bootstrap "
               "over (score, error) pairs. Regret: best true error among the k best-scored archs minus "
               "the best true error of all.")


def _learned_ranker(store: Store, run_id: str) -> None:
    """The ranker learned from the run's retrains against each single predictor, all judged on
    the same retrained archs (the ranker leave-one-out), and whether the Leaderboard offers it."""
    fit = fit_ranker(store.board_features(run_id).dropna(subset=["val_error"]))
    st.subheader("A ranker learned from the retrains")
    if not fit.n or fit.model is None:
        st.caption(fit.reason + ".")
        return
    st.plotly_chart(charts.ranker_bars(fit.summary()), width="stretch", key="svt-ranker")
    st.caption(f"Ridge regression on {', '.join(fit.features)}; each retrained arch predicted by a ranker "
               f"fitted without it. {'Offered on the Leaderboard' if fit.offered else 'Not offered'}: "
               f"{fit.reason}.")


def _show_table(table: pd.DataFrame) -> None:
    table = table.assign(**{"95% interval": [
        "–" if pd.isna(lo) else f"[{lo:.3f}, {hi:.3f}]"
        for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)]})
    st.dataframe(table[["metric", "estimate", "95% interval", "better", "n"]], hide_index=True,
                 width="stretch", column_config={"estimate": st.column_config.NumberColumn(format="%.3f")})


def _study_form(store: Store, run_id: str) -> None:
    """Queue a correlation study as a `correlate` job for the engine."""
    with st.expander("New correlation study", expanded=store.studies(run_id).empty):
        with st.form("svt-study"):
            c1, c2, c3, c4, c5 = st.columns(5)
            k = c1.number_input("Architectures (K)", min_value=4, max_value=200, value=24, step=4)
            ladder = c2.text_input("Truth ladder (epochs)", value="1,2,4,8",
                                   help="one retrain of the largest; the truth is read after each epoch listed")
            steps = c3.number_input("Steps per epoch (0: full)", min_value=0, max_value=10_000, value=0,
                                    help="0: whole passes over the training split, the truth users care about")
            seeds = c4.number_input("Seeds", min_value=1, max_value=3, value=2,
                                    help="2 or more also measure the truth's seed-to-seed ceiling")
            draws = c5.number_input("Score draws", min_value=0, max_value=100, value=CorrelateJob.score_draws,
                                    help="each arch's SMASH score is refined to this many draws before "
                                         "the comparison (0: as the search scored it)")
            predictors = st.multiselect("Predictors", PREDICTORS, default=list(PREDICTORS),
                                        help="naswot: a training-free proxy (one forward pass per arch)")
            submitted = st.form_submit_button("Queue the study", type="primary")
        if submitted:
            _queue_study(store, run_id, int(k), ladder, int(steps), int(seeds), predictors, int(draws))
    _running_studies(store, run_id)


def _queue_study(store: Store, run_id: str, k: int, ladder: str, steps: int, seeds: int,
                 predictors: list[str], score_draws: int = CorrelateJob.score_draws) -> None:
    try:
        epochs = sorted({int(v) for v in ladder.split(",") if v.strip()})
    except ValueError:
        epochs = []
    if not epochs or epochs[0] < 1 or epochs[-1] > 100:
        st.error(f"Truth ladder {ladder!r}: give epochs from 1 to 100, comma separated (such as 1,2,4,8).")
        return
    if "smash" not in predictors:
        st.error("A study needs the SMASH score among its predictors.")
        return
    if k * seeds > MAX_STUDY_RETRAINS:
        st.error(f"{k} archs x {seeds} seeds is {k * seeds} retrains; at most {MAX_STUDY_RETRAINS}.")
        return
    try:
        params = CorrelateJob(k=k, epochs=epochs[-1], rungs=tuple(epochs) if len(epochs) > 1 else None,
                              seeds=seeds, max_steps_per_epoch=steps, predictors=tuple(predictors),
                              score_draws=score_draws).to_params()
        job_id = store.enqueue_job(CorrelateJob.kind, params, run_id=run_id)
    except (StoreError, ValueError) as exc:
        st.error(f"Could not queue the study: {exc}")
        return
    st.success(f"Queued study job `{job_id}`: {k * seeds} retrains of {epochs[-1]} epochs, then every "
               "predictor's figures" + (" at every rung" if len(epochs) > 1 else "") +
               ". The engine runs it; progress shows below.")


def _running_studies(store: Store, run_id: str) -> None:
    jobs = store.jobs(limit=200, status=list(ACTIVE))
    jobs = jobs[(jobs["kind"] == "correlate") & (jobs["run_id"] == run_id)]
    for _, job in jobs.iterrows():
        st.progress(float(job["progress"] or 0.0),
                    text=f"study job {job['job_id']} ({job['status']}): {job['message'] or 'waiting'}")


def _studies(store: Store, run_id: str) -> None:
    """Stored studies: K archs spread over the score range, same short budget."""
    studies = store.studies(run_id)
    if studies.empty:
        return
    st.subheader("Correlation studies")
    for _, row in studies.iterrows():
        study = store.get_study(str(row["study_id"]))
        label = (f"{study['study_id']} · {len(study['arch_ids'])} archs · {study['epochs']} epochs · "
                 f"{study['status']}")
        with st.expander(label, expanded=row.name == studies.index[0]):
            metrics = study["metrics"]
            if not metrics:
                st.caption("Retrains still running: the figures appear when they finish.")
            elif isinstance(metrics, list):  # a study stored before predictors were compared
                st.caption("Truth: test error (a study from before validation error was recorded).")
                _show_table(pd.DataFrame(metrics))
            else:
                _study_figures(metrics, key=str(study["study_id"]))


def _study_figures(metrics: dict, key: str) -> None:
    """Each predictor's Spearman with its interval, beside the truth's own ceiling."""
    order = sorted(metrics["predictors"], key=lambda n: (PREDICTORS + (n,)).index(n))
    metrics = {**metrics, "predictors": {n: metrics["predictors"][n] for n in order}}
    rows = [{"predictor": name, **{m["metric"]: m["estimate"] for m in table},
             "Spearman 95% CI": f"[{table[0]['ci_low']:.3f}, {table[0]['ci_high']:.3f}]"}
            for name, table in metrics["predictors"].items()]
    if len(metrics.get("rungs") or []) > 1:
        st.markdown("**The truth ladder**: each predictor's Spearman with the validation error after each "
                    "training budget of the truth")
        st.plotly_chart(charts.ladder(metrics["rungs"]), width="stretch", key=f"svt-ladder-{key}")
        st.caption("Below: every figure at the last rung.")
    st.plotly_chart(charts.predictor_bars(metrics), width="stretch", key=f"svt-study-{key}")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    ceiling = metrics.get("ceiling")
    note = (f" Seed-to-seed Spearman of the truth (the ceiling any predictor faces): "
            f"{ceiling['spearman']:.3f} [{ceiling['spearman_ci'][0]:.3f}, {ceiling['spearman_ci'][1]:.3f}]"
            + (f"; against the seeds' mean a perfect predictor could expect about {ceiling['of_mean']:.3f}."
               if ceiling.get("of_mean") else ".")
            if ceiling else " One seed per arch: no ceiling measured.")
    st.caption(f"{metrics['n']} archs; truth: validation error after retraining (mean over seeds "
               f"{json.dumps(metrics.get('seeds'))}). Each predictor is oriented so lower predicts lower "
               "error (params, FLOPs and NASWOT negated)." + note)


def _open_clicked(event, run_id: str) -> None:
    """Open the Architecture page for the first clicked or selected point."""
    # The event is a dict that also allows attribute access; read it as a dict.
    points = ((event or {}).get("selection") or {}).get("points") or []
    for point in points:
        custom = point.get("customdata")
        if custom:
            links.go(links.ARCHITECTURE, arch=str(custom[0] if isinstance(custom, list) else custom),
                     run=run_id)
