"""Jobs: queue final trainings, watch every job's progress and heartbeat, read its log, cancel it.

The engine's worker runs the jobs; this page only reads their rows and writes cancel
requests. Liveness is the heartbeat's age (a PID says nothing once a machine reboots or
the job runs elsewhere), so the table shows it next to the status. The table refreshes
itself every two seconds in a fragment.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pandas as pd
import streamlit as st

from app.actions import retrain_controls, selected
from app.context import guarded, open_store, require_store
from core.status import ACTIVE
from store import Store, StoreError

REFRESH_S = 2.0
LOG_LINES = 30
STALE_S = 60.0


def render() -> None:
    st.title("Jobs")
    store = require_store()
    if store is None:
        return
    _queue_selected(store)
    st.divider()
    _live_jobs()


def _queue_selected(store: Store) -> None:
    st.subheader("Final training of selected architectures")
    run_id, arch_ids = selected()
    if not run_id or not arch_ids:
        st.caption("Select rows on the Leaderboard to queue their final training here.")
        return
    st.caption(f"Run `{run_id}` · " + ", ".join(f"`{a}`" for a in arch_ids))
    retrain_controls(store, run_id, arch_ids, key="jobs-retrain")


def tail(path: str | None, lines: int = LOG_LINES) -> str | None:
    """The last `lines` lines of a log file, or None if there is no such file."""
    if not path or not Path(path).is_file():
        return None
    with open(path, encoding="utf-8", errors="replace") as fh:
        return "".join(deque(fh, maxlen=lines))


def _describe(jobs: pd.DataFrame) -> pd.DataFrame:
    out = jobs.copy()
    out["target"] = [" / ".join(str(x) for x in (r, a) if x and not pd.isna(x))
                     for r, a in zip(out["run_id"], out["arch_id"], strict=True)]
    out["progress"] = out["progress"].fillna(0.0).clip(0, 1)
    out["cancel"] = out["cancel_requested"].fillna(False).map({True: "requested", False: ""})
    return out


@st.fragment(run_every=REFRESH_S)
@guarded  # fragment reruns skip the page's guard, so each fragment brings its own
def _live_jobs() -> None:
    store = open_store()
    if store is None:
        return
    jobs = store.jobs(limit=200)
    st.subheader("All jobs")
    if jobs.empty:
        st.caption("No jobs yet.")
        return
    view = _describe(jobs)
    st.dataframe(
        view[["job_id", "kind", "status", "progress", "heartbeat_age_s", "message", "target", "params",
              "cancel", "error", "created_at", "finished_at", "worker", "attempts"]],
        hide_index=True, width="stretch", key="jobs-table",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                        format="percent"),
            "heartbeat_age_s": st.column_config.NumberColumn("heartbeat age (s)", format="%.1f",
                                                             help="Seconds since the worker last reported"),
            "created_at": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "finished_at": st.column_config.DatetimeColumn("finished (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        },
    )
    active = view[view["status"].isin(ACTIVE)]
    if not active.empty:
        st.markdown("**Queued and running**")
        for job in active.itertuples():
            _active_row(store, job)
    _log_viewer(view)


def _active_row(store: Store, job) -> None:
    age = job.heartbeat_age_s
    stale = job.status == "running" and age is not None and not pd.isna(age) and age > STALE_S
    cols = st.columns([3, 1, 3, 1], vertical_alignment="center")
    cols[0].markdown(f"`{job.job_id}` {job.kind} · {job.target or '–'}")
    cols[1].markdown(f":{'red' if stale else 'blue'}[{job.status}]"
                     + (f" · {age:.0f}s" if age is not None and not pd.isna(age) else ""))
    cols[2].progress(float(job.progress), text=str(job.message or "")[:80] or None)
    requested = bool(job.cancel_requested)
    cols[3].button("Cancelling…" if requested else "Cancel", key=f"cancel-{job.job_id}",
                   disabled=requested, on_click=_cancel, args=(str(store.path), job.job_id))


def _cancel(store_path: str, job_id: str) -> None:
    """Button callback: a queued job is cancelled at once, a running one is flagged for its worker."""
    try:
        status = Store(store_path).request_cancel(job_id)
    except (StoreError, KeyError) as exc:  # callbacks run outside the page's guard
        st.toast(f"Could not cancel {job_id}: {exc}")
        return
    st.toast(f"{job_id}: {'cancelled' if status == 'cancelled' else 'cancel requested; the worker will stop it'}")


def _log_viewer(view: pd.DataFrame) -> None:
    with_logs = view[view["log_path"].notna()] if "log_path" in view else view.iloc[0:0]
    if with_logs.empty:
        return
    job_id = st.selectbox("Log of job", with_logs["job_id"].tolist(), key="jobs-log-pick")
    path = with_logs.set_index("job_id").loc[job_id, "log_path"]
    text = tail(path)
    st.code(text if text is not None else f"(no log file at {path})", language="log")
