"""Queueing final trainings: the one action the Leaderboard and Jobs pages share.

A double click must not start the same training twice. The store guarantees it (an
equal queued or running job is returned instead of a new one); the button also turns
itself off once the jobs are in the queue, so a user sees that the first click was taken.
"""

from __future__ import annotations

import json

import streamlit as st

from core.config import RetrainConfig
from core.jobs import RetrainJob
from core.status import ACTIVE
from store import Store, StoreError

MAX_EPOCHS = 1000
"""The most epochs one click may queue per architecture (the paper trains 300)."""
SELECTION = "selection"
"""Session key holding {"run_id": ..., "arch_ids": [...]}: the leaderboard's row choice."""


def selected() -> tuple[str | None, list[str]]:
    sel = st.session_state.get(SELECTION) or {}
    return sel.get("run_id"), list(sel.get("arch_ids") or [])


def set_selected(run_id: str, arch_ids: list[str]) -> None:
    st.session_state[SELECTION] = {"run_id": run_id, "arch_ids": list(arch_ids)}


def _default_epochs(store: Store, run_id: str) -> int:
    """The run's own [retrain].epochs, as `smash queue retrain` takes without --epochs
    (a stored config always has it; a run without one gets the config default)."""
    run = store.get_run(run_id) or {}
    return int((run.get("config") or {}).get("retrain", {}).get("epochs", RetrainConfig.epochs))


def pending(store: Store, run_id: str, job: RetrainJob) -> set[str]:
    """Archs of `run_id` with an equal retrain job (same params) already queued or running."""
    params = job.to_params()
    jobs = store.jobs(limit=1000, status=list(ACTIVE))
    jobs = jobs[(jobs["kind"] == RetrainJob.kind) & (jobs["run_id"] == run_id)]
    return {a for a, p in zip(jobs["arch_id"], jobs["params"], strict=True) if json.loads(p) == params}


def _submit(store_path: str, run_id: str, arch_ids: list[str], key: str) -> None:
    """The button's callback: it runs before the rerun the click causes, so that rerun
    already sees the jobs and draws the button disabled."""
    job = RetrainJob(epochs=min(int(st.session_state[f"{key}-epochs"]), MAX_EPOCHS),
                     seed=int(st.session_state[f"{key}-seed"]))
    try:
        store = Store(store_path)
        job_ids = [store.enqueue_job(RetrainJob.kind, job.to_params(), run_id=run_id, arch_id=a)
                   for a in arch_ids]
    except (StoreError, ValueError) as exc:  # callbacks run outside the page's guard
        st.session_state[f"{key}-err"] = f"Could not queue the jobs: {exc}"
        return
    n, epochs = len(set(job_ids)), job.epochs
    st.session_state[f"{key}-msg"] = (
        f"Queued {n} retrain job{'s' if n != 1 else ''} ({epochs} epoch{'s' if epochs != 1 else ''}, "
        f"seed {job.seed}): " + ", ".join(f"`{j}`" for j in dict.fromkeys(job_ids))
        + ". An equal job already queued or running is reused, never repeated.")


def retrain_controls(store: Store, run_id: str, arch_ids: list[str], key: str,
                     what: str = "Queue final training of") -> None:
    """Epochs and seed inputs and a button ("`what` N archs") that queues one retrain job
    per arch.

    The button is off while every chosen arch already has an equal job in the queue,
    so the click that queued them leaves it disabled.
    """
    cols = st.columns([1, 1, 2], vertical_alignment="bottom")
    epochs = cols[0].number_input("Epochs", min_value=1, max_value=MAX_EPOCHS,
                                  value=min(_default_epochs(store, run_id), MAX_EPOCHS), step=1,
                                  key=f"{key}-epochs")
    seed = cols[1].number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1,
                                key=f"{key}-seed")
    waiting = pending(store, run_id, RetrainJob(epochs=int(epochs), seed=int(seed))) if arch_ids else set()
    done = bool(arch_ids) and set(arch_ids) <= waiting
    n = len(arch_ids)
    label = "Already queued" if done else f"{what} {n} arch{'s' if n != 1 else ''}"
    cols[2].button(label, type="primary", key=f"{key}-button", disabled=done or not arch_ids,
                   on_click=_submit, args=(str(store.path), run_id, list(arch_ids), key))
    if err := st.session_state.pop(f"{key}-err", None):
        st.error(err)
    if msg := st.session_state.pop(f"{key}-msg", None):
        st.success(msg)
    elif waiting & set(arch_ids) and not done:
        st.caption(f"{len(waiting & set(arch_ids))} of the selected already have this job queued or running.")
