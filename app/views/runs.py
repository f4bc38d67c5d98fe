"""Runs: every HyperNet run, its live training curves and checkpoints, and buttons to start more.

Nothing here trains: starting a run or a scoring pass queues a job that the engine's
worker picks up. The curves refresh themselves in a fragment while the run is live, so
only that fragment re-reads the store every two seconds, not the whole page.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app import charts, score_text
from app.context import CONFIG_DIR, guarded, open_store, pick_run, workdir
from core.board import interval_text
from core.config import load_config
from core.jobs import ScoreJob, TrainJob
from core.metric import format_score, run_metric
from core.rankstats import rank_stability, spearman
from core.status import ACTIVE
from store import Store

DEFAULT_CONFIG = "demo.toml"
REFRESH_S = 2.0
MAX_ARCHS = 20_000
MAX_IMAGES = 100_000
"""Bounds on what one click may queue (the CLI takes larger jobs)."""


def render() -> None:
    st.title("HyperNet runs")
    st.caption(f"Workdir `{workdir()}`")
    store = open_store()
    if store is None:
        st.info(f"No SMASH store in `{workdir()}` yet: start a HyperNet run below, "
                "or run `smash train --config FILE --workdir DIR`.")
    else:
        runs = store.runs()
        if runs["status"].isin(ACTIVE).any():
            _live_runs_table()
        else:
            _runs_table(runs)
        run_id = pick_run(store)
        if run_id is not None:
            _run_detail(store, run_id)
    st.divider()
    left, right = st.columns(2)
    with left:
        _new_run_form()
    with right:
        if store is not None and st.session_state.get("run_id"):
            _score_form(store, st.session_state["run_id"])


@st.fragment(run_every=REFRESH_S)
@guarded  # fragment reruns skip the page's guard, so each fragment brings its own
def _live_runs_table() -> None:
    store = open_store()
    if store is not None:
        _runs_table(store.runs())


def _runs_table(runs: pd.DataFrame) -> None:
    if runs.empty:
        return
    view = runs.assign(progress=(runs["step"] / runs["steps_total"].where(runs["steps_total"] > 0)).clip(0, 1))
    st.dataframe(
        view[["run_id", "name", "status", "progress", "step", "steps_total", "dataset", "seed",
              "created_at", "updated_at", "code_version"]],
        hide_index=True, width="stretch",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                        format="percent"),
            "created_at": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "updated_at": st.column_config.DatetimeColumn("updated (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        },
    )


def _run_detail(store: Store, run_id: str) -> None:
    run = store.get_run(run_id)
    if run is None:
        st.warning(f"Run {run_id} disappeared from the store.")
        return
    with st.expander("Config (JSON)"):
        st.json(run["config"], expanded=2)
    st.session_state["runs_live_id"] = run_id
    if run["status"] in ACTIVE:
        _live_curves()
    else:
        _curves(store, run_id)
    metric = run_metric(run["config"])  # what the run's SMASH scores measure
    _racing(store, run_id, metric)
    _probe(store, run_id, metric)
    st.subheader("Checkpoints")
    ckpts = store.checkpoints(run_id)
    if ckpts.empty:
        st.caption("No checkpoints yet.")
    else:
        ckpts = ckpts.assign(exists=[Path(p).is_file() for p in ckpts["path"]])
        st.dataframe(ckpts[["step", "path", "exists", "created_at"]], hide_index=True, width="stretch")


def _racing(store: Store, run_id: str, metric: str = "error") -> None:
    """How settled the top of the ranking is: ties with the leader, and what racing did."""
    top = store.leaderboard(run_id, limit=50)
    if top.empty:
        return
    st.subheader("Ranking confidence")
    full = top[~top["partial"].fillna(False).astype(bool)]
    if full.empty:
        st.caption("No architecture has a full score yet.")
        return
    leader = full.iloc[0]
    tied = int(full["tied"].fillna(False).astype(bool).sum()) - 1
    raced = full[full["race_rounds"].fillna(0) > 0]
    c1, c2, c3 = st.columns(3)
    interval = interval_text(leader["score_lo"], leader["score_hi"], metric)
    c1.metric("Leader's SMASH score", format_score(leader["score_mean"], metric),
              help=f"95% interval {interval}" + ("" if metric == "error" else f". {score_text.help_text(metric)}"),
              border=True)
    c2.metric("Tied with the leader", f"{max(tied, 0)}",
              help="Archs whose 95% score interval overlaps the leader's: their order is not settled",
              border=True)
    c3.metric("Raced", f"{len(raced)}",
              help="Top archs re-scored with fresh draws (racing stage, [score].race_top)", border=True)
    if len(raced):
        st.caption(f"Racing gave {len(raced)} top archs up to {int(raced['draws'].max())} draws in "
                   f"{int(raced['race_rounds'].max())} round(s).")


def _probe(store: Store, run_id: str, metric: str = "error") -> None:
    """Probe-set metrics, when the run has a probe set: is the ranking stable over training?"""
    probe = store.probe_scores(run_id)
    if probe.empty:
        return
    st.subheader("Probe set")
    rows = rank_stability(probe["checkpoint_step"], probe["arch_id"], probe["score_mean"])
    stability = pd.DataFrame(rows, columns=["step", "previous_step", "kendall_tau", "n"])
    # Once probe archs have true errors (retrain them from the Leaderboard, stage "probe"),
    # how well each checkpoint's scores rank them.
    truth = store.score_vs_truth(run_id)[["arch_id", "val_error"]]
    joined = probe.merge(truth, on="arch_id")
    over_time = pd.DataFrame(
        [{"step": step, "spearman": spearman(g["score_mean"], g["val_error"]), "n": len(g)}
         for step, g in joined.groupby("checkpoint_step") if len(g) >= 3],
        columns=["step", "spearman", "n"])
    n_truth = joined["arch_id"].nunique()
    st.caption(f"{probe['arch_id'].nunique()} fixed architectures re-scored at each of "
               f"{probe['checkpoint_step'].nunique()} checkpoints; {n_truth} of them retrained"
               + ("" if n_truth >= 3 else " (3 are needed for the correlation with true error)") + ".")
    st.plotly_chart(charts.probe_stability(probe, stability, over_time, metric=metric), width="stretch",
                    key=f"probe-{run_id}")


@st.fragment(run_every=REFRESH_S)
@guarded  # fragment reruns skip the page's guard, so each fragment brings its own
def _live_curves() -> None:
    """Re-read the run every few seconds; when it stops, rerun the page once to settle."""
    run_id = st.session_state.get("runs_live_id")
    store = open_store()
    if store is None or run_id is None:
        return
    run = store.get_run(run_id)
    _curves(store, run_id, run)
    if run is not None and run["status"] not in ACTIVE:
        st.rerun(scope="app")


def _curves(store: Store, run_id: str, run: dict | None = None) -> None:
    run = run or store.get_run(run_id)
    if run is None:
        return
    total = int(run["steps_total"] or 0)
    step = int(run["step"] or 0)
    cols = st.columns(4)
    cols[0].metric("Status", run["status"])
    cols[1].metric("Step", f"{step:,} / {total:,}")
    metrics = store.train_metrics(run_id)
    if not metrics.empty:
        last = metrics.iloc[-1]
        cols[2].metric("Loss", f"{last['loss']:.3f}")
        cols[3].metric("Error", f"{last['error']:.1%}")
    if total:
        st.progress(min(step / total, 1.0))
    st.plotly_chart(charts.training_curves(metrics), width="stretch", key=f"curves-{run_id}")


def _config_files() -> list[Path]:
    return sorted(CONFIG_DIR.glob("*.toml"))


def _allowed_config(path: Path) -> bool:
    """A .toml file inside the configs folder or the workdir: the dashboard reads no other
    file, so its config box cannot be used to probe the server's disk."""
    real = path.resolve()
    roots = (CONFIG_DIR.resolve(), workdir().resolve())
    return real.suffix == ".toml" and real.is_file() and any(real.is_relative_to(r) for r in roots)


def _new_run_form() -> None:
    st.subheader("Start a HyperNet run")
    files = _config_files()
    with st.form("new_run"):
        names = [f.name for f in files]
        choice = st.selectbox("Config file", files, format_func=lambda p: p.name, key="new_run_config",
                              index=names.index(DEFAULT_CONFIG) if DEFAULT_CONFIG in names else 0)
        custom = st.text_input("…or a path to a TOML config in the workdir", key="new_run_custom")
        submitted = st.form_submit_button("Queue training job", type="primary")
    if not submitted:
        return
    path = Path(custom).expanduser() if custom.strip() else choice
    if path is None or not _allowed_config(path):
        st.error(f"Configs are read from `{CONFIG_DIR}` or the workdir `{workdir()}` only "
                 "(a .toml file there).")
        return
    cfg = load_config(path)  # a bad config is reported here, not by a failed job later
    store = open_store(create=True)
    job_id = store.enqueue_job(TrainJob.kind, TrainJob(config=str(path.resolve()), config_data=cfg.to_dict()).to_params())
    st.success(f"Queued training of **{cfg.name}** as job `{job_id}`; follow it on the Jobs page.")


def _score_form(store: Store, run_id: str) -> None:
    st.subheader("Score architectures")
    run = store.get_run(run_id) or {}
    score_cfg = (run.get("config") or {}).get("score", {})
    with st.form("score_run"):
        archs = st.number_input("Random architectures to score", min_value=1, max_value=MAX_ARCHS,
                                value=min(int(score_cfg.get("archs", 500)), MAX_ARCHS), step=1, key="score_archs")
        halving = st.number_input(
            "Successive halving from (validation images per draw; 0: every arch on all)",
            min_value=0, max_value=MAX_IMAGES, value=int(score_cfg.get("halving_min", 0)), step=10,
            key="score_halving",
            help="Every random architecture is scored on this many images, the best third on 3x "
                 "more, and so on up to the run's val_images: much faster, the top stays close.")
        submitted = st.form_submit_button(f"Queue scoring pass for {run_id}")
    if submitted:
        changed = int(halving) != int(score_cfg.get("halving_min", 0))
        job = ScoreJob(archs=int(archs), halving_min=int(halving) if changed else None)
        job_id = store.enqueue_job(ScoreJob.kind, job.to_params(), run_id=run_id)
        st.success(f"Queued scoring job `{job_id}`.")

